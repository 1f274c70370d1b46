"""Training curves: a panel per logged metric, a line per run, eval interval bands, seeds' spread."""

import json

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from dlogp_jax.analysis import train_plots
from dlogp_jax.errors import DataError


def history(shift=0.0, steps=6, eval_every=2, weight=1.0):
    """metrics.jsonl lines as rl.trainer writes them: eval at step 0, then merged into steps."""
    rows = [{"step": 0, "eval_accuracy": 0.2 + shift, "eval_accuracy_ci95": 0.05, "eval_n": 4}]
    for s in range(1, steps + 1):
        row = {
            "step": s,
            "reward_mean": -1 + 0.1 * s + shift,
            "accuracy": 0.05 * s + shift,
            "entropy": 0.5 / s,
            "response_length_mean": 20.0 + s,
            "weight_mean": weight,
            "dlogp_vs_init_mean": -0.01 * s,
            "loss": 0.01,
        }
        if s % eval_every == 0:
            row.update(eval_accuracy=0.2 + 0.02 * s + shift, eval_accuracy_ci95=0.05, eval_n=4)
        rows.append(row)
    return rows


def test_one_panel_per_metric_one_line_per_run_and_eval_band():
    fig = train_plots.training_figure({"dapo": [history()], "weighted": [history(0.1, weight=0.9)]})
    axes = [a for a in fig.get_axes() if a.get_visible()]
    titles = [a.get_title() for a in axes]
    assert titles == [
        "held-out accuracy (Avg@4)",
        "reward (rollouts)",
        "accuracy (rollouts)",
        "entropy (rollouts)",
        "response length (rollouts)",
        "mean token weight",
        "Δlog p vs the initial policy",
    ]
    for ax in axes:
        assert len(ax.get_lines()) == 2 and ax.get_xlabel() == "training step"
        assert ax.get_ylabel()
    ev = axes[0]
    assert list(ev.get_lines()[0].get_xdata()) == [0, 2, 4, 6]  # eval lines only
    bands = [c for c in ev.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # each run's 95% interval over prompts
    lo = bands[0].get_paths()[0].vertices[:, 1].min()
    assert lo == pytest.approx(0.2 - 0.05)
    assert "(nats / token)" in axes[3].get_ylabel() and "nats" in axes[6].get_ylabel()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["dapo", "weighted", "shaded: 95% interval over prompts"]
    assert all(not ax.get_legend() for ax in axes)  # no legend over the data


def test_seeds_give_mean_and_min_max_and_chosen_metrics():
    fig = train_plots.training_figure(
        {"dapo": [history(0.0), history(0.2)]}, metrics=["accuracy", "loss"]
    )
    acc, loss = fig.get_axes()
    assert loss.get_title() == "loss"  # a key outside PANELS is labelled by its name
    np.testing.assert_allclose(acc.get_lines()[0].get_ydata(), 0.05 * np.arange(1, 7) + 0.1)
    (band,) = [c for c in acc.collections if isinstance(c, PolyCollection)]
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(0.05) and ys.max() == pytest.approx(0.5)
    assert "shaded: min-max over seeds" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_default_metrics_are_those_logged():
    runs = {"a": [[{"step": 1, "accuracy": 0.1}, {"step": 2, "accuracy": 0.2}]]}
    assert train_plots.default_metrics(runs) == ["accuracy"]
    with pytest.raises(ValueError, match="none of the plotted metrics"):
        train_plots.training_figure({"a": [[{"step": 1, "x": 1.0}]]})


def test_read_history_sorts_and_names_bad_lines(tmp_path):
    rows = history()
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[::-1]))
    assert [r["step"] for r in train_plots.read_history(tmp_path)] == list(range(7))
    with pytest.raises(DataError, match="holds metrics.jsonl|not found"):
        train_plots.read_history(tmp_path / "nothing")
    (tmp_path / "bad.jsonl").write_text('{"step": 1}\n{"loss": 2}\n')
    with pytest.raises(DataError, match="bad.jsonl:2: not a metrics line"):
        train_plots.read_history(tmp_path / "bad.jsonl")
