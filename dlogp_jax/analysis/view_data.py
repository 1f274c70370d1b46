"""The data of the token viewer (`dlogp-view`): responses as columns, from score or sample outputs.

A `dlogp-score` output gives every metric of docs/method.md §1 per response token (and each model's
top alternatives with `top_alternatives > 0`); a `dlogp-sample` output gives log p under both models,
Δlog p of the token the base model proposed, where the criterion fired and what was emitted
(docs/method.md §2, §3). Both become one payload: a list of responses, each a dict of per-token
columns, embedded once as JSON in the page (`analysis.view_page`).
"""

from __future__ import annotations

import codecs
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax import outputs
from dlogp_jax.data.rows import read_rows
from dlogp_jax.errors import DataError

# Metrics a page can colour by, in toggle order; the first present is the default colouring.
COLOURINGS = ("dlogp", "entropy_base", "entropy_rl", "kl_rl_base", "kl_base_rl")
PER_TOKEN = ("logp_base", "logp_rl", *COLOURINGS)
DIGITS = 4  # rounding of the embedded values (keeps a 20k-token page small)


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: the printable stand-in character -> its byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def _token_bytes(token: str) -> bytes:
    """The bytes a vocabulary string stands for (byte-level BPE, or SentencePiece's ▁ as a space)."""
    table = _byte_decoder()
    if all(ch in table for ch in token):
        return bytes(table[ch] for ch in token)
    return token.replace("▁", " ").encode("utf-8")


def display_tokens(tokens: list[str]) -> list[str]:
    """The text each token adds to its response, in order.

    A character split over several tokens (UTF-8 bytes of one code point) appears with the token
    that completes it, so the strings joined are the decoded response.

    Args:
      tokens: [n] vocabulary strings (`convert_ids_to_tokens`).
    Returns:
      [n] display strings.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = [decoder.decode(_token_bytes(t)) for t in tokens]
    if out:
        out[-1] += decoder.decode(b"", final=True)
    return out


def one_token(token: str) -> str:
    """A single vocabulary string as text (partial UTF-8 shown as �), for alternatives lists."""
    return _token_bytes(token).decode("utf-8", errors="replace")


def _round(values) -> list[float | None]:
    """Rounded values; a non-finite one (JSON has none) becomes null."""
    v = np.round(np.asarray(values, np.float64), DIGITS)
    return [x if np.isfinite(x) else None for x in v.tolist()]


def _stats(dlogp) -> dict[str, Any]:
    d = np.asarray(dlogp, np.float64)
    d = d[np.isfinite(d)]
    return {
        "length": int(np.size(dlogp)),
        "mean_dlogp": round(float(d.mean()), DIGITS) if d.size else 0.0,
        "n_big": int((np.abs(d) > 1).sum()),
    }


def _optional_rows(path: str) -> list[dict[str, Any]] | None:
    """The run's input rows for prompts and answers, or None when they cannot be read any more."""
    try:
        return read_rows(path) if path else None
    except DataError:
        return None


def _prompt_text(row: dict[str, Any] | None) -> str:
    if row is None:
        return ""
    text = row.get("prompt", row.get("problem", ""))
    return text if isinstance(text, str) else ""


