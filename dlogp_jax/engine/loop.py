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

Samples equal the static decoder's (`sampling.generate`) token for token: the same step
functions and per-sequence keys, with the same prompt and generated tokens at the same RoPE
positions (numerical noise aside, as between meshes). Differences: `num_steps` counts decode
steps over all rounds; a sequence that needs a page when none is free ends with `cache_full`
after the token it could not store (that token is kept: it was drawn from valid logits).
"""

from __future__ import annotations

import collections
import dataclasses
import math

import jax
import numpy as np

from dlogp_jax.engine import adapter, rounds
from dlogp_jax.engine.rounds import Admission, EngineState


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Memory and scheduling settings of the paged engine.

    Attributes:
      num_pages: KV pages per model pool: the cache budget (each model holds num_pages ·
        page_size tokens at once).
      page_size: tokens per page (Z).
      max_seqs: sequence slots decoded together (B).
      round_steps: decode steps per jitted round (R).
    """

    num_pages: int = 256
    page_size: int = 16
    max_seqs: int = 8
    round_steps: int = 16

    def __post_init__(self):
        for name in ("num_pages", "page_size", "max_seqs", "round_steps"):
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
    """

    rounds: int
    decode_steps: int
    prefilled_prompts: int
    peak_live_seqs: int
    peak_pages_used: int


def _pow2(x: int) -> int:
    return 1 << max(x - 1, 0).bit_length()


@dataclasses.dataclass
class _Holder:
    """A prefilled prompt whose samples are not all admitted yet."""

    tokens: list[int]
    pages: list[int]
    hold_row: int


@dataclasses.dataclass
class _Start:
    """One admission: a (prompt, sample) pair into a slot."""

    slot: int
    holder: _Holder
    prompt: int
    sample: int
    row: list[int]  # its page-table row
    refs: list[int]  # pages gaining a reference
    clone: tuple[int, int] | None  # (src, dst) copy of the partial prompt page


class _Host:
    """Host-side bookkeeping of one `generate_paged` call: queue, holders, slots, outputs."""

    def __init__(self, prompts, spec, engine: EngineConfig, table_width: int):
        self.prompts, self.spec, self.engine, self.table_width = prompts, spec, engine, table_width
        self.queue = collections.deque((p, j) for p in range(len(prompts)) for j in range(spec.n))
        self.holders: dict[int, _Holder] = {}
        self.free_hold_rows = list(range(engine.max_seqs + 1))
        self.slot_seq: list[tuple[int, int] | None] = [None] * engine.max_seqs
        self.seq_len = np.zeros(engine.max_seqs, np.int64)
        self.refcount = np.zeros(engine.num_pages, np.int64)
        rows = len(prompts) * spec.n
        empty = adapter.empty_records(spec, 1)
        # [P·n, M] each, filled from retired slots (row p·n + j)
        self.records = {k: np.repeat(np.asarray(v), rows, axis=0) for k, v in empty.items()}
        self.length = np.zeros(rows, np.int32)
        self.reason = np.zeros(rows, np.int32)
        self.num_steps = 0
        self.rounds = 0
        self.prefilled = 0
        self.peak_live = 0
        self.peak_pages = 0

    def admit(self) -> tuple[list[_Holder], list[_Start]]:
        """Pops queued pairs into idle slots while pages last: (prompts to prefill, starts)."""
        z, n = self.engine.page_size, self.spec.n
        free = collections.deque(np.flatnonzero(self.refcount == 0).tolist())
        idle = [b for b, s in enumerate(self.slot_seq) if s is None]
        busy = len(idle) < self.engine.max_seqs
        new, starts, released = [], [], []
        while self.queue and idle:
            p, j = self.queue[0]
            tokens = self.prompts[p]
            holder = self.holders.get(p)
            last, partial = j == n - 1, len(tokens) % z != 0
            need = (math.ceil(len(tokens) / z) if holder is None else 0) + (partial and not last)
            # Keep one page for growth, else wait for running sequences to free some. With
            # nothing running the budget check of `generate_paged` guarantees the fit.
            if need + 1 > len(free) and (busy or starts):
                break
            self.queue.popleft()
            if holder is None:
                pages = [free.popleft() for _ in range(math.ceil(len(tokens) / z))]
                holder = self.holders[p] = _Holder(tokens, pages, self.free_hold_rows.pop())
                new.append(holder)
            full = holder.pages[: len(tokens) // z]
            if last:  # inherits the holder's references, partial page included
                start = _Start(0, holder, p, j, list(holder.pages), [], None)
                released.append(self.holders.pop(p).hold_row)
            elif not partial:
                start = _Start(0, holder, p, j, full, full, None)
            else:
                clone = free.popleft()
                own = full + [clone]
                start = _Start(0, holder, p, j, own, own, (holder.pages[-1], clone))
            start.slot = idle.pop(0)
            self.slot_seq[start.slot] = (p, j)
            self.seq_len[start.slot] = len(tokens)
            starts.append(start)
        self.free_hold_rows.extend(released)  # reusable once this pass's prefill has run
        return new, starts

    def prefill_args(self, new: list[_Holder]):
        """(tokens [Q, Tq], lengths [Q], table [Q, Tq / Z], hold_rows [Q]).

        Q is always B (a pass admits at most B prompts) and Tq a power-of-2 number of pages: few
        shapes, so few compilations; padding rows cost compute only in the prefill.
        """
        z, q = self.engine.page_size, self.engine.max_seqs
        width = _pow2(max(len(h.pages) for h in new))
        tokens = np.zeros((q, width * z), np.int32)
        lengths = np.zeros(q, np.int32)
        table = np.full((q, width), -1, np.int32)
        hold = np.full(q, self.engine.max_seqs + 1, np.int32)
        for i, h in enumerate(new):
            tokens[i, : len(h.tokens)] = h.tokens
            lengths[i], hold[i] = len(h.tokens), h.hold_row
            table[i, : len(h.pages)] = h.pages
        return tokens, lengths, table, hold

    def admission(self, starts: list[_Start], prompt_index) -> Admission:
        """The starts as fixed-shape arrays (A = B rows; padding targets slot B and page P)."""
        b, p_total, w = self.engine.max_seqs, self.engine.num_pages, self.table_width
        ints = lambda fill=0: np.full(b, fill, np.int32)
        a = Admission(
            slots=ints(b),
            hold_rows=ints(),
            seq_len=ints(),
            table=np.full((b, w), -1, np.int32),
            prompt_index=ints(),
            sample_index=ints(),
            ref_ids=np.full(b * w, p_total, np.int32),
            clone_src=ints(),
            clone_dst=ints(p_total),
        )
        k = 0
        for i, s in enumerate(starts):
            a.slots[i], a.hold_rows[i], a.seq_len[i] = (
                s.slot,
                s.holder.hold_row,
                len(s.holder.tokens),
            )
            a.prompt_index[i], a.sample_index[i] = prompt_index[s.prompt], s.sample
            a.table[i, : len(s.row)] = s.row
            a.ref_ids[k : k + len(s.refs)] = s.refs
            k += len(s.refs)
            if s.clone is not None:
                a.clone_src[i], a.clone_dst[i] = s.clone
        return a

    def width(self) -> int:
        """Page-table columns the next round reads: live length + R, bucketed to a power of 2."""
        live = [self.seq_len[b] for b, s in enumerate(self.slot_seq) if s is not None]
        cols = math.ceil((max(live) + self.engine.round_steps) / self.engine.page_size)
        return min(_pow2(cols), self.table_width)

    def sync(self, state: EngineState, steps) -> None:
        """Reads the round's small results back and retires the slots that ended."""
        small = (state.live, state.step, state.finish_reason, state.pages.seq_len)
        small = (*small, state.pages.refcount, steps, state.peak_pages)
        live, length, reason, seq_len, refcount, steps, peak = jax.device_get(small)
        self.peak_pages = int(peak)
        if (refcount < 0).any():
            raise RuntimeError("engine page accounting: a page was released more than once.")
        self.refcount, self.seq_len = np.array(refcount), np.array(seq_len)
        self.num_steps += int(steps)
        self.rounds += 1
        ended = [b for b, s in enumerate(self.slot_seq) if s is not None and not live[b]]
        if ended:
            got = jax.device_get({k: v[np.asarray(ended)] for k, v in state.records.items()})
            for i, b in enumerate(ended):
                p, j = self.slot_seq[b]
                row = p * self.spec.n + j
                for k, v in got.items():
                    self.records[k][row] = v[i]
                self.length[row], self.reason[row] = length[b], reason[b]
                self.slot_seq[b] = None


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
    host = _Host(prompts, spec, engine, table_width)
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
    while True:
        new, starts = host.admit()
        if new:
            host.prefilled += len(new)
            state = _prefill(params, state, *host.prefill_args(new), configs=configs)
        if starts:
            state = _admit(state, host.admission(starts, index), pad_id=spec.pad_id)
        running = sum(s is not None for s in host.slot_seq)
        if not running:
            break
        host.peak_live = max(host.peak_live, running)
        state, steps = _round(
            params,
            state,
            knobs,
            configs=configs,
            spec=static_spec,
            round_steps=engine.round_steps,
            width=host.width(),
        )
        host.sync(state, steps)
        if on_round is not None:
            on_round(state)
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
    )
    return out, stats
