"""τ/γ sweeps of `runs.sample`: every point equals a single run with its threshold and gamma, the
engine's programs compile for the first point only, a re-run with more points decodes only the
new ones, and the combined table matches the points' summaries."""

import json
import logging
from pathlib import Path

import jax
import pytest

from dlogp_jax import runs
from dlogp_jax.errors import DataError
from dlogp_jax.runs import _sample, _sweep
from tests.runs.sampling import build_inputs, read_run, settings

# The paged engine's jitted programs (engine.rounds / engine.host); eager host-side ops (gather,
# broadcast_in_dim of small index arrays) are not counted.
ENGINE_PROGRAMS = ("jit(run_round)", "jit(prefill)", "jit(admit)", "jit(stage)", "jit(init_state)")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return build_inputs(tmp_path_factory.mktemp("inputs"))


class _Compiles(logging.Handler):
    """Counts the engine programs jax compiles, by sweep point (`point` is set by the test)."""

    def __init__(self):
        super().__init__()
        self.point, self.by_point = 0, {}

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling") and any(p in message for p in ENGINE_PROGRAMS):
            self.by_point[self.point] = self.by_point.get(self.point, 0) + 1


def _counting(monkeypatch):
    """Wraps `_sample_point` to record which point is running and which points decode."""
    compiles, decoded = _Compiles(), []
    sample_point, decode = _sample._sample_point, _sample._decode

    def point(run, spec, out, record, grader):
        compiles.point += 1
        return sample_point(run, spec, out, record, grader)

    def counted_decode(run, batch, spec):
        decoded.append((spec.threshold, spec.gamma))
        return decode(run, batch, spec)

    monkeypatch.setattr(_sample, "_sample_point", point)
    monkeypatch.setattr(_sample, "_decode", counted_decode)
    return compiles, decoded


def test_sweep_points_equal_single_runs(tmp_path, inputs, monkeypatch):
    kw = dict(mode="extrapolate", max_seqs=4, page_size=4)
    compiles, decoded = _counting(monkeypatch)
    logging.getLogger("jax").addHandler(compiles)
    try:
        with jax.log_compiles(True):
            out = runs.sample(
                settings(inputs, tmp_path / "sweep", thresholds="-0.5,-1.5", gammas="0,0.3", **kw)
            )
    finally:
        logging.getLogger("jax").removeHandler(compiles)
    points = [(-0.5, 0.0), (-0.5, 0.3), (-1.5, 0.0), (-1.5, 0.3)]
    assert sorted(set(decoded)) == sorted(points)
    assert compiles.by_point.get(1, 0) > 0, "the first point compiles the engine"
    assert sum(v for k, v in compiles.by_point.items() if k > 1) == 0, compiles.by_point
    # each point is an ordinary sample run: the same rows as a run with its τ and γ alone
    for threshold, gamma in [points[0], points[3]]:
        single = tmp_path / f"single{threshold}_{gamma}"
        runs.sample(settings(inputs, single, threshold=threshold, gamma=gamma, **kw))
        rows_single, summary_single = read_run(single)
        rows_point, summary_point = read_run(_sweep.point_dir(out, threshold, gamma))
        assert rows_point == rows_single
        assert summary_point["settings"] == summary_single["settings"]
    # the points differ (τ and γ reach the decoder) and the table is their summaries
    table = json.loads((out / "sweep.json").read_text())
    assert [(p["threshold"], p["gamma"]) for p in table["points"]] == points
    fractions = [p["replaced_token_fraction"] for p in table["points"]]
    assert len(set(fractions)) == len(points)
    for p in table["points"]:
        summary = json.loads((out / p["dir"] / "summary.json").read_text())
        assert p["status"] == "done" and p["accuracy"] == summary["accuracy"]
        assert p["mean_length"] == summary["mean_length"]
    assert "threshold" not in table["settings"] and table["settings"]["mode"] == "extrapolate"
    md = (out / "sweep.md").read_text().splitlines()
    assert len(md) == 2 + len(points) and md[2].startswith("| -0.5 | 0.0 | ")


def test_sweep_extends_and_resumes(tmp_path, inputs, monkeypatch):
    """Adding a γ decodes only its points; the finished points are kept as written."""
    kw = dict(mode="extrapolate", engine="static", n=2)
    out = tmp_path / "sweep"
    runs.sample(settings(inputs, out, thresholds="-0.5,-1.5", gammas="0.3", **kw))
    kept = _sweep.point_dir(out, -1.5, 0.3) / "samples.jsonl"
    before = kept.read_text()
    _, decoded = _counting(monkeypatch)
    runs.sample(settings(inputs, out, thresholds="-0.5,-1.5", gammas="0.3,0.6", **kw))
    assert set(decoded) == {(-0.5, 0.6), (-1.5, 0.6)}
    assert kept.read_text() == before
    table = json.loads((out / "sweep.json").read_text())
    assert [p["status"] for p in table["points"]] == ["done"] * 4


def test_sweep_and_single_runs_keep_apart(tmp_path, inputs):
    """A sweep into a single run's out, and the reverse, are refused before any model loads."""
    single, sweep = tmp_path / "single", tmp_path / "sweep"
    single.mkdir()
    (single / "samples.jsonl").write_text("")
    with pytest.raises(DataError, match="holds a single sample run .* its own --config.out"):
        runs.sample(settings(inputs, single, mode="extrapolate", gammas="0,0.1"))
    (sweep / "points").mkdir(parents=True)
    with pytest.raises(DataError, match="holds a threshold/gamma sweep"):
        runs.sample(settings(inputs, sweep, mode="extrapolate"))
    assert not (single / "run.json").exists() and not (sweep / "run.json").exists()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(mode="single", thresholds="-0.2,-0.3"), "thresholds='-0.2,-0.3': mode='single'"),
        (dict(mode="replace", gammas="0,0.1"), "a sweep over it needs mode=extrapolate"),
        (dict(mode="extrapolate", criterion="all", thresholds="1,2"), "criterion other than"),
        (dict(mode="extrapolate", gammas="0.1,0.1"), "gammas='0.1,0.1': a value is repeated."),
        (dict(mode="extrapolate", thresholds="a,b"), "thresholds='a,b': give finite numbers"),
        (dict(mode="extrapolate", gammas="0,nan"), "gammas='0,nan': give finite numbers"),
    ],
)
def test_sweep_settings_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        runs.SampleSettings(base="b", rl="r", data="d", **kw)


def test_sweep_lists_parsed():
    s = runs.SampleSettings(base="b", rl="r", data="d", mode="extrapolate", thresholds="-0.2, -1")
    assert s.thresholds == (-0.2, -1.0) and s.gammas == ()
    assert _sweep.grid(s) == [(-0.2, 0.0), (-1.0, 0.0)]
    assert _sweep.point_dir(Path("o"), -0.2, 0.05).name == "tau=-0.2_gamma=0.05"
