"""Aggregates of per-token metrics: quantiles, Δlog p sparsity, the most-changed tokens.

Consumes the long table written by `dlogp-score` (one row per response token) as a dict of NumPy
columns, so the same functions summarize a fresh run or a `tokens.parquet` read back later.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILES = (1, 5, 25, 50, 75, 95, 99)
DLOGP_THRESHOLDS = (0.1, 0.5, 1.0, 2.0)
METRIC_COLUMNS = (
    "logp_base",
    "logp_rl",
    "dlogp",
    "entropy_base",
    "entropy_rl",
    "kl_rl_base",
    "kl_base_rl",
)


def describe(values: np.ndarray) -> dict[str, float]:
    """count, mean, std, min, max and the QUANTILES (as `p1`, `p5`, ...) of a 1-D array."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"count": 0}
    out = {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std())}
    out.update(min=float(v.min()), max=float(v.max()))
    out.update({f"p{q}": float(x) for q, x in zip(QUANTILES, np.percentile(v, QUANTILES))})
    return out


def dlogp_sparsity(dlogp: np.ndarray) -> dict[str, float]:
    """Fraction of tokens with |Δlog p| above each of DLOGP_THRESHOLDS (keys `abs_gt_0.1`, ...)."""
    a = np.abs(np.asarray(dlogp))
    return {f"abs_gt_{t:g}": float((a > t).mean()) if a.size else 0.0 for t in DLOGP_THRESHOLDS}


def extreme_tokens(table: dict[str, np.ndarray], k: int = 20) -> dict[str, list[dict[str, Any]]]:
    """The k tokens with the most negative and most positive Δlog p, with their context columns."""
    d = table["dlogp"]
    order = np.argsort(d, kind="stable")
    keys = [c for c in ("row", "position", "token_id", "token", "group") if c in table]
    keys += [c for c in ("logp_base", "logp_rl", "dlogp") if c in table]

    def rows(idx):
        return [{c: _py(table[c][i]) for c in keys} for i in idx]

    return {"most_negative": rows(order[:k]), "most_positive": rows(order[::-1][:k])}


def summarize(table: dict[str, np.ndarray], k: int = 20) -> dict[str, Any]:
    """Summary of a token table: counts, per-metric statistics, sparsity, extremes, per group."""
    metrics = [c for c in METRIC_COLUMNS if c in table]
    out: dict[str, Any] = {
        "num_rows": int(len(np.unique(table["row"]))) if len(table["row"]) else 0,
        "num_tokens": int(len(table["row"])),
        "metrics": {m: describe(table[m]) for m in metrics},
    }
    if "dlogp" in table:
        out["dlogp_sparsity"] = dlogp_sparsity(table["dlogp"])
        out["dlogp_extremes"] = extreme_tokens(table, k)
    groups = sorted(set(table.get("group", []))) if "group" in table else []
    if len(groups) > 1 or (groups and groups[0]):
        out["groups"] = {}
        for g in groups:
            sel = table["group"] == g
            sub = {m: table[m][sel] for m in metrics}
            entry: dict[str, Any] = {"num_tokens": int(sel.sum())}
            entry["metrics"] = {m: describe(sub[m]) for m in metrics}
            if "dlogp" in sub:
                entry["dlogp_sparsity"] = dlogp_sparsity(sub["dlogp"])
            out["groups"][g] = entry
    return out


def _py(x):
    return x.item() if isinstance(x, np.generic) else x
