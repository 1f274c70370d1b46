"""Histograms of entropy, KL and Δlog p (docs/method.md §1; the paper's Fig. 1b): log y-axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PANELS = (
    ("Entropy", ("entropy_base", "entropy_rl")),
    ("KL divergence", ("kl_rl_base", "kl_base_rl")),
    ("Δlog p = log π_RL − log π_base", ("dlogp",)),
)


def histograms(table: dict[str, np.ndarray], path: str | Path, bins: int = 80, title: str = ""):
    """Writes a PNG with one panel per metric family; one curve per (metric, group) pair.

    Args:
      table: token table columns (see `dlogp_jax.analysis.metrics`); an optional `group` column
        (e.g. which model generated the response) gives separate curves.
      path: output PNG (written via a temporary file and renamed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, [c for c in cols if c in table]) for t, cols in PANELS]
    panels = [(t, cols) for t, cols in panels if cols] or [("log p", ["logp_base"])]
    groups = sorted(set(table["group"])) if "group" in table else [""]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (name, cols) in zip(axes[0], panels):
        for col in cols:
            for g in groups:
                v = table[col] if g == "" else table[col][table["group"] == g]
                if v.size == 0:
                    continue
                dens, edges = np.histogram(v, bins=bins, density=True)
                label = col if g == "" else f"{col} [{g}]"
                ax.step(edges[:-1], np.where(dens > 0, dens, np.nan), where="post", label=label)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
