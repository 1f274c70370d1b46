"""`score`: per-token log p, entropy, Δlog p and KL (both ways) of text under one or two models.

The metrics are those of docs/method.md §1. Outputs in `settings.out`:
  tokens.parquet  one row per response token: row, position, token_id, token, logp_base, logp_rl,
                  dlogp, entropy_base, entropy_rl, kl_rl_base, kl_base_rl (two-model columns only
                  with an RL model); `group` when the data has one; with top_alternatives = K,
                  list columns top_ids_base, top_tokens_base, top_probs_base (and _rl): each
                  model's K most probable next tokens at that position, best first.
  summary.json    counts, mean/quantiles of every metric, |Δlog p| sparsity, extreme tokens.
  histograms.png  density (log-y) of entropy, KL and Δlog p (the paper's Fig. 1b analogue): shared
                  bins per metric, one colour per group; also histograms.pdf and .svg.
Every row is validated before any scoring; the outputs are written (atomically) only at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from absl import logging
from tqdm import tqdm

from dlogp_jax import outputs, toy
from dlogp_jax.analysis import metrics, plots
from dlogp_jax.analysis.scoring import BatchSettings, score_examples
from dlogp_jax.data.prompts import Example, encode_rows
from dlogp_jax.data.rows import read_rows
from dlogp_jax.model.pair import load_pair
from dlogp_jax.runs import runtime
from dlogp_jax.runs._sample import chat_template_of
from dlogp_jax.runs.settings import ScoreSettings


def score(settings: ScoreSettings) -> Path:
    """Scores every row of `settings.data` under `settings.base` (and `settings.rl`).

    Returns:
      the output directory (on every process; only process 0 writes).
    Raises:
      DataError naming the first bad row; CheckpointError for a bad checkpoint directory.
    """
    mesh = runtime.init_runtime(settings.mesh, settings.distributed)
    out = Path(settings.out)
    base, rl, data = settings.base, settings.rl, settings.data
    if settings.demo:
        base, rl, data = build_demo(out)
    template = chat_template_of(base, rl, settings.template_from, settings.chat_template)
    pair = load_pair(base, rl or None, mesh=mesh, dtype=settings.dtype)
    examples = encode_rows(
        read_rows(data),
        pair.tokenizer,
        path=data,
        vocab_limit=pair.vocab_limit,
        chat_template=settings.chat_template,
        max_length=settings.max_length,
        template=template,
    )
    batching = BatchSettings(
        settings.batch_size,
        settings.length_bucket,
        settings.chunk_tokens,
        top_alternatives=settings.top_alternatives,
    )
    total = sum(len(e.response_ids) for e in examples)
    logging.info("scoring %d rows, %d response tokens", len(examples), total)
    bar = tqdm(total=total, unit="tok", desc="scoring", disable=not runtime.is_writer())
    start = time.perf_counter()
    results = list(score_examples(pair, examples, batching, mesh, on_batch=bar.update))
    bar.close()
    elapsed = time.perf_counter() - start
    if not runtime.is_writer():
        return out
    table = token_table(results, pair.tokenizer)
    summary = metrics.summarize(table, k=settings.top_k)
    summary.update(
        base=str(base),
        rl=str(rl or ""),
        data=str(data),
        seconds=elapsed,
        tokens_per_second=total / max(elapsed, 1e-9),
    )
    outputs.write_parquet(out / "tokens.parquet", table)
    outputs.write_json(out / "summary.json", summary)
    plots.histograms(table, out / "histograms.png", title=f"{Path(data).name}: {total} tokens")
    logging.info("wrote %s (%.0f tokens/s)", out, summary["tokens_per_second"])
    return out


def token_table(
    results: Iterable[tuple[Example, dict[str, np.ndarray]]], tokenizer
) -> dict[str, np.ndarray]:
    """The long per-token table: one entry per response token, sorted by row.

    Args:
      results: (example, metrics) pairs from `analysis.scoring.score_examples`, each metric a
        [len(example.response_ids)] array.
    Returns:
      columns row, position, token_id, token, then the metrics in `metrics.METRIC_COLUMNS` order
      (`logp`/`entropy` of one model named `logp_base`/`entropy_base`), and `group` when any
      example has one; each [total response tokens]. [n, K] alternatives (`top_ids*`,
      `top_logp*`) become list columns top_ids_<model>, top_tokens_<model>, top_probs_<model>
      (Python lists of K entries per token), after the rest.
    """
    results = sorted(results, key=lambda r: r[0].row)
    cols: dict[str, list] = {"row": [], "position": [], "token_id": [], "token": []}
    groups = []
    for ex, m in results:
        n = len(ex.response_ids)
        cols["row"].append(np.full(n, ex.row, np.int64))
        cols["position"].append(np.arange(n, dtype=np.int64))
        cols["token_id"].append(np.asarray(ex.response_ids, np.int64))
        cols["token"].append(np.asarray(tokenizer.convert_ids_to_tokens(list(ex.response_ids))))
        groups.append(np.full(n, ex.group, object))
        for k, v in m.items():
            name = {"logp": "logp_base", "entropy": "entropy_base"}.get(k, k)
            name = {"top_ids": "top_ids_base", "top_logp": "top_logp_base"}.get(name, name)
            cols.setdefault(name, []).append(v)
    names = ["row", "position", "token_id", "token"]
    names += [c for c in metrics.METRIC_COLUMNS if c in cols]  # the documented column order
    table = {k: np.concatenate(cols[k]) if cols[k] else np.zeros(0) for k in names}
    if any(ex.group for ex, _ in results):
        table["group"] = np.concatenate(groups).astype(str)
    for model in ("base", "rl"):
        if f"top_ids_{model}" in cols:
            table.update(_alternatives(cols, model, tokenizer))
    return table


def _alternatives(cols: dict[str, list], model: str, tokenizer) -> dict[str, list]:
    """List columns of one model's [n, K] alternatives: ids, token strings, probabilities."""
    ids = np.concatenate(cols[f"top_ids_{model}"]).astype(np.int64)
    probs = np.exp(np.concatenate(cols[f"top_logp_{model}"]).astype(np.float64))
    k = ids.shape[1]
    flat = tokenizer.convert_ids_to_tokens(ids.reshape(-1).tolist())
    return {
        f"top_ids_{model}": ids.tolist(),
        f"top_tokens_{model}": [flat[i : i + k] for i in range(0, len(flat), k)],
        f"top_probs_{model}": np.round(probs, 6).astype(np.float32).tolist(),
    }


def build_demo(out: Path) -> tuple[Path, Path, Path]:
    """Tiny base/RL checkpoints and a small prompt/response file under `out/demo_inputs`.

    Process 0 writes them; the other processes of a multi-host run wait for it.
    Returns:
      (base dir, RL dir, data file).
    """
    root = out / "demo_inputs"
    if runtime.is_writer():
        toy.build_pair(root, seed=0)
        outputs.write_jsonl(root / "data.jsonl", _demo_rows())
    runtime.wait_for_writer("dlogp-score demo inputs")
    return root / "base", root / "rl", root / "data.jsonl"


def _demo_rows() -> list[dict[str, str]]:
    """24 arithmetic prompts, each answered slightly wrong (so the RL model has something to say)."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(24):
        a, b = rng.integers(10, 99, size=2)
        prompt = f"Compute {a} + {b}. End with 'Answer: <value>'."
        wrong = a + b + int(rng.integers(-3, 4))
        rows.append({"prompt": prompt, "response": f"{a} + {b} = {wrong}. Answer: {wrong}"})
    return rows
