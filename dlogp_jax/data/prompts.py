"""Turning prompt/response rows into token ids with a checkpoint's tokenizer and chat template."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dlogp_jax.data.rows import DataError, get_ids, get_text, where


@dataclasses.dataclass(frozen=True)
class Example:
    """One prompt + response, as ids. `row` is the 0-based index in the data file."""

    row: int
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    group: str = ""

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


def render_prompt(tokenizer, prompt: str, chat_template: bool) -> str:
    """The prompt text as the model sees it: one user turn in the chat template, or raw."""
    if not chat_template:
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(
            "chat_template=true but the tokenizer has no chat template; set "
            "--config.chat_template=false or use a checkpoint whose tokenizer_config.json has one."
        )
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_rows(
    rows: list[dict[str, Any]],
    tokenizer,
    *,
    path: str | Path,
    vocab_limit: int,
    chat_template: bool = False,
    max_length: int = 8192,
) -> list[Example]:
    """Encodes every row; rows hold `prompt`+`response` text or `prompt_ids`+`response_ids`.

    An optional `group` field (e.g. "base" / "rl": which model generated the response) is kept.
    Raises:
      DataError: naming the line and field of the first malformed or over-long row.
    """
    examples = []
    for i, row in enumerate(rows):
        loc = where(path, i, row)
        if "prompt_ids" in row or "response_ids" in row:
            p_ids = get_ids(row, "prompt_ids", loc, vocab_limit)
            r_ids = get_ids(row, "response_ids", loc, vocab_limit)
        elif "prompt" in row or "response" in row:
            prompt = render_prompt(tokenizer, get_text(row, "prompt", loc), chat_template)
            p_ids = tokenizer.encode(prompt, add_special_tokens=False)
            r_ids = tokenizer.encode(get_text(row, "response", loc), add_special_tokens=False)
        else:
            raise DataError(
                f"{loc}: a row needs 'prompt' and 'response' (text) or 'prompt_ids' and "
                f"'response_ids'; found fields {sorted(k for k in row if k != '_line')}."
            )
        if not p_ids:
            raise DataError(f"{loc}: the prompt is empty; the first response token needs context.")
        ex = Example(i, tuple(p_ids), tuple(r_ids), str(row.get("group") or ""))
        if ex.length > max_length:
            raise DataError(
                f"{loc}: {ex.length} tokens exceed max_length={max_length}; raise "
                "--config.max_length or shorten the row."
            )
        examples.append(ex)
    return examples
