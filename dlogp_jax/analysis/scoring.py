"""Scoring many examples: length-bucketed batches through the jitted chunked scorer.

Examples are sorted by length and grouped into batches of `batch_size`; each batch is right-padded to a
multiple of `length_bucket` tokens (and short batches are filled with empty rows), so the scorer
compiles once per bucket, not once per batch. With a mesh, batches are split over the `data`/`fsdp`
axes and results are gathered back to every process (multi-host safe: each process supplies only its
addressable shards).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator

import jax
import numpy as np

from dlogp_jax.data.prompts import Example
from dlogp_jax.logprobs import score_tokens
from dlogp_jax.model.pair import ModelPair
from dlogp_jax.sharding import gather_to_host, place


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How examples are batched: rows per batch, padding granule, tokens per vocabulary chunk, and
    how many top alternatives per token each model reports (0 = none)."""

    batch_size: int = 8
    length_bucket: int = 64
    chunk_tokens: int = 1024
    top_alternatives: int = 0

    def __post_init__(self):
        for f in ("batch_size", "length_bucket", "chunk_tokens"):
            if getattr(self, f) < 1:
                raise ValueError(f"{f} must be >= 1, got {getattr(self, f)}.")
        if self.top_alternatives < 0:
            raise ValueError(f"top_alternatives must be >= 0, got {self.top_alternatives}.")


def make_batches(examples: list[Example], settings: BatchSettings) -> Iterator[list[Example]]:
    """Groups examples of similar length (longest first, so out-of-memory shows up at once)."""
    order = sorted(examples, key=lambda e: -e.length)
    for i in range(0, len(order), settings.batch_size):
        yield order[i : i + settings.batch_size]


def pack(batch: list[Example], settings: BatchSettings):
    """Right-padded `tokens`, `positions`, `mask` arrays [batch_size, T] for one batch."""
    longest = max(e.length for e in batch)
    t = -(-longest // settings.length_bucket) * settings.length_bucket
    tokens = np.zeros((settings.batch_size, t), np.int32)
    mask = np.zeros((settings.batch_size, t), bool)
    for i, e in enumerate(batch):
        ids = e.prompt_ids + e.response_ids
        tokens[i, : len(ids)] = ids
        mask[i, : len(ids)] = True
    positions = np.broadcast_to(np.arange(t, dtype=np.int32), (settings.batch_size, t))
    return tokens, np.ascontiguousarray(positions), mask


def score_examples(
    pair: ModelPair,
    examples: list[Example],
    settings: BatchSettings,
    mesh=None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[tuple[Example, dict[str, np.ndarray]]]:
    """Yields (example, metrics) with each metric a [len(response)] float32 array.

    Metric names: `logp`, `entropy` for one model; METRICS_TWO of `dlogp_jax.logprobs` for two.
    With `settings.top_alternatives` = K > 0 also the alternatives of `logprobs.score_tokens`
    (`top_ids*` [len(response), K] int32, `top_logp*` [len(response), K] float32).
    `on_batch(num_tokens)` is called after each batch (progress reporting).
    """
    for batch in make_batches(examples, settings):
        tokens, positions, mask = pack(batch, settings)
        args = [place(a, mesh, ("act_batch", "act_len")) for a in (tokens, positions, mask)]
        with jax.set_mesh(mesh) if mesh is not None else contextlib.nullcontext():
            out = score_tokens(
                pair.params_base,
                *args,
                pair.params_rl,
                config_base=pair.config_base,
                config_rl=pair.config_rl,
                vocab_limit=pair.vocab_limit,
                chunk_tokens=settings.chunk_tokens,
                top_alternatives=settings.top_alternatives,
            )
        out = gather_to_host(out)
        for i, e in enumerate(batch):
            start, stop = len(e.prompt_ids), e.length
            yield e, {k: _cast(k, v[i, start:stop]) for k, v in out.items()}
        if on_batch is not None:
            on_batch(int(sum(len(e.response_ids) for e in batch)))


def _cast(name: str, values: np.ndarray) -> np.ndarray:
    return values.astype(np.int32 if name.startswith("top_ids") else np.float32)
