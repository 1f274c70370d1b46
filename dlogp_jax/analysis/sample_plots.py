"""Accuracy figures of decoding runs: accuracy vs replacement rate per criterion (the paper's
Fig. 1c / 2) and accuracy per setting with intervals (Fig. 4's bars).

The figures take plain points (`Point`: an x, an accuracy and its 95% half-width), so the demo and
`dlogp-plot sample` draw with the same code; `sample_points` turns `dlogp-sample` summaries into
them. Reference runs (the base model alone, the RL model alone) are drawn as a dashed line with
their interval shaded in every panel. Legends sit below the panels, never over the data; the x-axis
is logarithmic when the positive x values span a decade or more (symlog when a 0 is among them).
Figures are built without pyplot (`plots.save_figure` writes them).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax.analysis.plots import COLOURS
from dlogp_jax.errors import DataError

CRITERIA = {
    "dlogp": "Δlog p ≤ τ",
    "entropy_base": "base entropy ≥ τ",
    "entropy_rl": "RL entropy ≥ τ",
    "kl_rl_base": "KL(RL‖base) ≥ τ",
    "kl_base_rl": "KL(base‖RL) ≥ τ",
    "kl_sym": "sym. KL ≥ τ",
    "random": "random (U < τ)",
}
REFERENCE_COLOURS = ("0.5", "black")
REFERENCE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))
DECADES_FOR_LOG = 1.0  # log-x once max/min of the positive x reaches 10


@dataclasses.dataclass(frozen=True)
class Point:
    """One accuracy measurement: at `x` (a rate, γ, ...), with its 95% half-width (NaN = none)."""

    x: float
    accuracy: float
    ci95: float = math.nan


@dataclasses.dataclass(frozen=True)
class CurvePanel:
    """One panel: {label: points} drawn as lines with error bars against `xlabel`."""

    curves: Mapping[str, Sequence[Point]]
    xlabel: str
    title: str = ""
    log_x: bool | None = None  # None = log when the x values span DECADES_FOR_LOG decades


def _x_scale(ax, xs: np.ndarray, log_x: bool | None) -> None:
    pos = xs[xs > 0]
    if np.unique(xs).size == 1:  # a single x: one tick at it, the point centred
        x = float(xs[0])
        ax.set_xticks([x])
        ax.set_xlim(x - max(abs(x), 1.0) * 0.5, x + max(abs(x), 1.0) * 0.5)
        return
    if log_x is None:
        log_x = pos.size > 1 and np.log10(pos.max() / pos.min()) >= DECADES_FOR_LOG
    if not log_x or pos.size == 0:
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, SymmetricalLogLocator

    if (xs <= 0).any():  # a rate of 0 has no log: linear below the smallest positive rate
        ax.set_xscale("symlog", linthresh=float(pos.min()), linscale=0.5)
        ax.set_xlim(left=-0.3 * float(pos.min()))  # no negative rates
        locator = SymmetricalLogLocator(linthresh=float(pos.min()), base=10, subs=(1, 2, 5))
    else:
        ax.set_xscale("log")
        locator = LogLocator(subs=(1, 2, 5))
    # Plain labels at 1-2-5 steps (0.01, 0.02, 0.05, ...), none on the minor ticks.
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _err(points: Sequence[Point]) -> np.ndarray:
    return np.asarray([0.0 if math.isnan(p.ci95) else p.ci95 for p in points])


def _ref_styles(references: Mapping[str, Point]) -> dict[str, tuple[str, Any]]:
    """(colour, line style) of each reference, distinct for up to 8 references."""
    return {
        k: (REFERENCE_COLOURS[i % 2], REFERENCE_STYLES[(i // 2) % len(REFERENCE_STYLES)])
        for i, k in enumerate(references)
    }


def _references(ax, references: Mapping[str, Point], *, vertical: bool = False) -> None:
    """Dashed lines; their intervals shaded only for up to two (more bands would hide the data)."""
    styles = _ref_styles(references)
    line, span = (ax.axvline, ax.axvspan) if vertical else (ax.axhline, ax.axhspan)
    for name, ref in references.items():
        colour, ls = styles[name]
        line(ref.accuracy, color=colour, ls=ls, lw=1.1)
        if len(references) <= 2 and not math.isnan(ref.ci95):
            span(ref.accuracy - ref.ci95, ref.accuracy + ref.ci95, color=colour, alpha=0.1, lw=0)


def _legend(fig, colours: dict[str, str], references: Mapping[str, Point], *, bars=False) -> None:
    """One legend below the axes, off the data."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color=c, alpha=0.85, label=k)
        if bars
        else Line2D([], [], color=c, marker="o", ms=4, lw=1.4, label=k)
        for k, c in colours.items()
    ]
    styles = _ref_styles(references)
    handles += [
        Line2D([], [], color=styles[k][0], ls=styles[k][1], lw=1.1, label=f"{k}: {_acc(r)}")
        for k, r in references.items()
    ]
    shaded = "error bars" + (" and shading" if 0 < len(references) <= 2 else "")
    handles.append(Patch(color="0.5", alpha=0.25, label=f"{shaded}: 95% interval"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=8)


def _acc(p: Point) -> str:
    return f"{p.accuracy:.3f}" + ("" if math.isnan(p.ci95) else f" ± {p.ci95:.3f}")


def curves_figure(
    panels: Sequence[CurvePanel],
    *,
    references: Mapping[str, Point] = {},
    ylabel: str = "accuracy (Avg@n)",
    title: str = "",
):
    """Accuracy curves, one panel per `CurvePanel`, a colour per curve label across panels.

    A curve of one point is drawn as that point with its interval. `references` (e.g. the base and
    the RL model alone) are dashed lines with their interval shaded, in every panel.
    Args:
      panels: the panels, left to right (they share the y-axis).
      references: {label: Point} (its x is ignored).
      ylabel: the y-axis label of the first panel.
      title: the figure's title ("" = none).
    Returns:
      a `matplotlib.figure.Figure` (not attached to pyplot).
    """
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("curves_figure: give at least one panel.")
    names = list(dict.fromkeys(k for p in panels for k in p.curves))
    colours = {k: COLOURS[i % len(COLOURS)] for i, k in enumerate(names)}
    fig = Figure(figsize=(max(4.8 * len(panels), 8.0), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, panel in zip(axes, panels):
        xs = []
        for name, points in panel.curves.items():
            points = sorted(points, key=lambda p: p.x)
            x = np.asarray([p.x for p in points], np.float64)
            y = np.asarray([p.accuracy for p in points], np.float64)
            ax.errorbar(x, y, yerr=_err(points), color=colours[name], marker="o", ms=5, capsize=3)
            xs.append(x)
        _references(ax, references)
        _x_scale(ax, np.concatenate(xs) if xs else np.zeros(0), panel.log_x)
        ax.set_xlabel(panel.xlabel)
        ax.set_title(panel.title, fontsize=10)
        ax.grid(alpha=0.25, which="major")
    axes[0].set_ylabel(ylabel)
    _legend(fig, colours, references)
    if title:
        fig.suptitle(title)
    return fig


def bars_figure(
    bars: Mapping[str, Point],
    *,
    groups: Mapping[str, str] = {},
    references: Mapping[str, Point] = {},
    xlabel: str = "accuracy (Avg@n)",
    title: str = "",
):
    """Accuracy per setting as horizontal bars with 95% error bars (the paper's Fig. 4).

    Args:
      bars: {setting label: Point} (x ignored), drawn top to bottom in order.
      groups: {setting label: group} (e.g. the decoding mode): a colour per group, in the legend;
        {} = one colour.
      references: {label: Point} drawn as vertical lines (shaded intervals for up to two).
      xlabel: the accuracy axis label.
      title: the figure's title ("" = none).
    Returns:
      a `matplotlib.figure.Figure` (not attached to pyplot).
    """
    from matplotlib.figure import Figure

    if not bars:
        raise ValueError("bars_figure: give at least one bar.")
    labels = list(bars)
    names = list(dict.fromkeys(groups.get(k, "") for k in labels))
    colour = {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(names)}
    fig = Figure(figsize=(8.0, 1.4 + 0.34 * len(labels)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(labels))[::-1]  # first bar on top
    points = [bars[k] for k in labels]
    acc = np.asarray([p.accuracy for p in points])
    colours = [colour[groups.get(k, "")] for k in labels]
    ax.barh(y, acc, xerr=_err(points), color=colours, alpha=0.85, capsize=3, height=0.65)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.6, len(labels) - 0.4)
    _references(ax, references, vertical=True)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.25, axis="x")
    _legend(fig, {g: colour[g] for g in names if g}, references, bars=True)
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------------------------ dlogp-sample
def read_summary(out: str | Path) -> dict[str, Any]:
    """summary.json of a `dlogp-sample` output, checked to hold an accuracy.

    Raises:
      DataError: no summary.json, or no accuracy (the prompts had no answers).
    """
    path = Path(out) / "summary.json"
    if not path.is_file():
        raise DataError(f"{path} not found: give finished dlogp-sample output directories.")
    summary = json.loads(path.read_text())
    if "accuracy" not in summary or "settings" not in summary:
        raise DataError(
            f"{path} has no accuracy: sample prompts that carry an `answer` to plot accuracy."
        )
    return summary


def describe(settings: Mapping[str, Any]) -> str:
    """A short label of a sample run's decoding: 'replace Δlog p ≤ τ, τ=-0.3', 'single', ..."""
    mode = settings.get("mode", "single")
    crit = CRITERIA.get(settings.get("criterion"), settings.get("criterion"))
    if mode == "single":
        return "single model"
    if mode == "extrapolate_all":
        return f"extrapolate_all γ={settings['gamma']:g}"
    if settings.get("criterion") in ("all", "none"):
        return f"{mode} {settings['criterion']}" + _gamma(settings)
    return f"{mode} {crit}, τ={settings['threshold']:g}" + _gamma(settings)


def _gamma(settings: Mapping[str, Any]) -> str:
    return f", γ={settings['gamma']:g}" if settings.get("mode") == "extrapolate" else ""


def sample_points(summaries: Mapping[str, Mapping[str, Any]]) -> tuple[dict, dict, dict, dict]:
    """Curves, references and bars of `dlogp-sample` summaries.

    Args:
      summaries: {label: summary.json}.
    Returns:
      (curves, references, bars, modes): curves {"<mode>: <criterion>": [Point] at x = the
      replacement rate} for the replace / extrapolate runs that thresholded a criterion;
      references {label: Point} for the others (single model, extrapolate_all, criterion all /
      none); bars {label: Point} for every run; modes {label: decoding mode} (bar colours).
    """
    curves: dict[str, list[Point]] = {}
    references: dict[str, Point] = {}
    bars: dict[str, Point] = {}
    modes: dict[str, str] = {}
    for label, s in summaries.items():
        st = s["settings"]
        modes[label] = st.get("mode", "single")
        point = Point(float(s["replacement_rate"]), float(s["accuracy"]), _ci(s))
        bars[label] = point
        if st.get("mode") in ("replace", "extrapolate") and st.get("criterion") in CRITERIA:
            name = f"{st['mode']}{_gamma(st)}: {CRITERIA[st['criterion']]}"
            curves.setdefault(name, []).append(point)
        else:
            references[label] = point
    return curves, references, bars, modes


def _ci(summary: Mapping[str, Any]) -> float:
    v = summary.get("accuracy_ci95")
    return math.nan if v is None else float(v)
