"""`score`: per-token log p, entropy, Δlog p and KL (both ways) of text under one or two models.

The metrics are those of docs/method.md §1. Outputs in `settings.out`:
  tokens.parquet  one row per response token: row, the input's id columns (prompt_index,
                  sample_index, id, *_id: tokens join back to samples), position, token_id,
                  token (vocabulary piece), token_text (decoded), logp_base, logp_rl,
                  dlogp, entropy_base, entropy_rl, kl_rl_base, kl_base_rl (two-model columns only
                  with an RL model); `group` when the data has one; with top_alternatives = K,
                  list columns top_ids_base, top_tokens_base, top_probs_base (and _rl): each
                  model's K most probable next tokens at that position, best first. Units
                  (nats) are in the schema metadata (`dlogp_jax.units`).
  summary.json    counts, mean/quantiles of every metric, |Δlog p| sparsity, extreme tokens.
  histograms.png  density (log-y) of entropy, KL and Δlog p (the paper's Fig. 1b analogue): shared
                  bins per metric, one colour per group; also histograms.pdf and .svg.
  run.json        the settings that determine the scores and each session's versions, devices and
                  times; a re-run with the same `out` resumes (rows scored so far are kept in
                  `.scored.jsonl`) and refuses other settings.
Every row is validated before any scoring; the outputs are written (each atomically, as one set
between `.writing` and `manifest.json`: `runs.files.output_set`) only at the end. One run at a time
holds `out` (`runs.files.locked`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging
from tqdm.auto import tqdm  # notebook-aware

from dlogp_jax import outputs, toy
from dlogp_jax.analysis import metrics, plots
from dlogp_jax.analysis.scoring import BatchSettings, score_examples
from dlogp_jax.data.prompts import Example, encode_rows
from dlogp_jax.data.rows import read_rows
from dlogp_jax.model.pair import load_pair
from dlogp_jax.runs import files, runtime
from dlogp_jax.runs._sample import chat_template_of
from dlogp_jax.runs.settings import ScoreSettings

# tokens.parquet's schema metadata: what the numbers are.
TABLE_METADATA = {
    "dlogp_jax.units": "nats (natural-log probabilities, entropies and KL divergences)",
    "dlogp_jax.columns": "logp_*: log p of the token; dlogp = logp_rl - logp_base; entropy_*: "
    "of the next-token distribution; kl_rl_base = KL(pi_rl || pi_base) at that position",
}
# The settings recorded in run.json that determine the scores (a resumed run must match them).
RUN_FIELDS = ("base", "rl", "data", "chat_template", "dtype", "max_length", "top_alternatives")
PARTIAL = ".scored.jsonl"  # rows scored so far (resume); removed once the outputs are written


def score(settings: ScoreSettings) -> Path:
    """Scores every row of `settings.data` under `settings.base` (and `settings.rl`), resuming
    the rows a killed run already scored (`out/.scored.jsonl`, one line per row, keyed on the
    row's token ids).

    Returns:
      the output directory (on every process; only process 0 writes).
    Raises:
      DataError naming the first bad row, an `out` in use / not writable / holding scores of other
      settings; CheckpointError for a bad checkpoint directory.
    """
    out = Path(settings.out)
    mesh = runtime.init_runtime(settings.mesh, settings.distributed)  # no model loaded yet
    with files.locked(out) if runtime.is_writer() else contextlib.nullcontext():
        return _score(settings, out, mesh)


def _score(settings: ScoreSettings, out: Path, mesh) -> Path:
    base, rl, data = settings.base, settings.rl, settings.data
    if settings.demo:
        base, rl, data = build_demo(out)
    template = chat_template_of(base, rl, settings.template_from, settings.chat_template)
    record = {k: getattr(settings, k) for k in RUN_FIELDS}
    record.update(base=str(base), rl=str(rl), data=str(data))
    writer = runtime.is_writer()
    files.check_run_file(out, record, write=False)  # other settings: refused before any load
    pair = load_pair(base, rl or None, mesh=mesh, dtype=settings.dtype)
    rows = read_rows(data)
    examples = encode_rows(
        rows,
        pair.tokenizer,
        path=data,
        vocab_limit=pair.vocab_limit,
        chat_template=settings.chat_template,
        max_length=settings.max_length,
        template=template,
    )
    files.check_run_file(out, record, write=writer)  # recorded only once the inputs are valid
    batching = BatchSettings(
        settings.batch_size,
        settings.length_bucket,
        settings.chunk_tokens,
        top_alternatives=settings.top_alternatives,
    )
    with files.session(out, {**record, "tool": "score"}, write=writer):
        done = _read_partial(out / PARTIAL, examples) if writer else {}
        todo = [e for e in examples if e.row not in done]
        total = sum(len(e.response_ids) for e in examples)
        logging.info(
            "scoring %d rows (%d done before), %d response tokens", len(todo), len(done), total
        )
        bar = tqdm(total=total, unit="tok", desc="scoring", disable=not writer)
        bar.update(sum(len(e.response_ids) for e in examples if e.row in done))
        start = time.perf_counter()
        results = [(e, done[e.row]) for e in examples if e.row in done]
        pending: list = []

        def flush(num_tokens: int) -> None:  # one batch scored: durable before the next
            if writer:
                files.append_jsonl(out / PARTIAL, [_partial_row(e, m) for e, m in pending])
            results.extend(pending)
            pending.clear()
            bar.update(num_tokens)

        for item in score_examples(pair, todo, batching, mesh, on_batch=flush):
            pending.append(item)
        bar.close()
        elapsed = time.perf_counter() - start
        if not writer:
            return out
        table = token_table(results, pair.tokenizer, row_columns=id_columns(rows))
        summary = metrics.summarize(table, k=settings.top_k)
        summary.update(
            base=str(base),
            rl=str(rl or ""),
            data=str(data),
            seconds=elapsed,
            tokens_per_second=total / max(elapsed, 1e-9),
        )
        with files.output_set(out):
            outputs.write_parquet(out / "tokens.parquet", table, metadata=TABLE_METADATA)
            title = f"{Path(data).name}: {total} tokens"
            plots.histograms(table, out / "histograms.png", title=title)
            outputs.write_json(out / "summary.json", summary)
        (out / PARTIAL).unlink(missing_ok=True)
    logging.info("wrote %s (%.0f tokens/s)", out, summary["tokens_per_second"])
    return out


def id_columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """The input's identifying columns, to join tokens back to samples: prompt_index,
    sample_index, id and any `*_id` / `*_index` field holding a scalar (int or str) in every row.

    Returns:
      name -> [len(rows)] values, in the first row's field order.
    """
    names = [k for k in (rows[0] if rows else {}) if k == "id" or k.endswith(("_id", "_index"))]
    scalar = (int, str, np.integer)
    return {
        k: [r[k] for r in rows]
        for k in names
        if all(isinstance(r.get(k), scalar) and not isinstance(r.get(k), bool) for r in rows)
    }


def _row_key(e: Example) -> str:
    """A hash of what a row's scores depend on: its prompt and response ids."""
    blob = json.dumps([list(e.prompt_ids), list(e.response_ids)]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _partial_row(e: Example, m: dict[str, np.ndarray]) -> dict:
    return {"row": e.row, "key": _row_key(e), "metrics": {k: v.tolist() for k, v in m.items()}}


def _read_partial(path: Path, examples: list[Example]) -> dict[int, dict[str, np.ndarray]]:
    """The metrics of rows a killed run scored, for the rows whose ids are unchanged (an edited
    row is scored again); a torn last line is dropped."""
    keys = {e.row: _row_key(e) for e in examples}
    done = {}
    for rows in files.read_groups(path, "row", 1).values():
        row = rows[0]
        if keys.get(row["row"]) == row["key"]:
            done[row["row"]] = {k: _as_array(k, v) for k, v in row["metrics"].items()}
    if path.exists():  # rewritten without torn or stale lines, then appended batch by batch
        outputs.write_jsonl(path, [_partial_row(e, done[e.row]) for e in examples if e.row in done])
    return done


def _as_array(name: str, values: list) -> np.ndarray:
    return np.asarray(values, np.int32 if name.startswith("top_ids") else np.float32)


def token_table(
    results: Iterable[tuple[Example, dict[str, np.ndarray]]],
    tokenizer,
    *,
    row_columns: dict[str, list] | None = None,
) -> dict[str, np.ndarray]:
    """The long per-token table: one entry per response token, sorted by row.

    Args:
      results: (example, metrics) pairs from `analysis.scoring.score_examples`, each metric a
        [len(example.response_ids)] array.
      row_columns: per-input-row values (`id_columns`), [rows of the data file] each, repeated
        for every token of the row.
    Returns:
      columns row, the row columns, position, token_id, token (the vocabulary piece, byte-level
      `Ġ` and all), token_text (that token decoded alone: the text it adds; part of a multi-byte
      character decodes to U+FFFD), then the metrics in `metrics.METRIC_COLUMNS` order
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
    table = _with_text_and_ids(table, tokenizer, row_columns or {})
    if any(ex.group for ex, _ in results):
        table["group"] = np.concatenate(groups).astype(str)
    for model in ("base", "rl"):
        if f"top_ids_{model}" in cols:
            table.update(_alternatives(cols, model, tokenizer))
    return table


def _with_text_and_ids(table: dict, tokenizer, row_columns: dict[str, list]) -> dict:
    """`table` with the row columns after `row` and token_text after `token`."""
    unique, inverse = np.unique(table["token_id"].astype(np.int64), return_inverse=True)
    text = np.asarray([tokenizer.decode([int(i)]) for i in unique] or [""], dtype=object)
    out = {"row": table["row"]}
    rows = table["row"].astype(np.int64)
    for name, values in row_columns.items():
        out[name] = np.asarray(values)[rows] if len(rows) else np.zeros(0)
    for name, column in table.items():
        out.setdefault(name, column)
        if name == "token":
            out["token_text"] = text[inverse].astype(str) if len(rows) else np.zeros(0, str)
    return out


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
