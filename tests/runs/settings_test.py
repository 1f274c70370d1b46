"""The settings dataclasses: the configs' fields and defaults, one message per bad field, and the
config.json round trip."""

import dataclasses

import pytest

from dlogp_jax import runs
from dlogp_jax.rl.rollout import RolloutConfig
from tests.cli.configs import get_config

PRESETS = {
    runs.ScoreSettings: ("score", [None, "demo"]),
    runs.SampleSettings: ("sample", [None, "demo", "paper"]),
    runs.TrainSettings: ("dapo", ["tiny", "qwen2p5_math_7b", "qwen3_8b_base"]),
    runs.ViewSettings: ("view", [None]),
    runs.GradeSettings: ("grade", [None]),
    runs.PlotSettings: ("plot", [None]),
}
INPUTS = {
    "score": dict(base="b", data="d"),
    "sample": dict(base="b", rl="r", data="d"),
    "view": dict(input="d"),
    "plot": dict(inputs="d"),
}


@pytest.mark.parametrize("cls", list(PRESETS))
def test_every_preset_converts_and_field_names_match(cls):
    name, args = PRESETS[cls]
    for arg in args:
        config = get_config(name, arg, **INPUTS.get(name, dict(data="d")))
        settings = runs.from_dict(cls, config.to_dict())
        assert sorted(config.to_dict()) == sorted(f.name for f in dataclasses.fields(cls))
        assert runs.config_dict(settings).keys() == config.to_dict().keys()


def test_defaults_are_the_configs_defaults():
    score = get_config("score", base="b", data="d").to_dict()
    assert runs.from_dict(runs.ScoreSettings, score) == runs.ScoreSettings(base="b", data="d")
    sample = get_config("sample", base="b", data="d").to_dict()
    assert runs.from_dict(runs.SampleSettings, sample) == runs.SampleSettings(base="b", data="d")
    dapo = get_config("dapo", toy_task=True).to_dict()
    assert runs.from_dict(runs.TrainSettings, dapo) == runs.TrainSettings(toy_task=True)
    grade = get_config("grade", data="d").to_dict()
    assert runs.from_dict(runs.GradeSettings, grade) == runs.GradeSettings(data="d")


def test_config_json_is_the_config_dump():
    """dlogp-train writes config_dict(settings) as config.json: what ConfigDict.to_dict() gave."""
    for arg in ("tiny", "qwen3_8b_base"):
        config = get_config("dapo", arg, data="d.parquet").to_dict()
        settings = runs.from_dict(runs.TrainSettings, config)
        assert runs.config_dict(settings) == config
        assert list(runs.config_dict(settings)) == list(config)  # the same (sorted) key order
        assert runs.from_dict(runs.TrainSettings, runs.config_dict(settings)) == settings


def test_one_message_per_bad_field():
    with pytest.raises(ValueError) as e:
        runs.SampleSettings(
            base="b", data="d", mode="replace", n=0, out="gs://bkt/x", prompt_buckets="64,x"
        )
    message = str(e.value)
    for part in (
        "mode='replace' needs --config.rl=DIR",
        "out='gs://bkt/x': URL paths are not supported",
        "n=0: must be an integer >= 1.",
        "prompt_buckets='64,x'",
    ):
        assert part in message, part
    with pytest.raises(ValueError, match=r"^base, data: set --config\.base=DIR"):
        runs.ScoreSettings()
    with pytest.raises(ValueError, match="batch_size=0"):
        runs.ScoreSettings(demo=True, batch_size=0)
    with pytest.raises(ValueError, match=r"data: set --config\.data=FILE"):
        runs.TrainSettings()
    with pytest.raises(ValueError, match=r"trainer\.mini_batches=0"):
        runs.TrainerSettings(mini_batches=0)
    with pytest.raises(ValueError, match=r"eval\.n=0"):
        runs.EvalSettings(n=0)
    with pytest.raises(ValueError, match="param_dtype='fp8'"):
        runs.TrainSettings(toy_task=True, param_dtype="fp8")


def test_rewards_by_source_and_unknown_keys():
    config = get_config("dapo", "tiny").to_dict()
    config["rollout"]["rewards_by_source"] = "math_dapo"
    with pytest.raises(ValueError, match="rollout.rewards_by_source: write 'source_prefix:reward"):
        runs.from_dict(runs.TrainSettings, config)
    bad = RolloutConfig(rewards_by_source=(("math_dapo",),))
    with pytest.raises(ValueError, match="rollout.rewards_by_source"):
        runs.TrainSettings(toy_task=True, rollout=bad)
    with pytest.raises(ValueError, match=r"ScoreSettings: unknown settings \['bogus'\]"):
        runs.from_dict(runs.ScoreSettings, {"bogus": 1})


def test_paths_and_buckets_normalized(tmp_path):
    s = runs.SampleSettings(base=tmp_path, data=tmp_path / "p.jsonl", prompt_buckets="64, 128")
    assert s.base == str(tmp_path) and s.data == str(tmp_path / "p.jsonl")
    assert s.prompt_buckets == (64, 128)
    assert runs.SampleSettings(demo=True, prompt_buckets=[32]).prompt_buckets == (32,)