def from_score_dir(path: str | Path, max_responses: int = 0) -> dict[str, Any]:
    """The viewer payload of a `dlogp-score` output (tokens.parquet, summary.json).

    Args:
      path: the output directory.
      max_responses: keep the first N responses by row (0 = all).

    Returns:
      {"kind": "score", "source", "metrics": [names], "alternatives": K, "responses": [...]};
      each response holds `tok` [n] display strings and `m` {metric: [n] values}, with `alt_base`
      / `alt_rl` [n][K] (token, probability) pairs when the score has alternatives.
    """
    path = Path(path)
    table = outputs.read_parquet(path / "tokens.parquet")
    summary = json.loads((path / "summary.json").read_text())
    rows = _optional_rows(summary.get("data", ""))
    metrics = [c for c in PER_TOKEN if c in table]
    models = [m for m in ("base", "rl") if f"top_tokens_{m}" in table]
    order = np.argsort(table["row"], kind="stable")
    row_ids, starts = np.unique(table["row"][order], return_index=True)
    bounds = list(starts[1:]) + [len(order)]
    responses = []
    spans = list(zip(row_ids.tolist(), zip(starts.tolist(), bounds)))
    for r, (lo, hi) in spans[:max_responses] if max_responses else spans:
        idx = order[lo:hi]
        idx = idx[np.argsort(table["position"][idx], kind="stable")]
        data_row = rows[r] if rows is not None and r < len(rows) else None
        correct = data_row.get("correct") if data_row else None
        resp = {
            "row": r,
            "prompt_index": int(data_row.get("prompt_index", r)) if data_row else r,
            "group": str(table["group"][idx[0]]) if "group" in table else "",
            "correct": correct if isinstance(correct, bool) else None,
            "prompt": _prompt_text(data_row),
            "tok": display_tokens(table["token"][idx].tolist()),
            "m": {c: _round(table[c][idx]) for c in metrics},
            **_stats(table["dlogp"][idx]),
        }
        for m in models:
            toks, probs = table[f"top_tokens_{m}"], table[f"top_probs_{m}"]
            resp[f"alt_{m}"] = [
                [[one_token(t), round(float(p), DIGITS)] for t, p in zip(toks[i], probs[i])]
                for i in idx
            ]
        responses.append(resp)
    k = len(table[f"top_tokens_{models[0]}"][0]) if models and len(order) else 0
    return _payload("score", path, metrics, responses, alternatives=k)


def from_sample_dir(path: str | Path, tokenizer, max_responses: int = 0) -> dict[str, Any]:
    """The viewer payload of a `dlogp-sample` output (samples.jsonl, run.json).

    Values are those the sampler recorded: log p under both models and Δlog p of the token the
    base model proposed; `sel` [n] marks where the criterion fired and `prop` [n] holds the proposed
    token's text where the emitted one differs (else null). `max_responses` keeps the first N
    samples of samples.jsonl (0 = all).
    """
    path = Path(path)
    record = json.loads((path / "run.json").read_text())
    rows = _optional_rows(record.get("data", ""))
    responses = []
    for line in (path / "samples.jsonl").read_text().splitlines():
        if not line.strip():
            continue
        if max_responses and len(responses) == max_responses:
            break
        s = json.loads(line)
        ids, proposed = s["token_ids"], s.get("proposed_ids", s["token_ids"])
        shown = display_tokens(tokenizer.convert_ids_to_tokens(ids))
        alt = tokenizer.convert_ids_to_tokens(proposed)
        p = s["prompt_index"]
        data_row = rows[p] if rows is not None and p < len(rows) else None
        responses.append(
            {
                "row": len(responses),
                "prompt_index": p,
                "sample_index": s.get("sample_index", 0),
                "group": record.get("mode", ""),
                "correct": s.get("correct"),
                "prompt": _prompt_text(data_row),
                "tok": shown,
                "m": {c: _round(s[c]) for c in ("logp_base", "logp_rl", "dlogp") if c in s},
                "sel": [int(x) for x in s.get("selected", [0] * len(ids))],
                "prop": [one_token(a) if q != i else None for a, q, i in zip(alt, proposed, ids)],
                **_stats(s.get("dlogp", [])),
            }
        )
    metrics = [c for c in ("logp_base", "logp_rl", "dlogp") if responses and c in responses[0]["m"]]
    extra = {k: record.get(k) for k in ("mode", "criterion", "threshold", "gamma")}
    return _payload("sample", path, metrics, responses, alternatives=0, run=extra)


def _payload(kind, path, metrics, responses, *, alternatives: int, run=None) -> dict[str, Any]:
    every = sum(len(r["tok"]) for r in responses)
    return {
        "kind": kind,
        "source": str(path),
        "metrics": metrics,
        "colourings": [c for c in COLOURINGS if c in metrics],
        "alternatives": alternatives,
        "run": run or {},
        "scales": {c: _scale([r["m"][c] for r in responses]) for c in metrics},
        "num_tokens": every,
        "responses": responses,
    }


def _scale(columns: list[list[float | None]]) -> float:
    """The colour range of a metric: its 99th percentile of |value| (nats), at least 0.5."""
    v = np.abs(np.asarray([x for c in columns for x in c if x is not None], np.float64))
    top = float(np.percentile(v, 99)) if v.size else 1.0
    return round(max(top, 0.5), 2)
