"""`dlogp-sample`: plain, selective-replacement and extrapolated decoding of a base/RL pair.

Outputs in `--config.out`:
  samples.jsonl  one line per sample: prompt_index, sample_index, text, token_ids, proposed_ids,
                 selected, logp_base, logp_rl, dlogp (per token), length, finish_reason,
                 replacement_rate, and answer/correct when the data has answers.
  summary.json   prompts, samples, mean length, replacement rate, finish reasons, accuracy (Avg@n
                 with a 95% interval over prompts) when answers are given, tokens/s.
  run.json       the settings that determine the samples; a re-run with the same `out` continues
                 where it stopped (finished prompts are kept), and refuses different settings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from tqdm import tqdm

from dlogp_jax import outputs, toy
from dlogp_jax.analysis.sample_summary import summarize_samples
from dlogp_jax.cli import common
from dlogp_jax.data.prompts import render_prompt
from dlogp_jax.data.rows import DataError, get_text, read_rows, where
from dlogp_jax.model.pair import load_pair
from dlogp_jax.rl.rewards import Grader
from dlogp_jax.sampling import FINISH_REASONS, DecodeSpec, generate, left_pad
from dlogp_jax.sharding import gather_to_host

SAMPLE_SETTINGS = (
    "base", "rl", "data", "mode", "criterion", "threshold", "gamma", "faithful", "faithful_top_k",
    "temperature", "top_p", "top_k", "max_new_tokens", "stop_tokens", "n", "seed",
    "chat_template", "prompt_suffix", "dtype",
)  # fmt: skip
DEFAULT_STOPS = ("<|im_end|>", "<|endoftext|>")


def build_demo(out: Path) -> tuple[Path, Path, Path]:
    """Tiny base/RL checkpoints and arithmetic prompts with answers under `out/demo_inputs`."""
    root = out / "demo_inputs"
    if common.is_writer():
        toy.build_pair(root, seed=0)
        rng = np.random.default_rng(0)
        rows = []
        for _ in range(8):
            a, b = (int(x) for x in rng.integers(1, 9, size=2))
            rows.append({"prompt": f"{a}+{b}=? End with 'Answer: <n>'.", "answer": str(a + b)})
        outputs.write_jsonl(root / "prompts.jsonl", rows)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("dlogp-sample demo inputs")
    return root / "base", root / "rl", root / "prompts.jsonl"


def load_prompts(path, tokenizer, config) -> list[dict]:
    """Rows -> [{index, ids, answer}]; `prompt` or `problem` text, optional `answer`."""
    prompts = []
    for i, row in enumerate(read_rows(path)):
        loc = where(path, i, row)
        field = "prompt" if "prompt" in row else "problem"
        text = get_text(row, field, loc).strip() + config.prompt_suffix
        ids = tokenizer.encode(
            render_prompt(tokenizer, text, config.chat_template), add_special_tokens=False
        )
        if not ids:
            raise DataError(f"{loc}: the prompt is empty.")
        answer = row.get("answer")
        prompts.append({"index": i, "ids": ids, "answer": None if answer is None else str(answer)})
    return prompts


def stop_ids(tokenizer, spec: str) -> tuple[int, ...]:
    """Token ids that end a sequence: the given tokens, or eos + <|im_end|> + <|endoftext|>."""
    names = [s for s in spec.split(",") if s] or [tokenizer.eos_token, *DEFAULT_STOPS]
    vocab = tokenizer.get_vocab()
    if spec and (missing := [s for s in names if s not in vocab]):
        raise DataError(f"stop_tokens: {missing} are not tokens of the tokenizer.")
    return tuple(sorted({vocab[s] for s in names if s in vocab}))


def read_done(path: Path, n: int) -> dict[int, list[dict]]:
    """Samples already written, by prompt; a torn last line (killed mid-write) is dropped."""
    done: dict[int, list[dict]] = {}
    if not path.exists():
        return done
    lines = path.read_text().splitlines()
    for k, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break
            raise DataError(
                f"{path}:{k + 1}: corrupt line; move the file away to start over."
            ) from None
        done.setdefault(row["prompt_index"], []).append(row)
    return {p: rows for p, rows in done.items() if len(rows) == n}


def sample_rows(out, batch, tokenizer, grader) -> list[dict]:
    """One JSON row per generated sequence of a batch (host arrays in `out`).

    Whole-batch NumPy work and one batch_decode: indexing device arrays element by element cost
    more than decoding did.
    """
    out = jax.tree.map(np.asarray, out)
    per_prompt = out.tokens.shape[0] // len(batch)
    lengths = np.asarray(out.length).tolist()
    cut = lambda a: [row[:n] for row, n in zip(a.tolist(), lengths)]  # noqa: E731
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
            "prompt_index": prompt["index"], "sample_index": int(out.sample_index[r]),
            "text": texts[r], "token_ids": tokens[r], "proposed_ids": proposed[r],
            "selected": selected[r], **{k: v[r] for k, v in logs.items()}, "length": n_tok,
            "finish_reason": reasons[r], "replacement_rate": float(out.replacement_rate[r]),
        }  # fmt: skip
        if prompt["answer"] is not None:
            row["answer"] = prompt["answer"]
        rows.append(row)
    graded = [k for k, r in enumerate(rows) if "answer" in r]
    if graded:
        scores = grader.score(
            "accuracy", [clean[k] for k in graded], [rows[k]["answer"] for k in graded]
        )
        for k, s in zip(graded, scores):
            rows[k]["correct"] = bool(s)
    return rows


def make_spec(config, pair) -> DecodeSpec:
    return DecodeSpec(
        mode=config.mode, criterion=config.criterion, threshold=config.threshold,
        gamma=config.gamma, temperature=config.temperature, top_p=config.top_p,
        top_k=config.top_k, max_new_tokens=config.max_new_tokens,
        stop_ids=stop_ids(pair.tokenizer, config.stop_tokens),
        pad_id=pair.tokenizer.pad_token_id or 0, faithful=config.faithful,
        faithful_top_k=config.faithful_top_k, vocab_limit=pair.vocab_limit, n=config.n,
    )  # fmt: skip


def check_run_file(out: Path, settings: dict) -> None:
    """Refuses to continue samples made with other settings; records the settings otherwise."""
    run_file = out / "run.json"
    if run_file.exists():
        before = json.loads(run_file.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise DataError(
                f"{out} holds samples made with other settings {changed} (before, now); use a new "
                "--config.out or the same settings to continue."
            )
    elif common.is_writer():
        outputs.write_json(run_file, settings)


def run(config) -> Path:
    """Decodes every prompt of `config.data` `config.n` times and writes the outputs."""
    mesh = common.init_runtime(config)
    out, base, rl, data = common.resolve_inputs(config, build_demo, "sample")
    if config.mode != "single" and not rl:
        common.fail(f"mode={config.mode!r} needs --config.rl=DIR (the RL checkpoint).")
    settings = {k: config[k] for k in SAMPLE_SETTINGS} | {
        "base": str(base),
        "rl": str(rl),
        "data": str(data),
    }
    pair = load_pair(base, rl or None, mesh=mesh, dtype=config.dtype)
    spec = make_spec(config, pair)
    prompts = load_prompts(data, pair.tokenizer, config)
    check_run_file(out, settings)
    samples_file = out / "samples.jsonl"
    done = read_done(samples_file, config.n)
    todo = [p for p in prompts if p["index"] not in done]
    if common.is_writer():  # rewrite without torn/partial groups, then append batch by batch
        outputs.write_jsonl(samples_file, [r for p in sorted(done) for r in done[p]])
    logging.info("%d prompts, %d already done, %d to decode", len(prompts), len(done), len(todo))
    buckets = [int(b) for b in config.prompt_buckets.split(",") if b]
    bar = tqdm(
        total=len(todo),
        unit="prompt",
        desc=f"sampling ({config.mode})",
        disable=not common.is_writer(),
    )
    generated, start = 0, time.perf_counter()
    with Grader(workers=config.grader_workers) as grader:
        for i in range(0, len(todo), config.batch_prompts):
            batch = todo[i : i + config.batch_prompts]
            batch = batch + [batch[-1]] * (config.batch_prompts - len(batch))  # fixed shapes
            tokens, mask = left_pad([p["ids"] for p in batch], spec.pad_id, buckets)
            with jax.set_mesh(mesh):
                result = generate(
                    pair.params_base, tokens, mask, np.asarray([p["index"] for p in batch]),
                    spec=spec, config_base=pair.config_base, params_rl=pair.params_rl,
                    config_rl=pair.config_rl, seed=config.seed,
                )  # fmt: skip
            result = gather_to_host(result)
            real = len(todo[i : i + config.batch_prompts])
            rows = sample_rows(result, batch, pair.tokenizer, grader)[: real * config.n]
            generated += sum(r["length"] for r in rows)
            if common.is_writer():
                _append(samples_file, rows)
            bar.update(real)
            bar.set_postfix(tok_s=f"{generated / (time.perf_counter() - start):.0f}")
    bar.close()
    if common.is_writer():
        summary = summarize_samples(read_done(samples_file, config.n))
        summary.update(settings=settings, new_tokens=generated, seconds=time.perf_counter() - start)
        summary["tokens_per_second"] = generated / max(summary["seconds"], 1e-9)
        outputs.write_json(out / "summary.json", summary)
        logging.info(
            "wrote %s: %s",
            out,
            {k: summary.get(k) for k in ("accuracy", "mean_length", "replacement_rate")},
        )
    return out


def samples_to_score_rows(runs) -> list[dict]:
    """`dlogp-score` input rows from dlogp-sample outputs: exact prompt and response token ids.

    Args:
      runs: (output directory, group name) pairs; the prompt ids are rebuilt as the run built them
        (its data file, prompt suffix and chat template from run.json, its base tokenizer).
    Returns:
      rows {"prompt_ids", "response_ids", "group", "prompt_index", "sample_index"}; samples with
      no tokens are skipped.
    """
    import types

    from dlogp_jax.model.tokenizer import load_tokenizer

    rows = []
    for out, group in runs:
        settings = json.loads((Path(out) / "run.json").read_text())
        tokenizer = load_tokenizer(settings["base"])
        config = types.SimpleNamespace(
            prompt_suffix=settings["prompt_suffix"], chat_template=settings["chat_template"]
        )
        prompts = {p["index"]: p["ids"] for p in load_prompts(settings["data"], tokenizer, config)}
        for line in (Path(out) / "samples.jsonl").read_text().splitlines():
            if not line.strip():
                continue
            s = json.loads(line)
            if s["token_ids"]:
                rows.append({
                    "prompt_ids": list(prompts[s["prompt_index"]]), "response_ids": s["token_ids"],
                    "group": group, "prompt_index": s["prompt_index"],
                    "sample_index": s["sample_index"],
                })  # fmt: skip
    return rows


def _append(path: Path, rows: list[dict]) -> None:
    """Appends whole lines and flushes them to disk (a kill loses at most the batch in flight)."""
    import os

    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def entry():
    common.run_app(run, "sample")


if __name__ == "__main__":
    entry()
