"""Which decoder a run uses (paged engine or static), its memory settings, and one call for both.

Legend: P prompts, Tp their (padded) length, n samples per prompt, M max_new_tokens, Z page size,
B sequence slots (max_seqs).

The settings every generating run shares (`dlogp-sample`, the trainer's rollouts and evaluation,
the demo): `engine` ("paged" | "static"), `kv_pages`, `page_size`, `max_seqs`. 0 means auto:

  max_seqs  = min(sequences queued in one call, 256 on accelerators, 64 on CPU);
  kv_pages  = AUTO_FRACTION (1/2) of the first local device's free memory (its `memory_stats`:
              bytes_limit - bytes_in_use, read after the weights are loaded) divided by one page's
              bytes (both models, k and v, Z tokens), as if the pool sat whole on one device
              (conservative when the mesh shards it); without memory stats (CPU) a 1 GiB budget.
              Clamped to [the minimum below, enough pages that no slot ever waits for one].

Budget rule (checked before any work): kv_pages >= ceil((longest prompt + M) / Z) + 2, so one
sequence of the longest prompt can always reach M tokens (plus a clone page and one of headroom).
Below `enough` pages (every slot at full length plus every prompt awaiting its other samples: the
auto clamp's top) sequences may wait for pages (the youngest is preempted and restarted, with the
same tokens); one ends with `cache_full` only if it stalls alone while such prompts hold pages. At
`enough` pages nothing waits and the outputs equal the static decoder's.

Auto sizes are computed once per process and arguments (an lru cache), so repeated calls
(training rollouts) keep one compiled engine.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers

import jax
import numpy as np
from jax.experimental import multihost_utils

from dlogp_jax.engine import rounds
from dlogp_jax.engine.loop import EngineConfig, EngineStats, run_paged
from dlogp_jax.sampling import DecodeOutput, DecodeSpec, generate

ENGINES = ("paged", "static")
AUTO_FRACTION = 0.5  # of the free device memory after the weights
CPU_BUDGET_BYTES = 1 << 30  # auto KV budget where the device reports no memory stats
AUTO_SEQS = {"cpu": 64}  # auto max_seqs cap per platform; others: AUTO_SEQS_DEFAULT
AUTO_SEQS_DEFAULT = 256


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """A run's decoder and its memory settings (0 = auto; see the module docstring)."""

    engine: str = "paged"  # paged | static
    kv_pages: int = 0  # KV pages per model; 0 = auto from the device's free memory
    page_size: int = 16  # tokens per page
    max_seqs: int = 0  # sequences decoded together; 0 = auto

    @property
    def paged(self) -> bool:
        return self.engine == "paged"


DEFAULT = EngineChoice()  # paged, every size auto


