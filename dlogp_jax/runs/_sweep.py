"""τ/γ sweeps of `sample`: every (threshold, gamma) point of a grid in one process.

One model load, one prompt load and one compile serve the whole grid: the decoders trace τ and γ
(`sampling.decode`, `engine.adapter`), so only the knobs' values change between points. Each point
is an ordinary `sample` output directory (`out/points/tau=<τ>_gamma=<γ>/`: samples.jsonl,
summary.json, run.json holding that point's threshold and gamma), so it resumes on its own, and
dlogp-pairs / dlogp-grade read it like any run. `out/sweep.json` and `out/sweep.md` are the
combined table, rewritten after every point. Adding points to a sweep and re-running decodes only
the new ones.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from dlogp_jax import outputs
from dlogp_jax.errors import DataError

POINTS_DIR = "points"
SWEEP_FILE = "sweep.json"
# The combined table's columns, from each point's summary.json.
COLUMNS = (
    "accuracy",
    "accuracy_ci95",
    "replaced_token_fraction",
    "mean_length",
    "cache_full",
    "num_samples",
    "tokens_per_second",
)


def is_sweep(settings) -> bool:
    """Whether a SampleSettings asks for a grid (`thresholds` or `gammas` given)."""
    return bool(settings.thresholds or settings.gammas)


def grid(settings) -> list[tuple[float, float]]:
    """The (threshold, gamma) points, thresholds outer: a missing list is the single value."""
    thresholds = settings.thresholds or (settings.threshold,)
    gammas = settings.gammas or (settings.gamma,)
    return list(itertools.product(thresholds, gammas))


def point_dir(out: Path, threshold: float, gamma: float) -> Path:
    """`out/points/tau=<τ>_gamma=<γ>` (shortest exact repr: -0.3, 0.05, 1e-05)."""
    return out / POINTS_DIR / f"tau={threshold!r}_gamma={gamma!r}"


def check_layout(out: Path, sweep: bool) -> None:
    """A sweep and a single run never share an output directory (checked before any work).

    Raises:
      DataError: `out` holds the other kind of run.
    """
    if sweep and (out / "samples.jsonl").exists():
        raise DataError(
            f"out={str(out)!r} holds a single sample run (samples.jsonl); give the sweep "
            "(thresholds/gammas) its own --config.out."
        )
    if not sweep and ((out / SWEEP_FILE).exists() or (out / POINTS_DIR).is_dir()):
        raise DataError(
            f"out={str(out)!r} holds a threshold/gamma sweep; give a single run its own "
            "--config.out, or set --config.thresholds / --config.gammas to continue the sweep."
        )


def write_summary(out: Path, settings: dict[str, Any], points: list[tuple[float, float]]) -> dict:
    """Writes `sweep.json` and `sweep.md` from the finished points' summary.json files.

    Args:
      settings: the run's recorded settings (threshold and gamma are the points').
      points: the grid, in order; points without a summary yet are listed as pending.
    Returns:
      the sweep.json content: {"settings", "points": [{threshold, gamma, dir, status, COLUMNS}]}.
    """
    rows = []
    for threshold, gamma in points:
        where = point_dir(out, threshold, gamma)
        row = {"threshold": threshold, "gamma": gamma, "dir": str(where.relative_to(out))}
        summary_file = where / "summary.json"
        if summary_file.exists():
            summary = json.loads(summary_file.read_text())
            row.update(status="done", **{k: summary.get(k) for k in COLUMNS})
        else:
            row["status"] = "pending"
        rows.append(row)
    fixed = {k: v for k, v in settings.items() if k not in ("threshold", "gamma")}
    result = {"settings": fixed, "points": rows}
    outputs.write_json(out / SWEEP_FILE, result)
    outputs.write_text(out / "sweep.md", markdown_table(rows))
    return result


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The sweep as a Markdown table: one line per point, accuracy with its 95% half-width."""
    lines = [
        "| τ | γ | accuracy | replaced tokens | mean length | cache_full | samples | tokens/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "done":
            lines.append(f"| {r['threshold']!r} | {r['gamma']!r} | pending | | | | | |")
            continue
        acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        if r["accuracy"] is not None and math.isfinite(r["accuracy_ci95"] or math.nan):
            acc += f" ± {r['accuracy_ci95']:.4f}"
        lines.append(
            f"| {r['threshold']!r} | {r['gamma']!r} | {acc} | {r['replaced_token_fraction']:.4f} "
            f"| {r['mean_length']:.1f} | {r['cache_full']} | {r['num_samples']} "
            f"| {r['tokens_per_second']:.0f} |"
        )
    return "\n".join(lines) + "\n"
