"""Accuracy figures: curves per criterion vs replacement rate (log-x when rates span decades),
reference bands, single points with their interval, bars with intervals."""

import math

import numpy as np
import pytest

from dlogp_jax.analysis import sample_plots
from dlogp_jax.analysis.sample_plots import CurvePanel, Point


def _curves(rates):
    return {
        "dlogp": [Point(r, 0.3 + r, 0.05) for r in rates],
        "random": [Point(r, 0.3 - r, 0.04) for r in rates],
    }


REFS = {"base": Point(0, 0.3, 0.03), "RL": Point(0, 0.5, 0.03)}


def test_curves_log_x_when_rates_span_decades_and_references():
    fig = sample_plots.curves_figure(
        [CurvePanel(_curves([0.001, 0.01, 0.1]), "replacement rate")], references=REFS
    )
    (ax,) = fig.get_axes()
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "replacement rate"
    assert ax.get_ylabel() == "accuracy (Avg@n)"
    # 2 curves (error bars) + 2 reference lines; bands of both references shaded
    assert len(ax.containers) == 2
    refs = [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("-", "None")]
    assert [ln.get_ydata()[0] for ln in refs] == [0.3, 0.5]
    assert len(ax.patches) == 2
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [
        "dlogp",
        "random",
        "base: 0.300 ± 0.030",
        "RL: 0.500 ± 0.030",
        "error bars and shading: 95% interval",
    ]
    assert ax.get_legend() is None  # the legend is outside the axes
    bars = ax.containers[0].lines[2][0].get_segments()  # the dlogp curve's error bars
    np.testing.assert_allclose([np.ptp(s[:, 1]) for s in bars], 0.1)


def test_linear_x_for_narrow_rates_symlog_with_a_zero_and_a_single_point():
    lin = sample_plots.curves_figure([CurvePanel(_curves([0.1, 0.3]), "rate")])
    assert lin.get_axes()[0].get_xscale() == "linear"
    sym = sample_plots.curves_figure([CurvePanel(_curves([0.0, 0.001, 0.1]), "rate")])
    assert sym.get_axes()[0].get_xscale() == "symlog"
    assert sym.get_axes()[0].get_xlim()[0] > -0.001  # no negative rates shown
    one = sample_plots.curves_figure(
        [CurvePanel(_curves([0.1]), "rate"), CurvePanel({"all": [Point(0.5, 0.4, 0.1)]}, "γ")]
    )
    ax = one.get_axes()[1]
    assert list(ax.get_xticks()) == [0.5] and ax.get_xlim() == (0.0, 1.0)
    (line,) = ax.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose(line[:, 1], [0.3, 0.5])  # the point with its interval


def test_bars_with_intervals_grouped_colours():
    bars = {
        "base": Point(0, 0.3, 0.05),
        "γ=0.5": Point(0, 0.4, math.nan),
        "γ=1": Point(0, 0.45, 0.1),
    }
    groups = {"base": "single", "γ=0.5": "extrapolate", "γ=1": "extrapolate"}
    fig = sample_plots.bars_figure(bars, groups=groups, references={"RL": Point(0, 0.5, 0.02)})
    (ax,) = fig.get_axes()
    rects = [p for p in ax.patches if type(p).__name__ == "Rectangle"]
    assert [r.get_width() for r in rects[:3]] == pytest.approx([0.3, 0.4, 0.45])
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert ticks == {"base": 2, "γ=0.5": 1, "γ=1": 0}  # the first bar on top
    assert rects[1].get_facecolor() == rects[2].get_facecolor() != rects[0].get_facecolor()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["single", "extrapolate", "RL: 0.500 ± 0.020"]


def _summary(mode, criterion, threshold, rate, acc, gamma=0.0):
    settings = dict(mode=mode, criterion=criterion, threshold=threshold, gamma=gamma)
    return dict(settings=settings, replacement_rate=rate, accuracy=acc, accuracy_ci95=0.05)


def test_sample_points_split_curves_references_and_bars():
    summaries = {
        "base": _summary("single", "dlogp", -0.3, 0.0, 0.2),
        "r1": _summary("replace", "dlogp", -0.3, 0.01, 0.3),
        "r2": _summary("replace", "dlogp", -0.1, 0.1, 0.4),
        "e1": _summary("extrapolate", "dlogp", -0.3, 0.01, 0.45, gamma=0.5),
        "all": _summary("replace", "all", 0.0, 1.0, 0.5),
        "xall": _summary("extrapolate_all", "dlogp", 0.0, 1.0, 0.5, gamma=0.5),
    }
    curves, refs, bars, modes = sample_plots.sample_points(summaries)
    assert list(curves) == ["replace: Δlog p ≤ τ", "extrapolate, γ=0.5: Δlog p ≤ τ"]
    assert [p.x for p in curves["replace: Δlog p ≤ τ"]] == [0.01, 0.1]
    assert list(refs) == ["base", "all", "xall"] and list(bars) == list(summaries)
    assert modes["e1"] == "extrapolate"
    assert (
        sample_plots.describe(summaries["e1"]["settings"])
        == "extrapolate Δlog p ≤ τ, τ=-0.3, γ=0.5"
    )
