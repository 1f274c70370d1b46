"""Training prompts: DAPO-Math-17k layout or plain problem/answer rows, and the prompt-index stream.

Accepted layouts (any file `rows.read_rows` reads: jsonl, parquet, or a `save_to_disk` directory):
  * DAPO-Math-17k / verl: `prompt` = list of chat messages ({role, content}),
    `reward_model.ground_truth`, `data_source` (selects the reward, e.g. `math_dapo`).
  * plain: `problem` (or `prompt` as a string) and `answer` (optional `data_source`).
Every row is validated before training starts; a malformed row raises DataError with its index
and field. A grain pipeline over prompt indices gives deterministic shuffling, per-host sharding and a
small JSON state that is checkpointed with the model.
"""

from __future__ import annotations

from typing import Any

import grain
import jax

from dlogp_jax.data.prompts import Prompt, render_prompt
from dlogp_jax.data.rows import DataError, where


def _messages(row: dict, loc: str) -> list[dict[str, str]]:
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
        f"{loc}: field 'prompt' must be a string or a list of {{role, content}} messages "
        "(or give 'problem')."
    )


def _answer(row: dict, loc: str) -> str:
    rm = row.get("reward_model")
    if isinstance(rm, dict) and rm.get("ground_truth") is not None:
        return str(rm["ground_truth"])
    if row.get("answer") is not None:
        return str(row["answer"])
    raise DataError(f"{loc}: missing field 'reward_model.ground_truth' (or 'answer').")


def prepare_prompts(
    rows: list[dict[str, Any]],
    tokenizer,
    *,
    path,
    chat_template: bool = True,
    prompt_format: str = "{content}",
    max_prompt_len: int = 2048,
) -> list[Prompt]:
    """Validates, templates and tokenizes every row (errors name the line or row, and the field).

    Args:
      prompt_format: applied to the last user message's content (e.g. "{content}\\nAnswer:").
      chat_template: render with the tokenizer's chat template (else plain concatenated content).
      max_prompt_len: longer prompts are refused.
    """
    out = []
    for i, row in enumerate(rows):
        loc = where(path, i, row)
        messages = _messages(row, loc)
        # str.replace, not str.format: templates such as "\\boxed{}" contain literal braces.
        messages[-1]["content"] = prompt_format.replace("{content}", messages[-1]["content"])
        text = render_prompt(tokenizer, messages, chat_template)
        ids = tokenizer.encode(text, add_special_tokens=False)
        if not ids or len(ids) > max_prompt_len:
            raise DataError(
                f"{loc}: prompt has {len(ids)} tokens (allowed 1..{max_prompt_len}); "
                "raise max_prompt_len or drop the row."
            )
        out.append(
            Prompt(
                index=i,
                ids=tuple(ids),
                answer=_answer(row, loc),
                data_source=str(row.get("data_source") or ""),
            )
        )
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
