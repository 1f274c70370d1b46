"""Paged two-model generation: page pools, one shared page table, continuous batching.

Facade: re-exports the public API; implementations live in the submodules.
"""

from dlogp_jax.engine.attention import PagedBatch, paged_attention
from dlogp_jax.engine.loop import EngineConfig, EngineStats, generate_paged, run_paged
from dlogp_jax.engine.pages import PageState, Pool, allocate, init_pages, init_pool, release_rows
from dlogp_jax.engine.rounds import Admission, EngineState

__all__ = [
    "Admission",
    "EngineConfig",
    "EngineState",
    "EngineStats",
    "PageState",
    "PagedBatch",
    "Pool",
    "allocate",
    "generate_paged",
    "init_pages",
    "init_pool",
    "paged_attention",
    "release_rows",
    "run_paged",
]
