"""`sample`: plain, selective-replacement and extrapolated decoding of a base/RL pair.

The decoding modes are those of docs/method.md §2 (selective replacement) and §3 (test-time
extrapolation). Outputs in `settings.out`:
  samples.jsonl  one line per sample: prompt_index, prompt_hash (of the rendered prompt ids and
                 the answer: what resume is keyed on), sample_index, text, token_ids, proposed_ids,
                 selected, logp_base, logp_rl, dlogp (per token), length, finish_reason,
                 replacement_rate, and
                 answer/pred (the extracted prediction)/correct when the data has answers
                 (timed_out: true when grading ran out of time: then correct is false).
  summary.json   prompts, samples, mean length, replacement rate, finish reasons (cache_full:
                 sequences that ended for lack of a KV page), tokens/s, the decoder (`engine`:
                 kind, and for paged its sizes and counts: engine.choice.stats_summary), and
                 when answers are given accuracy (Avg@n with a 95% t-interval over prompts),
                 pass_at_k, maj_at_k and grading_timeouts (analysis.accuracy, as dlogp-grade).
  run.json       the settings that determine the samples, and each session (versions, devices,
                 times); a re-run with the same `out` continues where it stopped (finished
                 prompts whose content is unchanged are kept), and refuses different settings.
With `thresholds` / `gammas` the run is a τ/γ sweep (`runs._sweep`): the same outputs per point
under `out/points/tau=<τ>_gamma=<γ>/`, one model load and one compile for the grid, and the
combined table `out/sweep.md` / `out/sweep.json`.
One run at a time holds `out` (`runs.files.locked`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from absl import logging
from tqdm.auto import tqdm  # notebook-aware

from dlogp_jax import outputs, toy
from dlogp_jax.analysis.sample_summary import summarize_samples
from dlogp_jax.data.prompts import Prompt, load_prompts, pick_chat_template
from dlogp_jax.engine import choice as engines
from dlogp_jax.model.pair import ModelPair, load_pair
from dlogp_jax.model.tokenizer import load_tokenizer, stop_token_ids
from dlogp_jax.rl.rewards import Grader, answer_key
from dlogp_jax.runs import _sweep, files, runtime
from dlogp_jax.runs.settings import SampleSettings
from dlogp_jax.sampling import FINISH_REASONS, DecodeOutput, DecodeSpec, left_pad
from dlogp_jax.sampling.batches import fixed_batches
from dlogp_jax.sharding import gather_to_host

# The settings recorded in run.json: those that change the samples (not batching, the decoder and
# its memory settings, mesh, workers: engine=paged and engine=static give the same samples).
RUN_FIELDS = (
    "base",
    "rl",
    "data",
    "mode",
    "criterion",
    "threshold",
    "gamma",
    "faithful",
    "faithful_top_k",
    "temperature",
    "top_p",
    "top_k",
    "max_new_tokens",
    "stop_tokens",
    "n",
    "seed",
    "chat_template",
    "prompt_suffix",
    "dtype",
)


def sample(settings: SampleSettings) -> Path:
    """Decodes every prompt of `settings.data` `settings.n` times (resuming a partial run), once
    per (threshold, gamma) point of a sweep.

    Returns:
      the output directory (on every process; only process 0 writes).
    Raises:
      DataError: a bad row, unknown stop tokens, `out` holding samples of other settings, or a
        sweep's `out` holding a single run (and the reverse).
      ValueError: bad decoding settings (DecodeSpec), or a KV page budget that cannot hold one
        sequence of the longest prompt (engine=paged), before any decoding.
    """
    mesh = runtime.init_runtime(settings.mesh, settings.distributed)  # no model loaded yet
    out = Path(settings.out)
    with files.locked(out) if runtime.is_writer() else contextlib.nullcontext():
        return _sample(settings, out, mesh)


def _sample(settings: SampleSettings, out: Path, mesh) -> Path:
    sweep = _sweep.is_sweep(settings)
    _sweep.check_layout(out, sweep)  # before any model loads
    base, rl, data = settings.base, settings.rl, settings.data
    if settings.demo:
        base, rl, data = build_demo(out)
    record = {k: getattr(settings, k) for k in RUN_FIELDS}
    record.update(base=str(base), rl=str(rl), data=str(data))
    if settings.template_from:  # recorded only when chosen: older run.json files still resume
        record["template_from"] = settings.template_from
    template = chat_template_of(base, rl, settings.template_from, settings.chat_template)
    pair = load_pair(base, rl or None, mesh=mesh, dtype=settings.dtype)
    spec = make_spec(settings, pair)
    prompts = load_prompts(
        data,
        pair.tokenizer,
        chat_template=settings.chat_template,
        prompt_suffix=settings.prompt_suffix,
        template=template,
    )
    choice = engines.choice_of(settings)
    if note := engines.multi_process_note(choice):
        logging.warning(note)
    choice = engines.for_processes(choice)
    engine = _engine_config(choice, pair, spec, settings, prompts)  # budget errors: before work
    run = _Run(settings, pair, prompts, mesh, choice, engine)
    with Grader(workers=settings.grader_workers) as grader:
        if not sweep:
            _sample_point(run, spec, out, record, grader)
            return out
        points = _sweep.grid(settings)
        for k, (threshold, gamma) in enumerate(points):  # one load, one compile (traced τ, γ)
            logging.info(
                "sweep point %d/%d: threshold=%r gamma=%r", k + 1, len(points), *(threshold, gamma)
            )
            point = dict(record, threshold=threshold, gamma=gamma)
            where = _sweep.point_dir(out, threshold, gamma)
            _sample_point(run, spec.replace(threshold=threshold, gamma=gamma), where, point, grader)
            if runtime.is_writer():
                _sweep.write_summary(out, record, points)
    return out


@dataclasses.dataclass(frozen=True)
class _Run:
    """What every point of a run shares: the loaded pair, the prompts and the decoder."""

    settings: SampleSettings
    pair: ModelPair
    prompts: list[Prompt]
    mesh: Any
    choice: Any  # engine.choice.EngineChoice
    engine: Any  # the paged engine's sizes, None for static


def _sample_point(run: _Run, spec: DecodeSpec, out: Path, record: dict, grader) -> None:
    """Decodes the prompts not yet done in `out` with `spec`; writes samples and summary."""
    settings, prompts = run.settings, run.prompts
    writer = runtime.is_writer()
    files.check_run_file(out, record, write=writer)
    samples_file = out / "samples.jsonl"
    done = unchanged_groups(files.read_groups(samples_file, "prompt_index", settings.n), prompts)
    todo = [p for p in prompts if p.index not in done]
    if writer:  # rewrite without torn/partial groups, then append batch by batch
        outputs.write_jsonl(samples_file, [r for p in sorted(done) for r in done[p]])
    logging.info("%d prompts, %d already done, %d to decode", len(prompts), len(done), len(todo))
    stats = []
    bar = tqdm(total=len(todo), unit="prompt", desc=_bar_title(settings, spec), disable=not writer)
    generated, start = 0, time.perf_counter()
    with files.session(out, {**record, "tool": "sample"}, write=writer):
        for batch, real in fixed_batches(todo, settings.batch_prompts):
            if run.engine is not None:  # the engine queues just the real prompts: no repeats
                batch = batch[:real]
            result, batch_stats = _decode(run, batch, spec)
            stats += [batch_stats] if batch_stats else []
            rows = sample_rows(result, batch, run.pair.tokenizer, grader)[: real * settings.n]
            generated += sum(r["length"] for r in rows)
            if writer:
                files.append_jsonl(samples_file, rows)
            bar.update(real)
            bar.set_postfix(tok_s=f"{generated / (time.perf_counter() - start):.0f}")
        bar.close()
        if writer:
            summary = summarize_samples(files.read_groups(samples_file, "prompt_index", settings.n))
            summary.update(
                settings=record, new_tokens=generated, seconds=time.perf_counter() - start
            )
            summary["cache_full"] = summary["finish_reasons"].get("cache_full", 0)
            summary["engine"] = {
                "kind": run.choice.engine,
                **engines.stats_summary(stats, run.engine),
            }
            summary["tokens_per_second"] = generated / max(summary["seconds"], 1e-9)
            outputs.write_json(out / "summary.json", summary)
            keys = ("accuracy", "mean_length", "replacement_rate")
            logging.info("wrote %s: %s", out, {k: summary.get(k) for k in keys})


def _bar_title(settings: SampleSettings, spec: DecodeSpec) -> str:
    if not _sweep.is_sweep(settings):
        return f"sampling ({settings.mode})"
    return f"sampling ({settings.mode} τ={spec.threshold!r} γ={spec.gamma!r})"


def prompt_hash(prompt: Prompt) -> str:
    """A stable hash of what a prompt's samples depend on: its rendered ids and its answer."""
    blob = json.dumps([list(prompt.ids), prompt.answer]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def unchanged_groups(done: dict[int, list[dict]], prompts: list[Prompt]) -> dict[int, list[dict]]:
    """The finished groups whose prompt is still the same (`prompt_hash` of their rows): a prompt
    or answer edited since, or a row no longer in the data, is dropped (and so redone)."""
    now = {p.index: prompt_hash(p) for p in prompts}
    kept = {
        i: rows
        for i, rows in done.items()
        if i in now and rows[0].get("prompt_hash", now[i]) == now[i]
    }
    if changed := len(done) - len(kept):
        logging.warning("%d prompts changed since they were sampled: sampling them again", changed)
    if any("prompt_hash" not in rows[0] for rows in kept.values()):
        logging.warning("samples without prompt_hash (an older run): kept without a content check")
    return kept


def _engine_config(choice, pair: ModelPair, spec: DecodeSpec, settings, prompts: list[Prompt]):
    """The paged engine's sizes for this run (None for static), checked before any decoding.

    Sized for every prompt of the data (not only those left to decode), so a resumed run uses
    the same engine.
    """
    if not choice.paged or not prompts:
        return None
    configs = (pair.config_base,) + ((pair.config_rl,) if pair.params_rl is not None else ())
    return engines.engine_config(
        choice,
        configs,
        sequences=min(settings.batch_prompts, len(prompts)) * settings.n,
        longest_prompt=max(len(p.ids) for p in prompts),
        max_new=spec.max_new_tokens,
    )


def _decode(run: _Run, batch: list[Prompt], spec: DecodeSpec):
    """One batch of prompts through the run's decoder (the paged sizes or static), gathered to
    host arrays.

    Returns:
      (DecodeOutput of host arrays, EngineStats of a paged call or None).
    """
    pair, settings = run.pair, run.settings
    tokens, mask = left_pad([p.ids for p in batch], spec.pad_id, settings.prompt_buckets)
    with jax.set_mesh(run.mesh):
        result, stats = engines.decode(
            run.choice,
            pair.params_base,
            tokens,
            mask,
            np.asarray([p.index for p in batch]),
            spec=spec,
            config_base=pair.config_base,
            params_rl=pair.params_rl,
            config_rl=pair.config_rl,
            seed=settings.seed,
            engine=run.engine,
        )
    return gather_to_host(result), stats


def make_spec(settings: SampleSettings, pair: ModelPair) -> DecodeSpec:
    """The DecodeSpec of a sample run: its decoding settings plus the pair's stops and vocabulary.

    Raises:
      DataError: `stop_tokens` names tokens the tokenizer lacks.
      ValueError: bad mode, criterion or sampling filters.
    """
    return DecodeSpec(
        mode=settings.mode,
        criterion=settings.criterion,
        threshold=settings.threshold,
        gamma=settings.gamma,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        max_new_tokens=settings.max_new_tokens,
        stop_ids=stop_token_ids(pair.tokenizer, settings.stop_tokens),
        pad_id=pair.tokenizer.pad_token_id or 0,
        faithful=settings.faithful,
        faithful_top_k=settings.faithful_top_k,
        vocab_limit=pair.vocab_limit,
        n=settings.n,
    )


def sample_rows(out: DecodeOutput, batch: list[Prompt], tokenizer, grader) -> list[dict]:
    """One JSON row per generated sequence of a batch (host arrays in `out`), graded when the
    prompt has an answer.

    Whole-batch NumPy work and one batch_decode: indexing device arrays element by element cost
    more than decoding did.

    Args:
      out: the batch's DecodeOutput, [len(batch) * n, M] records as host arrays.
      grader: a `rewards.Grader` (0/1 `accuracy` of each response against the answer).
    """
    out = jax.tree.map(np.asarray, out)
    per_prompt = out.tokens.shape[0] // len(batch)
    lengths = np.asarray(out.length).tolist()

    def cut(a):
        return [row[:n] for row, n in zip(a.tolist(), lengths)]

    tokens, proposed, selected = cut(out.tokens), cut(out.proposed), cut(out.selected.astype(int))
    logs = {k: cut(np.round(getattr(out, k), 5)) for k in ("logp_base", "logp_rl", "dlogp")}
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=False)
    # Graded without special tokens (as the trainer grades): "Answer: 21<|im_end|>" is "21".
    clean = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    reasons = [FINISH_REASONS[int(r)] for r in out.finish_reason]
    rows = []
    for r, n_tok in enumerate(lengths):
        prompt = batch[r // per_prompt]
        row = {
            "prompt_index": prompt.index,
            "prompt_hash": prompt_hash(prompt),
            "sample_index": int(out.sample_index[r]),
            "text": texts[r],
            "token_ids": tokens[r],
            "proposed_ids": proposed[r],
            "selected": selected[r],
            **{k: v[r] for k, v in logs.items()},
            "length": n_tok,
            "finish_reason": reasons[r],
            "replacement_rate": float(out.replacement_rate[r]),
        }
        if prompt.answer is not None:
            row["answer"] = prompt.answer
            row["pred"] = answer_key("accuracy", clean[r])  # what `correct` compares
        rows.append(row)
    graded = [k for k, r in enumerate(rows) if "answer" in r]
    if graded:
        responses = [clean[k] for k in graded]
        scores = grader.score("accuracy", responses, [rows[k]["answer"] for k in graded])
        timed_out = getattr(grader, "timed_out", None) or [False] * len(graded)
        for k, s, late in zip(graded, scores, timed_out):
            rows[k]["correct"] = bool(s)
            if late:  # only then: rows of runs without timeouts are as before
                rows[k]["timed_out"] = True
    return rows


def chat_template_of(base, rl, template_from: str, chat_template: bool) -> str | None:
    """The chat template text rendering a pair's prompts (`data.prompts.pick_chat_template`), read
    from the checkpoints' tokenizers before any model loads; None without chat templating.

    Raises:
      DataError: `template_from` not chosen and the two templates differ (one line naming it).
    """
    if not chat_template:
        return None
    rl_tok = load_tokenizer(rl) if rl else None
    return pick_chat_template(load_tokenizer(base), rl_tok, template_from)


def samples_to_score_rows(runs: list[tuple[str | Path, str]]) -> list[dict[str, Any]]:
    """`score` input rows from `sample` outputs: the exact prompt and response token ids.

    Args:
      runs: (output directory, group name) pairs; the prompt ids are rebuilt as the run built them
        (its data file, prompt suffix, chat template and template_from from run.json, its base
        tokenizer).
    Returns:
      rows {"prompt_ids", "response_ids", "group", "prompt_index", "sample_index"}; samples with
      no tokens are skipped.
    """
    rows = []
    for out, group in runs:
        record = json.loads((Path(out) / "run.json").read_text())
        tokenizer = load_tokenizer(record["base"])
        template = chat_template_of(
            record["base"],
            record.get("rl") or None,
            record.get("template_from", ""),
            record["chat_template"],
        )
        prompts = load_prompts(
            record["data"],
            tokenizer,
            chat_template=record["chat_template"],
            prompt_suffix=record["prompt_suffix"],
            template=template,
        )
        ids = {p.index: p.ids for p in prompts}
        for line in (Path(out) / "samples.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            s = json.loads(line)
            if s["token_ids"]:
                rows.append(
                    {
                        "prompt_ids": list(ids[s["prompt_index"]]),
                        "response_ids": s["token_ids"],
                        "group": group,
                        "prompt_index": s["prompt_index"],
                        "sample_index": s["sample_index"],
                    }
                )
    return rows


def build_demo(out: Path) -> tuple[Path, Path, Path]:
    """Tiny base/RL checkpoints and arithmetic prompts with answers under `out/demo_inputs`.

    Returns:
      (base dir, RL dir, prompts file).
    """
    root = out / "demo_inputs"
    if runtime.is_writer():
        toy.build_pair(root, seed=0)
        rng = np.random.default_rng(0)
        rows = []
        for _ in range(8):
            a, b = (int(x) for x in rng.integers(1, 9, size=2))
            rows.append({"prompt": f"{a}+{b}=? End with 'Answer: <n>'.", "answer": str(a + b)})
        outputs.write_jsonl(root / "prompts.jsonl", rows)
    runtime.wait_for_writer("dlogp-sample demo inputs")
    return root / "base", root / "rl", root / "prompts.jsonl"
