"""The engine's device programs: state init, prefill, admission (fork) and a round of decode steps.

Legend: B sequence slots, M max_new_tokens, V vocabulary rows, P pages, Z page size, W page-table
columns, Q prompts prefilled together, Tq their (bucketed, right-padded) length, A admissions.

Each program is jitted by `engine.py` with the configs and spec static; the host loop calls them
between rounds. Inside a round (`run_round`, one `lax.while_loop` of up to R steps) each step:
asks the step function for every live slot's token, records it at the slot's own column, ends
slots on a stop token or at M tokens, gives a fresh page to slots whose next token starts one,
feeds the tokens to every model through the shared page table, and returns the pages of slots
that ended to the free list at once, so the next step can reuse them.

A slot that cannot get a page never touches another slot's pages: it skips the step (its
token is drawn later with the same key), and the youngest live sequence (latest admitted) is
preempted to free pages (`PREEMPTED`: pages released, the host re-queues it; it restarts from
its prompt and, its random stream being a function of (seed, prompt, sample, step), reproduces
the same tokens: vLLM's recompute preemption). A slot that stalls alone, or whose page-table row
is full, ends with `cache_full` before emitting the token it could not store (as the static
decoder, which emits only tokens its cache can hold).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax.engine import adapter, pages
from dlogp_jax.engine.attention import PagedBatch, kernel_for_platform, make_attend
from dlogp_jax.engine.pages import PageState, Pool
from dlogp_jax.model import transformer
from dlogp_jax.sharding import constrain, replicated

PREEMPTED = 4  # engine-internal finish reason: re-queued by the host, never in an output


@flax.struct.dataclass
class EngineState:
    """Everything on device between host calls."""

    pages: PageState
    pools: tuple  # one pages.Pool per model (base first)
    logits: tuple  # per model, [B, V] fp32 next-token logits of each slot
    held_logits: tuple  # per model, [2B + 1, V]: logits after prefilled prompts awaiting forks
    base_key: jax.Array  # [] PRNG key of the seed
    prompt_index: jax.Array  # [B] int32 caller's prompt index of each slot
    sample_index: jax.Array  # [B] int32
    step: jax.Array  # [B] int32 tokens emitted by the slot's sequence (= its length)
    live: jax.Array  # [B] bool: the slot's sequence is still generating
    ticket: jax.Array  # [B] int32 admission order (larger = younger), the preemption priority
    finish_reason: jax.Array  # [B] int32 adapter.FINISH_* once ended, 0 while live
    records: dict  # StepOutput field (adapter.RECORDS) -> [B, M]
    peak_pages: jax.Array  # [] int32 most pages referenced at once during decoding


def hold_capacity(num_slots: int) -> int:
    """Rows of `held_logits`: room for every prompt admitted in one pass plus those waiting."""
    return 2 * num_slots + 1


def drop_refs(state: EngineState, ids, delta=-1) -> EngineState:
    """`delta` (default -1) references on pages `ids` [I] (P: padding); +1 reserves pages."""
    refcount = pages.add_refs(state.pages.refcount, ids, delta)
    return state.replace(pages=state.pages.replace(refcount=refcount))


def _rows(x):
    return constrain(x, ("act_batch",) + (None,) * (x.ndim - 1))


def init_state(params, seed, *, configs, spec, num_pages, page_size, num_slots, table_width):
    """An empty engine: all pages free, all slots idle (not live)."""
    b = num_slots
    vocab = lambda c, rows: _rows(jnp.zeros((rows, c.vocab_size), jnp.float32))
    return EngineState(
        pages=pages.init_pages(num_pages, b, table_width),
        pools=tuple(pages.init_pool(c, num_pages, page_size) for c in configs),
        logits=tuple(vocab(c, b) for c in configs),
        held_logits=tuple(vocab(c, hold_capacity(b)) for c in configs),
        base_key=jax.random.key(seed),
        prompt_index=_rows(jnp.zeros((b,), jnp.int32)),
        sample_index=_rows(jnp.zeros((b,), jnp.int32)),
        step=_rows(jnp.zeros((b,), jnp.int32)),
        live=_rows(jnp.zeros((b,), bool)),
        ticket=_rows(jnp.zeros((b,), jnp.int32)),
        finish_reason=_rows(jnp.zeros((b,), jnp.int32)),
        records={k: _rows(v) for k, v in adapter.empty_records(spec, b).items()},
        peak_pages=jnp.zeros((), jnp.int32),
    )


def forward(params, configs, pools, tokens, batch: PagedBatch, last):
    """Feeds tokens [B, T] (at cache indices `batch.query_index`) to every model.

    Returns:
      (per model [B, V] fp32 logits after token `last[b]` of each row, the updated pools).
    """
    attend = make_attend(batch, kernel_for_platform())  # Pallas decode kernel on GPU/TPU
    logits, new_pools = [], []
    for p, config, pool in zip(params, configs, pools):
        h, pool = transformer.hidden_states_with_attention(
            p, tokens, batch.query_index, pool, attend, config=config
        )
        h_last = jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0]
        logits.append(_rows(transformer.logits_from_hidden(p, h_last, config)))
        new_pools.append(Pool(*(constrain(x, pages.POOL_AXES) for x in (pool.k, pool.v))))
    return tuple(logits), tuple(new_pools)


def prefill(params, state: EngineState, tokens, lengths, table, hold_rows, offset, *, configs):
    """Prefills one chunk of Q prompts (tokens offset .. offset + C - 1) once per model.

    A long prompt is prefilled in chunks with decode rounds in between (`loop.run_paged`), so it
    never stalls the running sequences for its whole length. Each chunk's queries attend to the
    prompt's earlier chunks through the page table, exactly as one whole-prompt prefill would.
    The first chunk (offset 0) adds the prompt holder's reference to every prompt page; the
    chunk holding a prompt's last token stores its next-token logits in `held_logits`.

    Args:
      tokens: [Q, C] int32 chunk of the right-padded prompts. lengths: [Q] int32 (0: padding).
      table: [Q, Wp] int32 pages of each whole prompt, -1 past its last page.
      hold_rows: [Q] int32 row of `held_logits` receiving each prompt's next-token logits
        (2B + 1, out of range, for padding rows).
      offset: [] int32 prompt index of the chunk's first token (traced: one compile per C).
    """
    z = state.pools[0].page_size
    p = state.pages.num_pages
    c = tokens.shape[1]
    index = offset + jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), tokens.shape)
    page = jnp.take_along_axis(table, jnp.minimum(index // z, table.shape[1] - 1), axis=1)
    real = (index < lengths[:, None]) & (page >= 0)
    batch = PagedBatch(
        table=table,
        query_index=index,
        write_page=jnp.where(real, page, p),
        write_offset=index % z,
    )
    last = lengths - 1 - offset
    logits, pools = forward(params, configs, state.pools, tokens, batch, jnp.clip(last, 0, c - 1))
    done = (lengths > 0) & (last >= 0) & (last < c)
    rows = jnp.where(done, hold_rows, state.held_logits[0].shape[0])
    held = tuple(h.at[rows].set(x, mode="drop") for h, x in zip(state.held_logits, logits))
    ids = jnp.where((table >= 0) & (offset == 0), table, p).ravel()
    refcount = pages.add_refs(state.pages.refcount, ids)
    return state.replace(
        pools=pools, held_logits=held, pages=state.pages.replace(refcount=refcount)
    )


@flax.struct.dataclass
class Admission:
    """A sequences to start in idle slots from held prompts (a fork each; pads use slot B).

    Attributes:
      slots: [A] int32 slot of each new sequence (B, out of range, for padding rows).
      hold_rows: [A] int32 its prompt's `held_logits` row.
      seq_len: [A] int32 prompt lengths.
      table: [A, W] int32 page-table rows: the shared prompt pages, then the sequence's own copy
        of the partial last page, -1 after.
      prompt_index, sample_index: [A] int32.
      ticket: [A] int32 admission order (increasing over the run).
      ref_ids: [I] int32 pages gaining one reference (P: padding). A fork references the shared
        pages and its clone; the last sample of a prompt inherits the holder's references.
      clone_src, clone_dst: [A] int32 partial prompt pages copied for forks (dst P: no copy).
    """

    slots: jax.Array
    hold_rows: jax.Array
    seq_len: jax.Array
    table: jax.Array
    prompt_index: jax.Array
    sample_index: jax.Array
    ticket: jax.Array
    ref_ids: jax.Array
    clone_src: jax.Array
    clone_dst: jax.Array


def admit(state: EngineState, a: Admission, *, pad_id: int) -> EngineState:
    """Starts the sequences of `a`: page-table rows, references, clones, logits, fresh records."""
    slots = a.slots
    put = lambda x, v: x.at[slots].set(v, mode="drop")
    pools = tuple(pages.copy_pages(pool, a.clone_src, a.clone_dst) for pool in state.pools)
    pg = state.pages
    new_pages = pg.replace(
        refcount=pages.add_refs(pg.refcount, a.ref_ids),
        table=put(pg.table, a.table),
        seq_len=put(pg.seq_len, a.seq_len),
    )
    rows = jnp.clip(a.hold_rows, 0, state.held_logits[0].shape[0] - 1)
    fresh = {k: adapter.record_fill(k, pad_id) for k in state.records}
    return state.replace(
        pages=new_pages,
        pools=pools,
        logits=tuple(put(x, h[rows]) for x, h in zip(state.logits, state.held_logits)),
        prompt_index=put(state.prompt_index, a.prompt_index),
        sample_index=put(state.sample_index, a.sample_index),
        step=put(state.step, 0),
        live=put(state.live, True),
        ticket=put(state.ticket, a.ticket),
        finish_reason=put(state.finish_reason, 0),
        # Fill values cast to each record's dtype: an int into bool `selected` warns (later: fails).
        records={k: put(v, jnp.asarray(fresh[k], v.dtype)) for k, v in state.records.items()},
    )


def run_round(params, state: EngineState, knobs, *, configs, spec, round_steps, width):
    """Up to `round_steps` decode steps of every live slot (fewer if all slots end).

    Args:
      width: page-table columns attention reads (W·Z must exceed every live slot's length plus
        round_steps; the host buckets it so cost follows the live length).
    Returns:
      (state, [] int32 steps run).
    """
    step_fn = adapter.make_step_fn(spec, knobs)
    stop = jnp.asarray(spec.stop_ids or (-1,), jnp.int32)
    z = state.pools[0].page_size
    num_pages = state.pages.num_pages
    b, table_width = state.pages.table.shape
    rows = jnp.arange(b)

    def body(carry):
        i, s = carry
        live, pg = s.live, s.pages
        # Pages first: this step's token is fed at cache index seq_len, so a slot whose token
        # starts a page (and is not its M-th) needs one before it may emit. Oldest slots first.
        col = pg.seq_len // z
        need = live & (pg.seq_len % z == 0) & (s.step + 1 < spec.max_new_tokens)
        too_long = need & (col >= table_width)
        page, refcount = pages.allocate(pg.refcount, need & ~too_long, priority=s.ticket)
        granted = page < num_pages
        stalled = need & ~granted & ~too_long
        # A stalled slot waits; to free pages the youngest live sequence is preempted (one per
        # step). The oldest is never preempted, so it always progresses; alone, it is cache_full.
        alone = jnp.sum(live) == 1
        youngest = rows == jnp.argmax(jnp.where(live, s.ticket, -1))
        preempted = jnp.any(stalled) & youngest & live & ~alone
        cache_full = too_long | (stalled & alone)
        active = live & ~stalled & ~cache_full & ~preempted  # these emit a token this step

        keys = adapter.sequence_keys(s.base_key, s.prompt_index, s.sample_index, s.step)
        out = step_fn(s.logits[0], s.logits[1] if len(s.logits) > 1 else None, keys)
        records = adapter.write_records(s.records, out, active, s.step)
        step = s.step + active.astype(jnp.int32)
        stopped = active & jnp.any(out.token[:, None] == stop[None, :], axis=-1)
        at_length = active & ~stopped & (step >= spec.max_new_tokens)
        more = active & ~stopped & ~at_length
        col = jnp.minimum(col, table_width - 1)
        table = pg.table.at[rows, col].set(jnp.where(granted, page, pg.table[rows, col]))
        batch = PagedBatch(
            table=table[:, :width],
            query_index=pg.seq_len[:, None],
            write_page=jnp.where(more, table[rows, col], num_pages)[:, None],
            write_offset=(pg.seq_len % z)[:, None],
        )
        logits, pools = forward(params, configs, s.pools, out.token[:, None], batch, 0 * rows)
        logits = tuple(jnp.where(more[:, None], x, old) for x, old in zip(logits, s.logits))
        ended = stopped | at_length | cache_full | preempted
        reason = s.finish_reason
        for flag, code in (
            (stopped, adapter.FINISH_STOP),
            (at_length, adapter.FINISH_LENGTH),
            (cache_full, adapter.FINISH_CACHE),
            (preempted, PREEMPTED),
        ):
            reason = jnp.where(flag, code, reason)
        grown = PageState(refcount=refcount, table=table, seq_len=pg.seq_len + more)
        new = s.replace(
            pages=pages.release_rows(grown, ended),
            pools=pools,
            logits=logits,
            step=step,
            live=live & ~ended,
            finish_reason=reason,
            records=records,
            peak_pages=jnp.maximum(s.peak_pages, num_pages - pages.num_free(grown)),
        )
        return i + 1, new

    cond = lambda c: (c[0] < round_steps) & jnp.any(c[1].live)
    steps, state = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), state))
    return state, steps


def host_view(state: EngineState, steps) -> dict:
    """The small per-slot arrays the host reads after a round, replicated so that every process
    reads them whole: live, step (lengths), finish_reason, seq_len [B]; refcount [P]; steps and
    peak_pages []."""
    return replicated(
        dict(
            live=state.live,
            step=state.step,
            finish_reason=state.finish_reason,
            seq_len=state.pages.seq_len,
            refcount=state.pages.refcount,
            steps=steps,
            peak_pages=state.peak_pages,
        )
    )


def take_records(state: EngineState, rows) -> dict:
    """The records of slots `rows` [E] (indices >= B: padding, clipped), replicated: the host
    pads E to a power of 2, so the program compiles for a few sizes only."""
    return replicated({k: jnp.take(v, rows, axis=0, mode="clip") for k, v in state.records.items()})
