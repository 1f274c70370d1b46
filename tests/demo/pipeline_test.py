"""dlogp-demo end to end at the smoke size: artefacts, consistency, caching, resume."""

import json
from pathlib import Path

import jax
import pytest

from dlogp_jax.cli import demo
from dlogp_jax.demo import pipeline, rl_pool, stages
from dlogp_jax.demo.context import Ctx
from dlogp_jax.demo.settings import DemoSettings
from tests.cli.configs import get_config


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    # xla_cache off: the suite runs without jax's persistent cache (tests/conftest.py)
    config = get_config("demo", "smoke", workdir=str(root), xla_cache=False)
    demo.run(config)
    return root, config, json.loads((root / "results.json").read_text())


def _models(root: Path) -> list[Path]:
    return [root / "world" / "base", *sorted((root / "rl").glob("*/hf/final"))]


def test_artefacts_and_report(smoke):
    root, config, res = smoke
    report = (root / "report.md").read_text()
    for finding in ("(a)", "(b)", "(c)", "(d)"):
        assert finding in report
    for name in ("direction", "replacement", "extrapolation", "reweighting"):
        png = root / "figures" / f"{name}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and f"figures/{name}.png" in report
        assert name in res
    runs = DemoSettings.from_dict(config.to_dict()).rl.runs
    assert len(runs) == 3 * 2 and len(_models(root)) == 1 + len(runs)  # methods x seeds, + base
    assert all(len(c["eval"]) == config.rl.steps + 1 for c in res["reweighting"]["curves"].values())


def test_compilation_cache_setting_is_scoped(tmp_path):
    """The demo caches compilations in its work directory only while it runs (unless the user set a
    cache): a process that goes on (a notebook) must not read that directory's cache afterwards."""
    before = jax.config.jax_compilation_cache_dir  # None: tests/conftest.py sets no cache
    try:
        with pipeline._compilation_cache(None):  # xla_cache = False
            assert jax.config.jax_compilation_cache_dir == before
        jax.config.update("jax_compilation_cache_dir", None)
        with pipeline._compilation_cache(tmp_path / "xla"):
            assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
        assert jax.config.jax_compilation_cache_dir is None
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "user"))
        with pipeline._compilation_cache(tmp_path / "xla"):  # the user's setting wins
            assert jax.config.jax_compilation_cache_dir == str(tmp_path / "user")
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_every_model_loads_with_transformers(smoke):
    import torch
    import transformers

    from dlogp_jax.data.prompts import render_prompt
    from dlogp_jax.model.tokenizer import load_tokenizer

    root, _, _ = smoke
    tok = load_tokenizer(root / "world" / "base")
    ids = tok.encode(render_prompt(tok, "Start at 3: +4.", True), add_special_tokens=False)
    for path in _models(root):
        assert load_tokenizer(path).get_vocab() == tok.get_vocab()
        model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
        with torch.no_grad():
            logits = model(torch.as_tensor([ids])).logits
        assert torch.isfinite(logits).all()


