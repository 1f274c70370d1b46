"""`dlogp-score`: per-token log p, entropy, Δlog p and KL (both ways) of text under one or two models.

Outputs in `--config.out`:
  tokens.parquet  one row per response token: row, position, token_id, token, logp_base, logp_rl,
                  dlogp, entropy_base, entropy_rl, kl_rl_base, kl_base_rl (two-model columns only
                  with --config.rl); `group` when the data has one.
  summary.json    counts, mean/quantiles of every metric, |Δlog p| sparsity, extreme tokens.
  histograms.png  density (log-y) of entropy, KL and Δlog p (paper Fig. 1b analogue).
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from tqdm import tqdm

from dlogp_jax import outputs, toy
from dlogp_jax.analysis import metrics, plots
from dlogp_jax.analysis.scoring import BatchSettings, score_examples
from dlogp_jax.cli import common
from dlogp_jax.data.prompts import encode_rows
from dlogp_jax.data.rows import read_rows
from dlogp_jax.model.pair import load_pair


def build_demo(out: Path) -> tuple[Path, Path, Path]:
    """Tiny base/RL checkpoints and a small prompt/response file under `out/demo_inputs`.

    Process 0 writes them; the other processes of a multi-host run wait for it.
    """
    root = out / "demo_inputs"
    paths = root / "base", root / "rl", root / "data.jsonl"
    if common.is_writer():
        _write_demo(root)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("dlogp-score demo inputs")
    return paths


def _write_demo(root: Path) -> None:
    toy.build_pair(root, seed=0)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(24):
        a, b = rng.integers(10, 99, size=2)
        prompt = f"Compute {a} + {b}. End with 'Answer: <value>'."
        wrong = a + b + int(rng.integers(-3, 4))
        rows.append({"prompt": prompt, "response": f"{a} + {b} = {wrong}. Answer: {wrong}"})
    outputs.write_jsonl(root / "data.jsonl", rows)


def token_table(results, tokenizer) -> dict[str, np.ndarray]:
    """Concatenates per-example metrics into the long per-token table (sorted by row)."""
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
            cols.setdefault(name, []).append(v)
    names = ["row", "position", "token_id", "token"]
    names += [c for c in metrics.METRIC_COLUMNS if c in cols]  # the documented column order
    table = {k: np.concatenate(cols[k]) if cols[k] else np.zeros(0) for k in names}
    if any(ex.group for ex, _ in results):
        table["group"] = np.concatenate(groups).astype(str)
    return table


def run(config) -> Path:
    """Scores `config.data` under `config.base` (and `config.rl`) and writes the outputs."""
    mesh = common.init_runtime(config)
    out, base, rl, data = common.resolve_inputs(config, build_demo, "score")
    pair = load_pair(base, rl or None, mesh=mesh, dtype=config.dtype)
    rows = read_rows(data)
    examples = encode_rows(
        rows, pair.tokenizer, path=data, vocab_limit=pair.vocab_limit,
        chat_template=config.chat_template, max_length=config.max_length,
    )  # fmt: skip
    settings = BatchSettings(config.batch_size, config.length_bucket, config.chunk_tokens)
    total = sum(len(e.response_ids) for e in examples)
    logging.info("scoring %d rows, %d response tokens", len(examples), total)
    bar = tqdm(total=total, unit="tok", desc="scoring", disable=not common.is_writer())
    start = time.perf_counter()
    results = list(score_examples(pair, examples, settings, mesh, on_batch=bar.update))
    bar.close()
    elapsed = time.perf_counter() - start
    if not common.is_writer():
        return out
    table = token_table(results, pair.tokenizer)
    summary = metrics.summarize(table, k=config.top_k)
    summary.update(
        base=str(base), rl=str(rl or ""), data=str(data), seconds=elapsed,
        tokens_per_second=total / max(elapsed, 1e-9),
    )  # fmt: skip
    outputs.write_parquet(out / "tokens.parquet", table)
    outputs.write_json(out / "summary.json", summary)
    plots.histograms(table, out / "histograms.png", title=f"{Path(data).name}: {total} tokens")
    logging.info("wrote %s (%.0f tokens/s)", out, summary["tokens_per_second"])
    return out


def entry():
    common.run_app(run, "score")


if __name__ == "__main__":
    entry()
