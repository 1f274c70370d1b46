"""Host-side bookkeeping of one engine run: the queue, prompt holders, slots and outputs.

Legend: P prompts, n samples per prompt, M max_new_tokens, B sequence slots, Z page size,
W page-table columns.

Everything here is NumPy and Python between jitted calls: which (prompt, sample) pairs start in
which slots, which pages their prompts and clones take (from the device's reference counts read
after each round), and the finished sequences' records copied out of the device state.
"""

from __future__ import annotations

import collections
import dataclasses
import math

import jax
import numpy as np

from dlogp_jax.engine import adapter, rounds
from dlogp_jax.engine.rounds import Admission, EngineState


def pow2(x: int) -> int:
    """The smallest power of 2 >= x (1 for x <= 1): shape buckets."""
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


class Host:
    """Host-side bookkeeping of one `run_paged` call (engine: its `EngineConfig`)."""

    def __init__(self, prompts, spec, engine, table_width: int):
        self.prompts, self.spec, self.engine, self.table_width = prompts, spec, engine, table_width
        self.queue = collections.deque((p, j) for p in range(len(prompts)) for j in range(spec.n))
        self.holders: dict[int, _Holder] = {}
        # samples of each prompt still queued: the holder goes to the last one admitted
        self.remaining = {p: spec.n for p in range(len(prompts))}
        self.hold_rows = rounds.hold_capacity(engine.max_seqs)
        self.free_hold_rows = list(range(self.hold_rows))
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
        self.preempted = 0
        self.tickets = 0  # admissions so far: each start's ticket (its age)

    def admit(self) -> tuple[list[_Holder], list[_Start]]:
        """Pops queued pairs into idle slots while pages last: (prompts to prefill, starts)."""
        z = self.engine.page_size
        free = collections.deque(np.flatnonzero(self.refcount == 0).tolist())
        idle = [b for b, s in enumerate(self.slot_seq) if s is None]
        busy = len(idle) < self.engine.max_seqs
        new, starts, released = [], [], []
        while self.queue and idle:
            p, j = self.queue[0]
            tokens = self.prompts[p]
            holder = self.holders.get(p)
            last, partial = self.remaining[p] == 1, len(tokens) % z != 0
            need = (math.ceil(len(tokens) / z) if holder is None else 0) + (partial and not last)
            # Keep one page for growth, else wait for running sequences to free some. With
            # nothing running (and no other holders: `drop_holders`) the budget check of
            # `run_paged` guarantees the fit.
            if need + 1 > len(free) and (busy or starts):
                break
            if holder is None and not self.free_hold_rows:
                break
            self.queue.popleft()
            self.remaining[p] -= 1
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

    def drop_holders(self) -> np.ndarray:
        """Forgets every prompt holder but the queue head's (their prompts are prefilled again
        when admitted): nothing runs, so only holders can keep the head from fitting.

        Returns:
          [I] int32 pages losing one reference (padded with P to a power of 2).
        """
        head = self.queue[0][0]
        ids = []
        for p in [p for p in self.holders if p != head]:
            holder = self.holders.pop(p)
            ids += holder.pages
            self.free_hold_rows.append(holder.hold_row)
        out = np.full(pow2(max(len(ids), 1)), self.engine.num_pages, np.int32)
        out[: len(ids)] = ids
        return out

    def prefill_args(self, new: list[_Holder]):
        """(tokens [Q, Tq], lengths [Q], table [Q, Tq / Z], hold_rows [Q]).

        Q is always B (a pass admits at most B prompts) and Tq a power-of-2 number of pages: few
        shapes, so few compilations; padding rows cost compute only in the prefill.
        """
        z, q = self.engine.page_size, self.engine.max_seqs
        width = pow2(max(len(h.pages) for h in new))
        tokens = np.zeros((q, width * z), np.int32)
        lengths = np.zeros(q, np.int32)
        table = np.full((q, width), -1, np.int32)
        hold = np.full(q, self.hold_rows, np.int32)  # out of range: dropped
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
            ticket=ints(),
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
            a.ticket[i] = self.tickets
            self.tickets += 1
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
        return min(pow2(cols), self.table_width)

    def sync(self, state: EngineState, steps) -> None:
        """Reads the round's small results back and retires the slots that ended."""
        view = jax.device_get(_host_view(state, steps))
        live, length, reason = view["live"], view["step"], view["finish_reason"]
        self.peak_pages = int(view["peak_pages"])
        self.read_pages(view)
        self.num_steps += int(view["steps"])
        self.rounds += 1
        ended = [b for b, s in enumerate(self.slot_seq) if s is not None and not live[b]]
        restart = [b for b in ended if reason[b] == rounds.PREEMPTED]
        # Preempted sequences go back to the front of the queue (in order) and start over.
        for b in reversed(restart):
            p, j = self.slot_seq[b]
            self.queue.appendleft((p, j))
            self.remaining[p] += 1
            self.slot_seq[b] = None
        self.preempted += len(restart)
        ended = [b for b in ended if b not in restart]
        if ended:
            rows = np.full(pow2(len(ended)), self.engine.max_seqs, np.int32)  # few shapes
            rows[: len(ended)] = ended
            got = jax.device_get(_take_records(state, rows))
            for i, b in enumerate(ended):
                p, j = self.slot_seq[b]
                row = p * self.spec.n + j
                for k, v in got.items():
                    self.records[k][row] = v[i]
                self.length[row], self.reason[row] = length[b], reason[b]
                self.slot_seq[b] = None

    def read_pages(self, view: dict | None = None, state: EngineState | None = None) -> None:
        """Takes the device's page reference counts and lengths (from `view`, or read from
        `state`)."""
        if view is None:
            view = jax.device_get(_host_view(state, np.int32(0)))
        if (view["refcount"] < 0).any():
            raise RuntimeError("engine page accounting: a page was released more than once.")
        self.refcount, self.seq_len = np.array(view["refcount"]), np.array(view["seq_len"])


_host_view = jax.jit(rounds.host_view)
_take_records = jax.jit(rounds.take_records)
