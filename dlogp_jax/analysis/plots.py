"""Histograms of entropy, KL and Δlog p (docs/method.md §1; the paper's Fig. 1b): log y-axis.

One panel per metric family; within a panel every curve shares the same bin edges, each group
(e.g. which model wrote the response) has one colour, and the two models' versions of a metric
(entropy under the base / RL model, KL in either direction) differ by line style. `histogram_figure`
returns a matplotlib `Figure` built without pyplot, so it never switches the user's backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# (panel title, x-axis label, columns with their legend names)
PANELS = (
    (
        "Entropy",
        "entropy H (nats)",
        (("entropy_base", "under π_base"), ("entropy_rl", "under π_RL")),
    ),
    (
        "KL divergence",
        "KL divergence (nats)",
        (("kl_rl_base", "KL(π_RL‖π_base)"), ("kl_base_rl", "KL(π_base‖π_RL)")),
    ),
    (
        "Δlog p",
        "Δlog p = log π_RL − log π_base (nats)",
        (("dlogp", "Δlog p"),),
    ),
)
ONE_MODEL = ("log p", "log π_base (nats)", (("logp_base", "log p"),))
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
STYLES = ("-", "--", ":", "-.")
FORMATS = ("png", "pdf", "svg")


def histogram_figure(table: dict[str, np.ndarray], bins: int = 80, title: str = ""):
    """The histogram figure of a token table.

    Args:
      table: token table columns, each [N] (see `dlogp_jax.analysis.metrics`); an optional [N]
        `group` column gives one colour per group (in order of appearance).
      bins: bins per panel, shared by every curve of the panel.
      title: the figure's title ("" = none).
    Returns:
      a `matplotlib.figure.Figure` (not attached to pyplot).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    panels = [(t, x, [c for c in cols if c[0] in table]) for t, x, cols in PANELS]
    panels = [p for p in panels if p[2]] or [ONE_MODEL]
    groups = list(dict.fromkeys(table["group"].tolist())) if "group" in table else [""]
    colour = {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(groups)}
    fig = Figure(figsize=(4.6 * len(panels), 3.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, xlabel, cols) in zip(axes, panels):
        values = [np.asarray(table[c], np.float64) for c, _ in cols]
        finite = np.concatenate([v[np.isfinite(v)] for v in values])
        if finite.size == 0:
            ax.set_visible(False)
            continue
        edges = np.histogram_bin_edges(finite, bins=bins)  # shared by every curve of the panel
        for style, v in zip(STYLES, values):
            for g in groups:
                x = v if g == "" else v[table["group"] == g]
                x = x[np.isfinite(x)]
                if x.size == 0:
                    continue
                dens, _ = np.histogram(x, bins=edges, density=True)
                # No baseline: on a log axis the drop to 0 at each end would be a spurious wall.
                y = np.where(dens > 0, dens, np.nan)
                ax.stairs(y, edges, baseline=None, color=colour[g], ls=style, lw=1.4)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density (1/nat, log scale)")
        ax.grid(alpha=0.25, which="major")
        handles = [Line2D([], [], color=colour[g], lw=2, label=g) for g in groups if g]
        if len(cols) > 1:
            handles += [
                Line2D([], [], color="0.3", ls=s, lw=1.4, label=label)
                for (_, label), s in zip(cols, STYLES)
            ]
        if handles:
            # Below the panel, off the data (tails fill the corners of a log-density plot).
            ax.legend(
                handles=handles,
                fontsize=8,
                frameon=False,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.2),
                ncols=2,
            )
    if title:
        fig.suptitle(title)
    return fig


def histograms(
    table: dict[str, np.ndarray], path: str | Path, bins: int = 80, title: str = ""
) -> Path:
    """Writes `histogram_figure(table)` as PNG at `path` and as PDF and SVG beside it.

    Args:
      table: token table columns (see `histogram_figure`).
      path: the PNG file; `path.with_suffix(".pdf")` and `.svg` are written too (each atomically).
    Returns:
      the PNG path.
    """
    return save_figure(histogram_figure(table, bins=bins, title=title), path)[0]


def save_figure(
    fig, path: str | Path, formats: Sequence[str] = FORMATS, dpi: int = 150
) -> list[Path]:
    """Writes `fig` at `path` once per format (the suffix is replaced), each file atomically.

    Saving goes through the figure's own Agg canvas (`Figure.savefig`), never pyplot, so the
    user's backend and pyplot's figure list are left alone.
    Args:
      fig: a `matplotlib.figure.Figure`.
      path: the target; `path.with_suffix(f".{fmt}")` is written for each of `formats`.
      formats: any of png, pdf, svg.
    Returns:
      the written paths, in the order of `formats`.
    """
    if bad := [f for f in formats if f not in FORMATS]:
        raise ValueError(f"formats {bad}: use some of {', '.join(FORMATS)}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        tmp = target.with_name(f".{target.name}.tmp.{fmt}")  # the file appears whole or not at all
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(target)
    return written