def _accuracies(x, key=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _accuracies(v, k)
    elif isinstance(x, list):
        for v in x:
            yield from _accuracies(v, key)
    elif key in ("accuracy", "eval_accuracy") and isinstance(x, float):
        yield key, x


def test_accuracies_are_fractions(smoke):
    _, _, res = smoke
    parts = {k: res[k] for k in ("replacement", "extrapolation", "reweighting")}
    found = [v for k, v in _accuracies(parts)]
    assert len(found) > 30 and all(0.0 <= v <= 1.0 for v in found)


def test_replacement_rate_grows_with_the_dlogp_threshold(smoke):
    _, _, res = smoke
    pts = sorted(res["replacement"]["curves"]["dlogp"], key=lambda p: p["threshold"])
    rates = [p["rate"] for p in pts]
    assert rates == sorted(rates) and rates[-1] > rates[0]
    for name, curve in res["replacement"]["curves"].items():  # measured rates follow the targets
        by_target = [p["rate"] for p in sorted(curve, key=lambda p: p["target_rate"])]
        assert by_target == sorted(by_target), name


def test_none_reproduces_base_and_all_reproduces_rl(smoke):
    root, _, res = smoke
    rep = res["replacement"]
    read = lambda run: [json.loads(line) for line in (Path(run["out"]) / "samples.jsonl").open()]  # noqa: E731
    base, none = read(rep["base"]), read(rep["ends"]["none"])
    assert [r["token_ids"] for r in base] == [r["token_ids"] for r in none]  # identical samples
    assert rep["checks"]["none_minus_base"]["mean"] == 0.0
    all_rl = rep["checks"]["all_minus_rl"]
    assert abs(all_rl["mean"]) <= all_rl["ci95"] + 1e-9  # same distribution: within sampling error
    assert rep["ends"]["all"]["rate"] == 1.0 and rep["ends"]["none"]["rate"] == 0.0


def test_rerun_reuses_every_stage(smoke, monkeypatch):
    root, config, res = smoke

    def refuse(*a, **k):
        raise AssertionError("a finished stage ran again")

    for tool in ("sample", "score"):
        monkeypatch.setattr(f"dlogp_jax.demo.tools.{tool}", refuse)
    monkeypatch.setattr("dlogp_jax.demo.rl_pool.launch", refuse)
    monkeypatch.setattr("dlogp_jax.demo.pipeline.build_base", refuse)
    demo.run(config)
    assert json.loads((root / "results.json").read_text()) == res
    # Settings that do not change a result (how many train at once) do not invalidate anything.
    other = get_config("demo", "smoke", workdir=str(root), xla_cache=False)
    other.rl.workers = 1
    demo.run(other)
    assert json.loads((root / "results.json").read_text())["replacement"] == res["replacement"]


def test_killed_sampling_run_resumes_to_the_same_samples(smoke):
    root, config, res = smoke
    name = "samples/replace_random_0.1"
    out = root / name
    whole = (out / "samples.jsonl").read_text()
    lines = whole.splitlines(keepends=True)
    (out / "samples.jsonl").write_text("".join(lines[: len(lines) // 2]) + lines[-1][:7])
    (root / "stages" / f"{name}.json").unlink()  # as if killed before the stage recorded
    config = get_config(
        "demo", "smoke", workdir=str(root), stages="replacement,report", xla_cache=False
    )
    demo.run(config)
    assert (out / "samples.jsonl").read_text() == whole
    assert json.loads((root / "results.json").read_text())["replacement"] == res["replacement"]


def test_fresh_dir_empties_other_settings(tmp_path):
    d = stages.fresh_dir(tmp_path / "run", {"a": 1})
    (d / "partial").write_text("x")
    assert (stages.fresh_dir(tmp_path / "run", {"a": 1}) / "partial").exists()  # resumable
    assert not (stages.fresh_dir(tmp_path / "run", {"a": 2}) / "partial").exists()


def test_bad_stage_name(tmp_path):
    config = get_config("demo", "smoke", workdir=str(tmp_path), stages="world,plots")
    with pytest.raises(ValueError, match="stages: unknown \\['plots'\\]"):
        demo.run(config)
    assert not list(tmp_path.iterdir())  # refused before anything is written


def test_failed_training_run_names_its_log(tmp_path):
    config = get_config("demo", "smoke", workdir=str(tmp_path))
    ctx = Ctx(DemoSettings.from_dict(config.to_dict()), tmp_path, log=print)
    log = tmp_path / "rl" / "none_s0" / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("step 1/3 ...\nerror: dynamic sampling kept 0 informative groups\n")
    with pytest.raises(SystemExit, match="(?s)none_s0 exited with status 1.*kept 0 informative"):
        rl_pool.collect(ctx, "none", 0, returncode=1)


@pytest.mark.parametrize(
    "section, field, value, message",
    [
        ("rl", "methods", "none,focus", "rl.methods: unknown \\['focus'\\]"),
        ("rl", "seeds", "0,x", "rl.seeds='0,x': write comma-separated int values"),
        ("exp", "rates", "0.1,1.5", "exp.rates: \\[1.5\\] out of range"),
        ("exp", "criteria", "", "exp.criteria is empty"),
        ("exp", "criteria", "dlogp,all", "exp.criteria: unknown \\['all'\\]"),
    ],
)
def test_bad_list_settings_are_named(tmp_path, section, field, value, message):
    config = get_config("demo", "smoke", workdir=str(tmp_path / "w"))
    config[section][field] = value
    with pytest.raises(ValueError, match=message):
        demo.run(config)
    assert not (tmp_path / "w").exists()  # refused before anything is written
