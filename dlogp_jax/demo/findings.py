"""The demo's statistics: thresholds from quantiles, paired and per-seed intervals, the four verdicts.

Pure functions over NumPy arrays and plain dicts (read from dlogp-score / dlogp-sample / dlogp-train
outputs by the pipeline), so every number in the report can be recomputed from the written files.

The definitions behind the yes/no verdicts are in `DEFINITIONS` (printed in the report). The paper
reads its findings off figures; these verdicts, with intervals, are the demo's own (docs/method.md
§5, §6).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax.analysis import accuracy

DEFINITIONS = """\
(a) direction: among tokens with |Δlog p| > 0.5 nats (`TAIL`), the fraction with Δlog p < 0 on base
    generations (paper: a negative tail) and on RL generations (a positive tail); magnitude overlap:
    the overlap coefficient Σ min(p, q) of the base-generation and RL-generation histograms of
    entropy, KL and of the Δlog p tails. Reproduced when the tail sign flips (base > 1/2 > RL) and
    the Δlog p tails overlap less than the entropy and the KL histograms do.
(b) the replacement rate at which each criterion's accuracy curve first reaches the RL accuracy
    (linear interpolation between measured points; None when it does not within the sweep), and
    the same for half of the base->RL gap. Its interval: the rates at which the curves of the
    points' upper and lower 95% bounds (Avg@n ± its t half-width) reach the same target (the
    upper bound "not reached" when the lower curve never gets there); pointwise, not simultaneous,
    and the target (the RL model's point accuracy) is taken as exact. Reproduced when Δlog p needs the smallest rate; "n/a"
    when the RL model is not more accurate than the base (nothing to recover).
(c)/(d) paired per-prompt (c) or per-seed (d) differences with a 95% interval: "yes" when the
    interval excludes 0 in favour of the method, "not established" when the mean favours it but the
    interval includes 0, "no" otherwise.
"""
TAIL = 0.5  # nats: |Δlog p| beyond this is a "tail" token


# ------------------------------------------------------------------------------ accuracy
def per_prompt_accuracy(samples_jsonl: str | Path) -> dict[int, float]:
    """{prompt_index: fraction of its samples graded correct} from a dlogp-sample samples.jsonl."""
    by: dict[int, list[bool]] = {}
    for line in Path(samples_jsonl).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by.setdefault(row["prompt_index"], []).append(bool(row.get("correct", False)))
    return {p: float(np.mean(v)) for p, v in by.items()}


def seed_stats(values: Sequence[float]) -> dict[str, float]:
    """mean, sd (ddof 1), min, max, n of per-seed values."""
    v = np.asarray(values, np.float64)
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {
        "mean": float(v.mean()),
        "sd": sd,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }


def seed_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """mean(a) − mean(b) over seeds: `accuracy.welch_difference`, or no interval (NaN) when a side
    has a single seed (its variance is unknown, not zero), so such a run still reports."""
    if min(len(a), len(b)) >= 2:
        return accuracy.welch_difference(a, b)
    return {"mean": float(np.mean(a) - np.mean(b)), "ci95": float("nan"), "df": float("nan")}


def verdict(diff: dict[str, float]) -> str:
    """'yes' (interval above 0), 'not established' (mean > 0, interval includes 0), or 'no'."""
    m, h = diff["mean"], diff.get("ci95", float("nan"))
    if m > 0 and np.isfinite(h) and m - h > 0:
        return "yes"
    return "not established" if m > 0 else "no"


# ------------------------------------------------------------------------------ thresholds
def thresholds_for_rates(criterion: str, scores: np.ndarray, rates: Sequence[float]) -> list[float]:
    """τ per target replacement rate, from criterion scores of base-proposed tokens.

    `dlogp` fires at score <= τ (τ = the rate-quantile); `random` at U < τ (τ = rate); entropy and
    KL criteria at score >= τ (τ = the (1 − rate)-quantile).
    """
    if criterion == "random":
        return [float(r) for r in rates]
    s = np.asarray(scores, np.float64)
    if criterion == "dlogp":
        return [float(np.quantile(s, r)) for r in rates]
    return [float(np.quantile(s, 1.0 - r)) for r in rates]


def rate_interval(points: Sequence[tuple[float, float, float]], target: float) -> list:
    """[low, high] replacement rate to reach `target` from (rate, accuracy, ci95 half-width) points.

    low: where the optimistic curve (accuracy + ci95) reaches the target; high: where the
    pessimistic one (accuracy − ci95) does (None: not within the sweep). Both None when a point has
    no finite interval (e.g. one prompt).
    """
    if any(not np.isfinite(h) for _, _, h in points):
        return [None, None]
    up = rate_to_reach([(r, a + h) for r, a, h in points], target)
    down = rate_to_reach([(r, a - h) for r, a, h in points], target)
    return [up, down]


def rate_to_reach(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """The smallest replacement rate at which the (rate, accuracy) curve reaches `target`.

    Points are sorted by rate; between two measured points the curve is linear. None if no point
    reaches the target.
    """
    pts = sorted(points)
    for i, (r, a) in enumerate(pts):
        if a >= target:
            if i == 0:
                return float(r)
            r0, a0 = pts[i - 1]
            return float(r0 + (target - a0) * (r - r0) / (a - a0))
    return None


def _ci(point: dict) -> float:
    h = point.get("accuracy_ci95")
    return float("nan") if h is None else float(h)


# ------------------------------------------------------------------------------ direction
def overlap(x: np.ndarray, y: np.ndarray, bins: int = 60) -> float:
    """Overlap coefficient Σ_bins min(p, q) of two samples' histograms on a shared range (1 = same)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size == 0 or y.size == 0:
        return float("nan")
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    p = np.histogram(x, edges)[0] / x.size
    q = np.histogram(y, edges)[0] / y.size
    return float(np.minimum(p, q).sum())


_METRICS = ("entropy_base", "entropy_rl", "kl_rl_base", "kl_base_rl")  # dlogp-score columns


def direction_stats(table: dict[str, np.ndarray], base: str = "base", rl: str = "rl") -> dict:
    """Per-group Δlog p sparsity and tail signs, and base-vs-RL-generation histogram overlaps.

    Args:
      table: dlogp-score token columns with `group` naming who generated the response.
    """
    out: dict[str, Any] = {"tail": TAIL, "groups": {}}
    sel = {g: table["group"] == g for g in (base, rl)}
    for g, m in sel.items():
        d = table["dlogp"][m]
        tail = np.abs(d) > TAIL
        out["groups"][g] = {
            "num_tokens": int(m.sum()),
            "near_zero_fraction": float(np.mean(np.abs(d) <= 0.1)),  # |Δlog p| <= 0.1
            "tail_fraction": float(tail.mean()),
            "negative_tail_fraction": float(np.mean(d < -TAIL)),
            "positive_tail_fraction": float(np.mean(d > TAIL)),
            "negative_share_of_tail": float(np.mean(d[tail] < 0)) if tail.any() else float("nan"),
            "dlogp_mean": float(d.mean()),
            **{f"{k}_mean": float(table[k][m].mean()) for k in _METRICS},
        }
    tails = {g: table["dlogp"][m][np.abs(table["dlogp"][m]) > TAIL] for g, m in sel.items()}
    out["overlap"] = {
        k: overlap(table[k][sel[base]], table[k][sel[rl]]) for k in (*_METRICS, "dlogp")
    }
    out["overlap"]["dlogp_tails"] = overlap(tails[base], tails[rl])
    return out


# ------------------------------------------------------------------------------ verdicts
def finding_a(stats: dict) -> dict[str, Any]:
    """(a) Δlog p is directional while entropy and KL overlap (see the module docstring)."""
    g, o = stats["groups"], stats["overlap"]
    flips = g["base"]["negative_share_of_tail"] > 0.5 > g["rl"]["negative_share_of_tail"]
    magnitude = min(o["entropy_base"], o["kl_rl_base"])
    separates = o["dlogp_tails"] < magnitude
    return {
        "reproduced": "yes" if flips and separates else "no",
        "tail_sign_flips": bool(flips),
        "dlogp_tails_overlap_less": bool(separates),
    }


def finding_b(curves: dict[str, list[dict]], base_acc: float, rl_acc: float) -> dict[str, Any]:
    """(b) Δlog p reaches the RL accuracy with the fewest replacements.

    Args:
      curves: criterion -> [{"rate", "accuracy", "accuracy_ci95", ...}] measured points.
    Returns:
      reach_rl / reach_half_gap: criterion -> rate (or None); reach_rl_interval /
      reach_half_gap_interval: criterion -> [low, high] (`rate_interval`); the verdict fields.
    """
    out: dict[str, Any] = {"reach_rl": {}, "reach_half_gap": {}, "reach_rl_interval": {}}
    out["reach_half_gap_interval"] = {}
    half = base_acc + 0.5 * (rl_acc - base_acc)
    for name, pts in curves.items():
        xy = [(p["rate"], p["accuracy"]) for p in pts]
        out["reach_rl"][name] = rate_to_reach(xy, rl_acc)
        out["reach_half_gap"][name] = rate_to_reach(xy, half)
        band = [(p["rate"], p["accuracy"], _ci(p)) for p in pts]
        out["reach_rl_interval"][name] = rate_interval(band, rl_acc)
        out["reach_half_gap_interval"][name] = rate_interval(band, half)

    def best(reach: dict[str, float | None]) -> str | None:
        known = {k: v for k, v in reach.items() if v is not None}
        return min(known, key=known.get) if known else None

    if rl_acc <= base_acc:
        out["reproduced"] = "n/a (RL not more accurate than base)"
        return out
    full, halfway = best(out["reach_rl"]), best(out["reach_half_gap"])
    out["fewest_to_rl"], out["fewest_to_half_gap"] = full, halfway
    if full is not None:
        out["reproduced"] = "yes" if full == "dlogp" else "no"
    else:  # nothing reaches RL accuracy: judge on half the gap, and say so
        out["reproduced"] = "partly (half the gap only)" if halfway == "dlogp" else "no"
    return out
