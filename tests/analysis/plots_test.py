"""The paper-ready histograms: shared bins, a colour per group, labelled axes, log-y, PNG/PDF/SVG."""

import matplotlib
import numpy as np
import pytest
from matplotlib.patches import StepPatch

from dlogp_jax.analysis import plots


def _table(n=500):
    rng = np.random.default_rng(0)
    return {
        "dlogp": np.concatenate([rng.normal(0, 0.3, n), rng.normal(-0.2, 2.0, n)]),
        "entropy_base": rng.exponential(0.5, 2 * n),
        "entropy_rl": rng.exponential(0.3, 2 * n),
        "kl_rl_base": rng.exponential(0.05, 2 * n),
        "kl_base_rl": rng.exponential(0.07, 2 * n),
        "group": np.repeat(np.asarray(["base-gen", "rl-gen"]), n),
    }


def test_shared_bins_group_colours_labels_log_y(monkeypatch):
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail("switched the backend"))
    fig = plots.histogram_figure(_table(), bins=30, title="t")
    axes = fig.get_axes()
    assert [a.get_title() for a in axes] == ["Entropy", "KL divergence", "Δlog p"]
    for ax in axes:
        curves = [p for p in ax.patches if isinstance(p, StepPatch)]
        edges = [c.get_data().edges for c in curves]
        assert len(curves) == (2 if ax.get_title() == "Δlog p" else 4)
        assert all(np.array_equal(e, edges[0]) and len(e) == 31 for e in edges)  # shared bins
        assert ax.get_yscale() == "log" and "nats" in ax.get_xlabel()
        assert "density" in ax.get_ylabel()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:2] == ["base-gen", "rl-gen"]
        # One colour per group: the base-gen curves share one colour, the rl-gen curves another.
        colours = {tuple(c.get_edgecolor()) for c in curves}
        assert len(colours) == 2
    dl = axes[2]
    assert dl.get_xlabel() == "Δlog p = log π_RL − log π_base (nats)"


def test_one_model_table_and_all_formats(tmp_path):
    rng = np.random.default_rng(1)
    fig = plots.histogram_figure({"logp_base": -rng.exponential(1.0, 100)})
    assert [a.get_title() for a in fig.get_axes()] == ["log p"]
    path = plots.histograms(_table(), tmp_path / "out" / "histograms.png", title="x")
    assert path == tmp_path / "out" / "histograms.png"
    for fmt in ("png", "pdf", "svg"):
        assert (tmp_path / "out" / f"histograms.{fmt}").stat().st_size > 5_000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "histograms.pdf",
        "histograms.png",
        "histograms.svg",
    ]  # no temporary file left behind
