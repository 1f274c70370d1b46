"""Loading a checkpoint's tokenizer and checking that two checkpoints share one.

The vocabulary that counts is `len(tokenizer)` (base vocabulary plus added/special tokens such as
`<|im_end|>`), not `tokenizer.vocab_size` (which leaves the added tokens out). Embedding rows beyond it
are padding and are masked out of every distribution.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax.errors import CheckpointError, DataError

_PROBE = "Hello world 12+7=19.\n  Answer: \\boxed{x}\tend"


def load_tokenizer(path: str | Path):
    """The checkpoint's tokenizer from a local directory (never the hub).

    `AutoTokenizer` is used, but `tokenizer.json` is the source of truth: transformers 5 picks the
    tokenizer class from config.json's `model_type` (a qwen2 config gets `Qwen2Tokenizer`, which
    rebuilds a byte-level pipeline and silently drops the spaces of a non-byte-level vocabulary).
    When the class disagrees with `tokenizer.json` on a probe string, the generic fast tokenizer
    built from `tokenizer.json` is used instead.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise CheckpointError(
            f"{path}: no tokenizer.json or tokenizer_config.json; copy the tokenizer files of the "
            "model into the checkpoint directory."
        )
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if (path / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        raw = Tokenizer.from_file(str(path / "tokenizer.json"))
        if (
            tok.encode(_PROBE, add_special_tokens=False)
            != raw.encode(_PROBE, add_special_tokens=False).ids
        ):
            tok = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    return tok


def check_same_tokenizer(tok_a, tok_b, name_a: str = "base", name_b: str = "rl") -> None:
    """Raises CheckpointError, saying how they differ, unless the two tokenizers map text identically.

    Compares the full vocabulary (token -> id, added tokens included). Special-token *roles* may
    differ (a base model's eos is often `<|endoftext|>`, an RL/chat model's `<|im_end|>`): they do
    not change how text maps to ids, so they are not compared.
    """
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    problems = []
    if len(va) != len(vb):
        problems.append(f"sizes differ: {name_a} has {len(va)} tokens, {name_b} has {len(vb)}")
    diff = [t for t in va if vb.get(t) != va[t]] + [t for t in vb if t not in va]
    if diff:
        shown = ", ".join(
            f"{t!r}: {name_a}={va.get(t)} {name_b}={vb.get(t)}" for t in sorted(diff)[:5]
        )
        problems.append(f"{len(diff)} tokens map to different ids (e.g. {shown})")
    if problems:
        raise CheckpointError(
            f"the {name_a} and {name_b} checkpoints use different tokenizers: "
            + "; ".join(problems)
            + ". Δlog p compares the same token under both models, so both must share one "
            "tokenizer (e.g. Qwen2.5-32B and DAPO-Qwen-32B do)."
        )


DEFAULT_STOPS = ("<|im_end|>", "<|endoftext|>")


def stop_token_ids(tokenizer, names: str = "") -> tuple[int, ...]:
    """Token ids that end a sequence, sorted.

    Args:
      names: comma-separated token strings; empty means the tokenizer's eos plus `<|im_end|>` and
        `<|endoftext|>` where the vocabulary has them (a chat model ends its turn with the first,
        a base model its text with the second, and the pair shares one tokenizer).
    Raises:
      DataError naming the tokens a non-empty `names` lists that the vocabulary lacks.
    """
    wanted = [s for s in names.split(",") if s]
    vocab = tokenizer.get_vocab()
    if missing := [s for s in wanted if s not in vocab]:
        raise DataError(f"stop_tokens: {missing} are not tokens of the tokenizer.")
    wanted = wanted or [tokenizer.eos_token, *DEFAULT_STOPS]
    return tuple(sorted({vocab[s] for s in wanted if s in vocab}))
