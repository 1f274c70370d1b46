"""`dlogp-plot` end to end: training curves of train workdirs, accuracy figures of sample outputs,
every format written, the KIND DIR... words, one-line errors; the user's backend is left alone."""

import json
import subprocess
import sys

import pytest

from dlogp_jax.analysis.sample_summary import summarize_samples
from dlogp_jax.cli import plot
from tests.analysis.train_plots_test import history
from tests.cli.configs import get_config


def _train_run(path, **kw):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history(**kw)))
    return str(path)


def _sample_out(path, mode, criterion, threshold, correct, rate):
    """A dlogp-sample output: summary.json as runs/_sample.py writes it (summarize_samples)."""
    rows = {
        p: [
            dict(
                length=10,
                replacement_rate=rate,
                selected=[1] * int(rate * 10),
                text="4",
                finish_reason="stop",
                correct=bool(c),
            )
            for c in correct[p]
        ]
        for p in range(len(correct))
    }
    summary = summarize_samples(rows)
    summary["settings"] = dict(mode=mode, criterion=criterion, threshold=threshold, gamma=0.0)
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps(summary))
    return str(path)


def test_train_runs_to_training_figure_in_every_format(tmp_path):
    a = _train_run(tmp_path / "dapo")
    b = _train_run(tmp_path / "weighted", shift=0.1, weight=0.9)
    config = get_config("plot", inputs=f"{a},{b}", out=str(tmp_path / "figs"))
    written = plot.run(config)
    assert [p.name for p in written] == ["training.png", "training.pdf", "training.svg"]
    assert all(p.stat().st_size > 5_000 for p in written)
    # one input: the figure goes beside it; words override kind and inputs
    (png,) = plot.run(get_config("plot", formats="png"), ["train", a])
    assert png == tmp_path / "dapo" / "training.png"
    (svg,) = plot.run(get_config("plot", formats="svg", inputs=f"{a}/metrics.jsonl"))
    assert svg == tmp_path / "dapo" / "training.svg"


def test_sample_outputs_to_replacement_and_bar_figures(tmp_path):
    outs = [
        _sample_out(tmp_path / "base", "single", "dlogp", -0.3, [[0, 0], [1, 0], [0, 0]], 0.0),
        _sample_out(tmp_path / "r1", "replace", "dlogp", -0.5, [[1, 0], [1, 0], [0, 0]], 0.1),
        _sample_out(tmp_path / "r2", "replace", "dlogp", -0.1, [[1, 1], [1, 0], [0, 1]], 0.3),
        _sample_out(tmp_path / "rnd", "replace", "random", 0.1, [[1, 0], [0, 0], [0, 0]], 0.1),
    ]
    config = get_config("plot", kind="sample", out=str(tmp_path / "figs"), formats="png,svg")
    written = plot.run(config, ["sample", *outs])
    names = ["replacement.png", "replacement.svg", "accuracy.png", "accuracy.svg"]
    assert [p.name for p in written] == names
    svg = (tmp_path / "figs" / "replacement.svg").read_text()
    assert "Avg@2" in svg and "Δlog p" in svg and "random" in svg  # labels are in the file


def test_bad_inputs_fail_with_one_line(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(SystemExit, match="error: .*labels: 1 labels for 2 inputs"):
        plot.run(get_config("plot", labels="x", out="o"), ["train", "a", "b"])
    with pytest.raises(ValueError, match="metrics.jsonl"):
        plot.run(get_config("plot"), ["train", str(tmp_path / "r")])
    proc = subprocess.run(
        [sys.executable, "-m", "dlogp_jax.cli.plot", "sample", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "summary.json not found" in last


def test_plot_functions_leave_the_backend_and_pyplot_alone(tmp_path):
    """A user on another backend keeps it; pyplot is never imported (no figure manager)."""
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
from dlogp_jax.analysis import plots, sample_plots, train_plots
from dlogp_jax.demo import report
from tests.analysis.train_plots_test import history
from tests.analysis.plots_test import _table
fig = train_plots.training_figure({{"a": [history()]}})
plots.save_figure(fig, r"{tmp_path}/t.png")
plots.histograms(_table(), r"{tmp_path}/h.png")
P = sample_plots.Point
sample_plots.curves_figure([sample_plots.CurvePanel({{"c": [P(0.1, 0.3, 0.1)]}}, "rate")])
sample_plots.bars_figure({{"c": P(0, 0.3, 0.1)}})
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
