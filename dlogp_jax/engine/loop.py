"""The host loop: continuous batching over jitted rounds, prefix sharing, page budget checks.

Legend: P prompts, n samples per prompt, M max_new_tokens, B sequence slots, Z page size,
R decode steps per round.

Design (Levanter's): the host admits queued (prompt, sample) pairs into idle slots, then runs one
jitted round of up to R decode steps (`rounds.run_round`) and reads back only small per-slot
arrays (live, lengths, page counts); ended slots are retired (their records fetched) and refilled
before the next round. Pages are freed on device the step a sequence ends; the host allocates
prompt pages and clones between rounds from the device's reference counts. A larger R amortizes
the host round trip; a smaller one refills slots sooner (a slot idles at most R - 1 steps).

Prefix sharing: a prompt is prefilled once per model when its first sample is admitted; its pages
then carry one "holder" reference. Each sample but the last references the full prompt pages
and gets its own copy of the partial last page (clone-on-fork); the last sample inherits the
holder's references and the original partial page. A prompt whose length is a multiple of Z has
no partial page: all its samples share every prompt page.

Page shortage: a sequence that needs a page when none is free waits without emitting, while
the youngest live sequence is preempted (freed, re-queued at the front, restarted from its
prompt with the same tokens; see `rounds.py`). It ends with `cache_full` only when it stalls
with nothing else running (pages held by prompts awaiting their other samples count as taken).
Admission keeps one free page of headroom.

Samples equal the static decoder's (`sampling.generate`) token for token: the same step
functions and per-sequence keys, with the same prompt and generated tokens at the same RoPE
positions (numerical noise aside, as between meshes). Differences: `num_steps` counts decode
steps over all rounds, and `cache_full` means "exceeds the page budget", not "exceeds S".
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np

from dlogp_jax.engine import adapter, rounds
from dlogp_jax.engine.host import Host


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Memory and scheduling settings of the paged engine.

    Attributes:
      num_pages: KV pages per model pool: the cache budget (each model holds num_pages ·
        page_size tokens at once).
      page_size: tokens per page (Z).
      max_seqs: sequence slots decoded together (B).
      round_steps: decode steps per jitted round (R).
      prefill_chunk: prompt tokens prefilled per call (C); a longer prompt is prefilled in chunks
        with a decode round of the running sequences after each, so it never stalls them.
    """

    num_pages: int = 256
    page_size: int = 16
    max_seqs: int = 8
    round_steps: int = 16
    prefill_chunk: int = 512

    def __post_init__(self):
        for name in ("num_pages", "page_size", "max_seqs", "round_steps", "prefill_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"EngineConfig.{name}={getattr(self, name)}: must be >= 1.")

    def kv_bytes(self, configs, dtype_bytes: int = 4) -> int:
        """Bytes of every model's pool (k and v)."""
        per_token = sum(2 * c.num_layers * c.num_kv_heads * c.head_dim for c in configs)
        return self.num_pages * self.page_size * per_token * dtype_bytes


_STATIC = ("configs", "spec")
_init = jax.jit(
    rounds.init_state,
    static_argnames=(*_STATIC, "num_pages", "page_size", "num_slots", "table_width"),
)
_prefill = jax.jit(rounds.prefill, static_argnames=("configs",), donate_argnames=("state",))
_admit = jax.jit(rounds.admit, static_argnames=("pad_id",), donate_argnames=("state",))
_drop = jax.jit(rounds.drop_refs, donate_argnames=("state",))
_round = jax.jit(
    rounds.run_round,
    static_argnames=(*_STATIC, "round_steps", "width"),
    donate_argnames=("state",),
)


@dataclasses.dataclass(frozen=True)
class EngineStats:
    """What one engine run did (host counts).

    Attributes:
      rounds: jitted rounds run. decode_steps: decode steps over all rounds.
      prefilled_prompts: prompts prefilled (once each per model: n samples share one prefill).
      peak_live_seqs: most sequences decoding together.
      peak_pages_used: most pages referenced at once (of `EngineConfig.num_pages`).
      preempted: sequences restarted because they could not get a page while others ran.
      prefill_rounds: decode rounds run between the chunks of a prompt's prefill.
    """

    rounds: int
    decode_steps: int
    prefilled_prompts: int
    peak_live_seqs: int
    peak_pages_used: int
    preempted: int
    prefill_rounds: int = 0


def generate_paged(params_base, prompt_tokens, prompt_mask, prompt_index, **kw):
    """`run_paged` without the stats: `sampling.generate`'s arguments and output, plus `engine`."""
    return run_paged(params_base, prompt_tokens, prompt_mask, prompt_index, **kw)[0]


def run_paged(
    params_base,
    prompt_tokens,
    prompt_mask,
    prompt_index,
    *,
    spec: adapter.DecodeSpec,
    config_base,
    params_rl=None,
    config_rl=None,
    seed: int = 0,
    engine: EngineConfig = EngineConfig(),
    on_round=None,
) -> tuple[adapter.DecodeOutput, EngineStats]:
    """Samples `spec.n` continuations of each prompt on the paged engine (`sampling.generate`'s
    arguments, plus the engine settings).

    Args:
      params_base, config_base, params_rl, config_rl, spec, seed: as `sampling.generate`.
      prompt_tokens: [P, Tp] int prompts, left-padded. prompt_mask: [P, Tp] bool, False at pads.
      prompt_index: [P] int global prompt index (with `seed`, it names the random stream).
      engine: page budget, page size, slots and round length.
      on_round: optional callback(state: EngineState) after each round (tests, monitoring).
    Returns:
      (DecodeOutput with [P·n, M] records, row i·n + j = prompt i, sample j, as the static
      decoder, `num_steps` counting decode steps over all rounds; EngineStats).
    Raises:
      ValueError: the static decoder's argument errors, an empty prompt, or a budget that cannot
        hold the longest prompt.
    """
    adapter.check_models(spec, config_base, params_rl, config_rl)
    tokens, mask = np.asarray(prompt_tokens), np.asarray(prompt_mask, bool)
    prompts = [t[m].astype(np.int32).tolist() for t, m in zip(tokens, mask)]
    if not all(prompts):
        raise ValueError("every prompt needs at least one real token.")
    z = engine.page_size
    longest = max(len(t) for t in prompts)
    need = math.ceil(longest / z) + 2  # the prompt, one fork's clone, one page to grow into
    if need > engine.num_pages:
        raise ValueError(
            f"num_pages={engine.num_pages} cannot hold the longest prompt ({longest} tokens = "
            f"{math.ceil(longest / z)} pages of {z}) plus 2 pages: raise num_pages (kv_pages)."
        )
    params = (params_base,) if params_rl is None else (params_base, params_rl)
    configs = (config_base,) if params_rl is None else (config_base, config_rl)
    knobs, static_spec = adapter.knobs_of(spec)
    table_width = math.ceil((longest + spec.max_new_tokens) / z)
    host = Host(prompts, spec, engine, table_width)
    state = _init(
        params,
        np.int32(seed),
        configs=configs,
        spec=static_spec,
        num_pages=engine.num_pages,
        page_size=z,
        num_slots=engine.max_seqs,
        table_width=table_width,
    )
    index = np.asarray(prompt_index, np.int32)
    kw_round = dict(configs=configs, spec=static_spec, on_round=on_round)
    prefill_rounds = 0
    while True:
        new, starts = host.admit()
        if new:
            host.prefilled += len(new)
            state, between = _prefill_chunked(params, state, host, new, starts, knobs, **kw_round)
            prefill_rounds += between
        if starts:
            state = _admit(state, host.admission(starts, index), pad_id=spec.pad_id)
        running = sum(s is not None for s in host.slot_seq)
        if not running and host.queue and len(host.holders) > 1:
            state = _drop(state, host.drop_holders())
            host.read_pages(state=state)
            continue
        if not running:
            break
        host.peak_live = max(host.peak_live, running)
        state = _decode_round(params, state, host, knobs, **kw_round)
    if host.queue:
        raise RuntimeError("engine stopped with queued sequences (page budget bookkeeping).")
    p_idx = np.repeat(index, spec.n)
    j_idx = np.tile(np.arange(spec.n), len(prompts))
    out = adapter.output(host.records, host.length, host.reason, p_idx, j_idx, host.num_steps)
    stats = EngineStats(
        rounds=host.rounds,
        decode_steps=host.num_steps,
        prefilled_prompts=host.prefilled,
        peak_live_seqs=host.peak_live,
        peak_pages_used=host.peak_pages,
        preempted=host.preempted,
        prefill_rounds=prefill_rounds,
    )
    return out, stats


def _decode_round(params, state, host: Host, knobs, *, configs, spec, on_round):
    """One jitted round of decode steps, then the host's sync (retire ended slots)."""
    engine = host.engine
    state, steps = _round(
        params,
        state,
        knobs,
        configs=configs,
        spec=spec,
        round_steps=engine.round_steps,
        width=host.width(),
    )
    host.sync(state, steps)
    if on_round is not None:
        on_round(state)
    return state


def _prefill_chunked(params, state, host: Host, new, starts, knobs, **kw_round):
    """Prefills the `new` prompts `prefill_chunk` tokens at a time; between chunks, the running
    sequences decode one round (the admitted `starts` wait for their whole prompt).

    While they wait, the starts' slots are hidden from the host (not live on device yet, they
    must not be retired) and their clone pages carry a reservation reference (so a decode round
    cannot allocate them); both are undone before the caller's `_admit`.

    Returns:
      (state, decode rounds run between chunks).
    """
    tokens, lengths, table, hold = host.prefill_args(new)
    chunk, total = host.engine.prefill_chunk, tokens.shape[1]
    run = lambda state, part, offset: _prefill(
        params, state, part, lengths, table, hold, np.int32(offset), configs=kw_round["configs"]
    )
    if total <= chunk:
        return run(state, tokens, 0), 0
    tokens = np.pad(tokens, ((0, 0), (0, -total % chunk)))  # whole chunks: one compiled shape
    waiting = {s.slot: (host.slot_seq[s.slot], host.seq_len[s.slot]) for s in starts}
    p = host.engine.num_pages
    clones = np.full(host.engine.max_seqs, p, np.int32)  # A <= B starts per pass
    clones[: len(starts)] = [s.clone[1] if s.clone else p for s in starts]
    state = _drop(state, clones, 1)
    between = 0
    for offset in range(0, tokens.shape[1], chunk):
        state = run(state, tokens[:, offset : offset + chunk], offset)
        if offset + chunk >= tokens.shape[1]:
            break
        for slot in waiting:
            host.slot_seq[slot] = None
        if any(s is not None for s in host.slot_seq):
            state = _decode_round(params, state, host, knobs, **kw_round)
            between += 1
        for slot, (seq, length) in waiting.items():
            host.slot_seq[slot], host.seq_len[slot] = seq, length
    return _drop(state, clones, -1), between
