"""Fixed-shape batches over a list: the decoder compiles once for every batch, the last included."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def fixed_batches(items: Sequence[T], size: int) -> Iterator[tuple[list[T], int]]:
    """Consecutive batches of exactly `size` items; the last is filled with repeats of its last item.

    A sample depends only on (seed, prompt index, sample index), so the repeated rows generate what
    the real ones do and are simply dropped: callers keep the first `real` items' outputs.

    Yields:
      (batch of `size` items, real: how many of them are new items of `items`).
    """
    if size < 1:
        raise ValueError(f"batch size {size}: use at least 1.")
    for start in range(0, len(items), size):
        batch = list(items[start : start + size])
        real = len(batch)
        yield batch + [batch[-1]] * (size - real), real
