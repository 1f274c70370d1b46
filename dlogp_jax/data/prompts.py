"""Prompts as token ids: the one prompt type, the one renderer, and the sampling/scoring row layouts.

`Prompt` is what sampling, training and evaluation decode from (`load_prompts` here for dlogp-sample,
`sources.prepare_prompts` for training data); scoring keeps its prompt + response `Example`.
`render_prompt` is the only place a prompt becomes model text (chat template or raw).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dlogp_jax.data.rows import DataError, get_ids, get_text, read_rows, where


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One prompt, templated and tokenized.

    Attributes:
      index: 0-based row of the data file (names the prompt's random stream when sampling).
      ids: the prompt's token ids as the model sees it.
      answer: the reference answer (None when the data gives none: nothing is graded).
      data_source: selects the reward during training (e.g. `math_dapo`); "" when absent.
    """

    index: int
    ids: tuple[int, ...]
    answer: str | None = None
    data_source: str = ""


@dataclasses.dataclass(frozen=True)
class Example:
    """One prompt + response, as ids, to score. `row` is the 0-based index in the data file."""

    row: int
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    group: str = ""

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


def render_prompt(tokenizer, prompt: str | Sequence[Mapping[str, str]], chat_template: bool) -> str:
    """The prompt text as the model sees it.

    Args:
      prompt: the text of one user turn, or chat messages ({role, content}).
      chat_template: render with the tokenizer's chat template (ending with the assistant's turn
        opening); otherwise the text itself, or the messages' contents joined by newlines.
    Raises:
      DataError: chat_template is set but the tokenizer has none.
    """
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if not chat_template:
        return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in messages)
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(
            "chat_template=true but the tokenizer has no chat template; set "
            "--config.chat_template=false or use a checkpoint whose tokenizer_config.json has one."
        )
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def load_prompts(
    path: str | Path, tokenizer, *, chat_template: bool, prompt_suffix: str = ""
) -> list[Prompt]:
    """The prompts of a dlogp-sample data file: `prompt` (or `problem`) text, optional `answer`.

    Args:
      prompt_suffix: appended to each (stripped) prompt before templating.
    Raises:
      DataError: naming the line and field of the first bad row (or an empty prompt).
    """
    prompts = []
    for i, row in enumerate(read_rows(path)):
        loc = where(path, i, row)
        field = "prompt" if "prompt" in row else "problem"
        if field not in row:
            raise DataError(f"{loc}: no 'prompt' field (nor 'problem'); give each row a prompt.")
        text = get_text(row, field, loc).strip() + prompt_suffix
        ids = tokenizer.encode(
            render_prompt(tokenizer, text, chat_template), add_special_tokens=False
        )
        if not ids:
            raise DataError(f"{loc}: the prompt is empty.")
        answer = row.get("answer")
        prompts.append(
            Prompt(
                index=i,
                ids=tuple(ids),
                answer=None if answer is None else str(answer),
                data_source=str(row.get("data_source") or ""),
            )
        )
    return prompts


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
                f"'response_ids'; found fields {sorted(row)}."
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