def setting_problems(choice, prefix: str = "") -> list[str]:
    """One message per bad engine setting of `choice` (any object with the four fields)."""
    problems = []
    if choice.engine not in ENGINES:
        problems.append(f"{prefix}engine={choice.engine!r}: use one of {', '.join(ENGINES)}.")
    for name, low in (("kv_pages", 0), ("page_size", 1), ("max_seqs", 0)):
        v = getattr(choice, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            what = "an integer >= 1" if low else "an integer >= 0 (0 = auto)"
            problems.append(f"{prefix}{name}={v!r}: must be {what}.")
    return problems


def choice_of(settings) -> EngineChoice:
    """The EngineChoice of a settings object with the four fields (SampleSettings, rollout)."""
    return EngineChoice(
        engine=settings.engine,
        kv_pages=settings.kv_pages,
        page_size=settings.page_size,
        max_seqs=settings.max_seqs,
    )


def min_pages(longest_prompt: int, max_new: int, page_size: int) -> int:
    """Pages one sequence of the longest prompt needs to reach max_new tokens, + clone + headroom."""
    return math.ceil((longest_prompt + max_new) / page_size) + 2


def page_bytes(configs, page_size: int) -> int:
    """Bytes of one page in every model's pool (k and v, each model's compute dtype)."""
    return sum(
        2 * page_size * c.num_layers * c.num_kv_heads * c.head_dim * np.dtype(c.dtype).itemsize
        for c in configs
    )


def free_device_bytes() -> int | None:
    """Free memory of the first local device (bytes_limit - bytes_in_use), None without stats;
    in a multi-process run the least over processes, so that every process sizes the same
    engine (their host loops must run the same programs in lock-step)."""
    stats = jax.local_devices()[0].memory_stats()
    free = -1
    if stats and "bytes_limit" in stats:
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    if jax.process_count() > 1:
        every = np.asarray(multihost_utils.process_allgather(np.int64(free)))
        free = -1 if (every < 0).any() else int(every.min())
    return None if free < 0 else free


@functools.lru_cache(maxsize=64)
def engine_config(
    choice: EngineChoice,
    configs: tuple,
    *,
    sequences: int,
    longest_prompt: int,
    max_new: int,
    prefix: str = "",
) -> EngineConfig:
    """The EngineConfig of a paged run, auto sizes resolved (cached per process and arguments).

    Args:
      choice: the run's settings. configs: every model's ModelConfig (base first).
      sequences: sequences queued per call (P·n). longest_prompt: tokens of the longest prompt
        (or its bucket, to keep one size across calls). max_new: M.
      prefix: the settings' section in messages ("rollout.").
    Raises:
      ValueError: one line naming the field and the fix when the budget cannot hold one sequence.
    """
    z = choice.page_size
    platform = jax.local_devices()[0].platform
    seqs = choice.max_seqs or max(1, min(sequences, AUTO_SEQS.get(platform, AUTO_SEQS_DEFAULT)))
    need = min_pages(longest_prompt, max_new, z)
    width = math.ceil((longest_prompt + max_new) / z)
    # enough that no slot ever waits: every slot at full length plus every prompt holder
    enough = seqs * width + rounds.hold_capacity(seqs) * math.ceil(longest_prompt / z)
    pages = choice.kv_pages
    if not pages:
        free = free_device_bytes()
        budget = CPU_BUDGET_BYTES if free is None else int(AUTO_FRACTION * free)
        pages = min(budget // page_bytes(configs, z), enough)
        if pages < need:
            raise ValueError(
                f"{prefix}kv_pages=0 (auto): {budget / 2**20:.0f} MiB for the KV cache hold "
                f"{pages} pages of {z} tokens, fewer than the {need} one sequence needs (longest "
                f"prompt {longest_prompt} + max_new_tokens {max_new}): lower max_new_tokens, "
                f"use a device with more memory, or set {prefix}engine=static."
            )
    elif pages < need:
        raise ValueError(
            f"{prefix}kv_pages={pages}: one sequence of the longest prompt ({longest_prompt} "
            f"tokens) + max_new_tokens ({max_new}) needs {need} pages of {z} tokens: raise "
            f"{prefix}kv_pages to >= {need} (or 0 = auto), or lower max_new_tokens."
        )
    return EngineConfig(num_pages=pages, page_size=z, max_seqs=seqs)


def decode(
    choice: EngineChoice,
    params_base,
    prompt_tokens,
    prompt_mask,
    prompt_index,
    *,
    spec: DecodeSpec,
    config_base,
    params_rl=None,
    config_rl=None,
    seed: int = 0,
    engine: EngineConfig | None = None,
    longest_prompt: int | None = None,
    prefix: str = "",
) -> tuple[DecodeOutput, EngineStats | None]:
    """`sampling.generate` (engine=static) or `engine.run_paged` (paged) on the same arguments.

    Args:
      choice: decoder and memory settings. prompt_tokens [P, Tp], prompt_mask [P, Tp],
        prompt_index [P] and the rest: as `sampling.generate`.
      engine: the paged sizes (default: `engine_config` of these prompts); pass one resolved
        for the whole run to keep one compiled engine across calls.
      longest_prompt: sizes the default budget (default: the longest real prompt here); pass a
        bucket to keep one engine size across calls.
    Returns:
      (DecodeOutput with [P·n, M] records, row i·n + j = prompt i, sample j; EngineStats of a paged
      run, None for static).
    """
    models = dict(spec=spec, config_base=config_base, params_rl=params_rl, config_rl=config_rl)
    args = (params_base, prompt_tokens, prompt_mask, prompt_index)
    if not choice.paged:
        return generate(*args, seed=seed, **models), None
    if engine is None:
        longest = longest_prompt or int(np.asarray(prompt_mask).sum(-1).max())
        engine = engine_config(
            choice,
            (config_base,) if params_rl is None else (config_base, config_rl),
            sequences=len(prompt_index) * spec.n,
            longest_prompt=longest,
            max_new=spec.max_new_tokens,
            prefix=prefix,
        )
    return run_paged(*args, seed=int(seed), engine=engine, **models)


def stats_summary(stats: list[EngineStats], engine: EngineConfig | None) -> dict:
    """A run's engine figures for summary.json: sizes and the stats summed / maxed over calls."""
    if engine is None:
        return {}
    return {
        "kv_pages": engine.num_pages,
        "page_size": engine.page_size,
        "max_seqs": engine.max_seqs,
        "decode_steps": sum(s.decode_steps for s in stats),
        "peak_live_seqs": max((s.peak_live_seqs for s in stats), default=0),
        "peak_pages_used": max((s.peak_pages_used for s in stats), default=0),
        "preempted": sum(s.preempted for s in stats),
    }
