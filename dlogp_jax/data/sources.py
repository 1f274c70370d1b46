"""Training prompts from local files: DAPO-Math-17k layout or plain problem/answer rows.

Accepted layouts (jsonl, parquet, or a directory written by `datasets.Dataset.save_to_disk`):
  * DAPO-Math-17k / verl: `prompt` = list of chat messages ({role, content}),
    `reward_model.ground_truth`, `data_source` (selects the reward, e.g. `math_dapo`).
  * plain: `problem` (or `prompt` as a string) and `answer` (optional `data_source`).
Every row is validated before training starts; a malformed row raises DataError with its index
and field. A grain pipeline over prompt indices gives deterministic shuffling, per-host sharding and a
small JSON state that is checkpointed with the model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import grain
import jax

from dlogp_jax.data.rows import DataError


@dataclasses.dataclass(frozen=True)
class PromptRow:
    """One training prompt, already templated and tokenized."""

    ids: tuple[int, ...]
    answer: str
    data_source: str


def load_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a jsonl/parquet file or a `save_to_disk` directory, through `datasets` (offline)."""
    import datasets

    path = Path(path)
    if path.is_dir():
        return datasets.load_from_disk(str(path)).to_list()
    if not path.is_file():
        raise DataError(f"data {str(path)!r} does not exist.")
    kind = {".parquet": "parquet", ".jsonl": "json", ".json": "json"}.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown data format {path.suffix!r}; use .jsonl or .parquet.")
    try:
        return datasets.load_dataset(kind, data_files=str(path), split="train").to_list()
    except Exception as e:  # datasets wraps JSON/Arrow errors in many types
        raise DataError(f"{path}: cannot be read as {kind} ({type(e).__name__}: {e}).") from None


def _messages(row: dict, i: int, path) -> list[dict[str, str]]:
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if (
        isinstance(prompt, list)
        and prompt
        and all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role")
            for m in prompt
        )
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    if isinstance(row.get("problem"), str):
        return [{"role": "user", "content": row["problem"]}]
    raise DataError(
        f"{path} row {i + 1}: field 'prompt' must be a string or a list of {{role, content}} messages "
        "(or give 'problem')."
    )


def _answer(row: dict, i: int, path) -> str:
    rm = row.get("reward_model")
    if isinstance(rm, dict) and rm.get("ground_truth") is not None:
        return str(rm["ground_truth"])
    if row.get("answer") is not None:
        return str(row["answer"])
    raise DataError(f"{path} row {i + 1}: missing field 'reward_model.ground_truth' (or 'answer').")


def prepare_prompts(
    rows: list[dict[str, Any]],
    tokenizer,
    *,
    path,
    chat_template: bool = True,
    prompt_format: str = "{content}",
    max_prompt_len: int = 2048,
) -> list[PromptRow]:
    """Validates, templates and tokenizes every row (errors name the 1-based row and field).

    Args:
      prompt_format: applied to the last user message's content (e.g. "{content}\\nAnswer:").
      chat_template: render with the tokenizer's chat template (else plain concatenated content).
      max_prompt_len: longer prompts are refused.
    """
    out = []
    for i, row in enumerate(rows):
        messages = _messages(row, i, path)
        # str.replace, not str.format: templates such as "\\boxed{}" contain literal braces.
        messages[-1]["content"] = prompt_format.replace("{content}", messages[-1]["content"])
        if chat_template:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        else:
            text = "\n".join(m["content"] for m in messages)
        ids = tokenizer.encode(text, add_special_tokens=False)
        if not ids or len(ids) > max_prompt_len:
            raise DataError(
                f"{path} row {i + 1}: prompt has {len(ids)} tokens (allowed 1..{max_prompt_len}); "
                "raise max_prompt_len or drop the row."
            )
        out.append(PromptRow(tuple(ids), _answer(row, i, path), str(row.get("data_source") or "")))
    if not out:
        raise DataError(f"{path}: no rows.")
    return out


def prompt_batches(num_prompts: int, batch_prompts: int, seed: int):
    """Grain iterator of this process's share of each global batch of prompt indices.

    The global stream (all prompts shuffled per epoch, batches of `batch_prompts`) is the same for
    any number of processes; process p takes the p-th contiguous slice of every batch, so a
    multi-host run trains on exactly the batches of a single-host run. `get_state()` / `set_state()`
    resume exactly.

    Returns:
      iterator of [batch_prompts // process_count] int arrays.
    """
    count, pid = jax.process_count(), jax.process_index()
    if batch_prompts % count:
        raise DataError(f"batch of {batch_prompts} prompts does not split over {count} processes.")
    if num_prompts < batch_prompts:
        raise DataError(f"{num_prompts} prompts are fewer than one batch of {batch_prompts}.")
    per = batch_prompts // count
    ds = grain.MapDataset.range(num_prompts).shuffle(seed=seed).repeat(None)
    ds = ds.batch(batch_prompts, drop_remainder=True).map(lambda b: b[pid * per : (pid + 1) * per])
    return iter(ds.to_iter_dataset())
