"""Degenerate settings are refused on construction, one line naming the field (issue 12, item 5
and the settings errors of "One clear line")."""

import math

import pytest

from dlogp_jax import runs
from dlogp_jax.demo.settings import WorldSettings
from dlogp_jax.rl.rollout import RolloutConfig
from dlogp_jax.runs import settings as settings_lib
from tests.cli.configs import get_config

SAMPLE = dict(base="b", data="d")
TRAIN = dict(toy_task=True)


@pytest.mark.parametrize(
    "cls, kw, message",
    [
        (runs.TrainSettings, dict(TRAIN, total_steps=0), "total_steps=0: must be an integer >= 1"),
        (runs.TrainSettings, dict(TRAIN, total_steps=-3), "total_steps=-3"),
        (runs.SampleSettings, dict(SAMPLE, batch_prompts=-2), "batch_prompts=-2"),
        (runs.SampleSettings, dict(SAMPLE, batch_prompts=0), "batch_prompts=0"),
        (
            runs.SampleSettings,
            dict(SAMPLE, threshold=math.nan),
            "threshold=nan: must be a finite number",
        ),
        (runs.SampleSettings, dict(SAMPLE, gamma=math.inf), "gamma=inf: must be a finite"),
        (runs.SampleSettings, dict(SAMPLE, top_k=-3), "top_k=-3: must be an integer >= 0"),
        (runs.SampleSettings, dict(SAMPLE, top_p=0.0), r"top_p=0.0: must be in \(0, 1\]"),
        (runs.SampleSettings, dict(SAMPLE, temperature=-1.0), "temperature=-1.0"),
        (runs.SampleSettings, dict(SAMPLE, max_new_tokens=0), "max_new_tokens=0"),
        (runs.SampleSettings, dict(SAMPLE, mode="nosuch"), "mode='nosuch': use one of single"),
        (runs.SampleSettings, dict(SAMPLE, criterion="x"), "criterion='x': use one of dlogp"),
        (runs.SampleSettings, dict(SAMPLE, prompt_buckets="abc"), "prompt_buckets='abc'"),
        (runs.ViewSettings, dict(input="x", threshold=math.nan), "threshold=nan"),
        (runs.GradeSettings, dict(data="d", grader="nosuch"), "grader='nosuch': use one of"),
        (runs.ScoreSettings, dict(SAMPLE, batch_size=0), "batch_size=0"),
        (runs.EvalSettings, dict(temperature=math.nan), "eval.temperature=nan"),
    ],
)
def test_degenerate_settings_are_refused(cls, kw, message):
    with pytest.raises(ValueError, match=message) as e:
        cls(**kw)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "rollout, message",
    [
        (dict(default_reward="nosuch"), "rollout.default_reward: unknown reward 'nosuch'"),
        (dict(rewards_by_source=(("aime", "nope"),)), "rollout.rewards_by_source: unknown reward"),
        (dict(n=1), "rollout.n=1: must be an integer >= 2"),
        (dict(train_prompts=0), "rollout.train_prompts=0"),
        (dict(temperature=math.nan), "rollout.temperature=nan"),
        (dict(unfilled="skip"), "rollout.unfilled='skip': use one of fail, train"),
    ],
)
def test_rollout_settings_are_refused_before_compilation(rollout, message):
    with pytest.raises(ValueError, match=message):
        runs.TrainSettings(toy_task=True, rollout=RolloutConfig(**rollout))


def test_config_errors_name_the_field():
    config = get_config("dapo", "tiny")
    config.optimizer.lr = -1.0
    with pytest.raises(ValueError) as e:
        settings_lib.from_dict(runs.TrainSettings, config.to_dict())
    assert str(e.value) == "optimizer.lr=-1.0: must be > 0."  # not the whole config


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(n_train=-1), "world.n_train=-1: must be an integer >= 1"),
        (dict(n_train=100, n_val=100), "world.n_val=100: must be below n_train=100"),
        (dict(steps=0), "world.steps=0: must be an integer >= 1"),
        (dict(lr=0.0), "world.lr=0.0"),
    ],
)
def test_demo_world_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        WorldSettings(**kw)
