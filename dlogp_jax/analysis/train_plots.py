"""Training curves of `dlogp-train` runs (the paper's Fig. 5 layout): one panel per metric, one
line per run, eval accuracy with its 95% interval.

A run's history is the list of `metrics.jsonl` lines (`rl.trainer`): step lines (reward_mean,
accuracy, entropy, response_length_mean, weight_mean, dlogp_vs_init_*, loss, ...) and eval lines
(eval_accuracy, eval_accuracy_ci95, eval_n, ...), each with its `step`; a panel takes the lines
that hold its metric. A run given as several histories (seeds) is drawn as their mean with the
min-max over seeds shaded. Figures are built without pyplot (`plots.save_figure` writes them).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dlogp_jax.analysis.plots import COLOURS
from dlogp_jax.errors import DataError

History = Sequence[Mapping[str, float]]  # metrics.jsonl lines, each with a "step"


@dataclasses.dataclass(frozen=True)
class Panel:
    """One metric's panel: the jsonl key, its title and y-axis label (with units)."""

    key: str
    title: str
    ylabel: str
    ci_key: str = ""  # the key of its 95% half-width, drawn as a band for a single history


PANELS = (
    Panel("eval_accuracy", "held-out accuracy", "Avg@n", "eval_accuracy_ci95"),
    Panel("reward_mean", "reward (rollouts)", "mean reward"),
    Panel("accuracy", "accuracy (rollouts)", "fraction correct"),
    Panel("entropy", "entropy (rollouts)", "entropy (nats / token)"),
    Panel("response_length_mean", "response length (rollouts)", "mean length (tokens)"),
    Panel("weight_mean", "mean token weight", "weight (1 = plain DAPO)"),
    Panel("dlogp_vs_init_mean", "Δlog p vs the initial policy", "mean Δlog p (nats / token)"),
)
PANEL_BY_KEY = {p.key: p for p in PANELS}
BAND_ALPHA = 0.13  # light enough that several runs' bands stay readable where they overlap


def read_history(run: str | Path) -> list[dict[str, float]]:
    """The metrics.jsonl lines of a `dlogp-train` workdir (or of the file itself), by step.

    Raises:
      DataError: no metrics.jsonl, or a line that is not a JSON object with a step.
    """
    path = Path(run)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"{path} not found: give dlogp-train workdirs (they hold metrics.jsonl).")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["step"]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(
                f"{path}:{i}: not a metrics line with a step; is it a dlogp-train log?"
            ) from e
        rows.append(row)
    if not rows:
        raise DataError(f"{path} is empty: the run has not logged a step yet.")
    return sorted(rows, key=lambda r: r["step"])


def _series(history: History, key: str) -> tuple[np.ndarray, np.ndarray]:
    """[S] steps and [S] values of the lines holding a finite `key` (a later line wins)."""
    by_step = {}
    for row in history:
        v = row.get(key)
        if isinstance(v, (int, float)) and np.isfinite(v):
            by_step[row["step"]] = float(v)
    steps = np.asarray(sorted(by_step), np.float64)
    return steps, np.asarray([by_step[s] for s in sorted(by_step)], np.float64)


def default_metrics(runs: Mapping[str, Sequence[History]]) -> list[str]:
    """The keys of `PANELS` that some run logged, in `PANELS` order."""
    present = {k for hs in runs.values() for h in hs for row in h for k in row}
    return [p.key for p in PANELS if p.key in present]


def _draw(ax, histories: Sequence[History], panel: Panel, colour: str) -> str:
    """Draws one run on `ax`; returns what its band shows ("" = none)."""
    series = [_series(h, panel.key) for h in histories]
    series = [(s, v) for s, v in series if s.size]
    if not series:
        return ""
    if len(series) == 1:
        steps, values = series[0]
        ax.plot(steps, values, color=colour, lw=1.6, marker="o" if steps.size < 3 else None)
        if panel.ci_key:
            _, half = _series(histories[0], panel.ci_key)
            if half.size == values.size:
                ax.fill_between(steps, values - half, values + half, color=colour, alpha=BAND_ALPHA)
                return "95% interval over prompts"
        return ""
    steps = series[0][0]  # seeds share their steps; keep the steps every seed reached
    for s, _ in series[1:]:
        steps = np.intersect1d(steps, s)
    vals = np.stack([v[np.isin(s, steps)] for s, v in series])
    ax.plot(steps, vals.mean(0), color=colour, lw=1.6)
    ax.fill_between(steps, vals.min(0), vals.max(0), color=colour, alpha=BAND_ALPHA)
    return "min-max over seeds"


def training_figure(
    runs: Mapping[str, Sequence[History]],
    *,
    metrics: Sequence[str] = (),
    title: str = "",
    columns: int = 4,
):
    """Training curves of one or several runs: one panel per metric, one colour per run.

    Args:
      runs: {label: [history, ...]}; a history is a run's metrics.jsonl lines (`read_history`),
        several histories (seeds) give a mean line with the min-max shaded.
      metrics: the keys to plot, any jsonl key (() = those of `PANELS` that some run logged).
      title: the figure's title ("" = none).
      columns: panels per row.
    Returns:
      a `matplotlib.figure.Figure` (not attached to pyplot); its legend sits below the panels (off
      the data) and names what the shaded bands are.
    Raises:
      ValueError: no run, or no metric to plot.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    if not runs:
        raise ValueError("training_figure: give at least one run.")
    keys = list(metrics) or default_metrics(runs)
    if not keys:
        raise ValueError("training_figure: the runs hold none of the plotted metrics.")
    cols = min(columns, len(keys))
    rows = -(-len(keys) // cols)
    fig = Figure(figsize=(3.6 * cols, 2.9 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colour = {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(runs)}
    bands = set()
    for ax, key in zip(axes, keys):
        panel = PANEL_BY_KEY.get(key, Panel(key, key, key))
        for label, histories in runs.items():
            if band := _draw(ax, histories, panel, colour[label]):
                bands.add(band)
        ax.set_title(panel.title + _eval_n(runs, key))
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.25)
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colour[k], lw=2, label=k) for k in runs]
    # The bands are explained in the legend itself, so the figure reads without its caption.
    handles += [Patch(color="0.5", alpha=0.3, label=f"shaded: {b}") for b in sorted(bands)]
    ncols = min(len(handles), 4)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def _eval_n(runs: Mapping[str, Sequence[History]], key: str) -> str:
    """' (Avg@4)' when every run's eval used the same n (eval lines record eval_n)."""
    if key != "eval_accuracy":
        return ""
    ns = {row["eval_n"] for hs in runs.values() for h in hs for row in h if "eval_n" in row}
    return f" (Avg@{ns.pop()})" if len(ns) == 1 else ""
