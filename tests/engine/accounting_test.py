"""Page accounting of whole engine runs: every page free at the end, shared prompt pages counted
once per holder, and a page shortage that ends the right sequences with `cache_full`."""

import jax
import numpy as np

from dlogp_jax.engine import EngineConfig
from dlogp_jax.sampling import FINISH_CACHE
from tests.engine.common import SAMPLED, M, assert_same, run_both


def test_pages_free_after_run_and_shared_pages_counted(pair):
    seen = []
    on_round = lambda s: seen.append(jax.device_get((s.pages.refcount, s.pages.table, s.live)))
    static, paged, _ = run_both(pair, SAMPLED, seed=2, on_round=on_round)
    assert_same(static, paged)
    refcount, table, live = seen[-1]
    assert not live.any() and (table == -1).all()
    np.testing.assert_array_equal(refcount, 0)  # every page back on the free list
    shared = False
    for refcount, table, _ in seen:
        listed = np.bincount(table[table >= 0], minlength=refcount.size)
        # a page's holders: the slots listing it, plus at most one prompt awaiting more forks
        assert set(np.unique(refcount - listed)) <= {0, 1}
        shared |= bool((listed >= 2).any())
    assert shared, "the samples of a prompt share its full pages"


def test_page_shortage_preempts_and_restarts_identically(pair):
    """Too few pages for every running sequence: the starved ones are preempted and restarted
    from scratch, and still produce exactly the static decoder's samples."""
    engine = EngineConfig(num_pages=5, page_size=4, max_seqs=5, round_steps=3)
    static, paged, stats = run_both(pair, SAMPLED, seed=3, engine=engine)
    assert stats.preempted > 0
    assert stats.peak_pages_used <= 5
    assert_same(static, paged)


def test_sequences_that_cannot_fit_end_with_cache_full(pair):
    """16 tokens after a 6-token prompt need 6 pages of 4, more than the budget of 5: those
    sequences end with cache_full (a prefix of their unconstrained sample); the others are
    identical to the static decoder's."""
    spec = SAMPLED.replace(max_new_tokens=2 * M, stop_ids=())
    engine = EngineConfig(num_pages=5, page_size=4, max_seqs=5, round_steps=3)
    static, paged, _ = run_both(pair, spec, seed=3, engine=engine)
    full = np.asarray(paged.finish_reason) == FINISH_CACHE
    assert full[4:8].all()  # prompt 1 (6 tokens), its 4 samples
    keep = ~full
    assert keep.any()
    for name in ("tokens", "selected", "length", "finish_reason"):
        got, want = np.asarray(getattr(paged, name)), np.asarray(getattr(static, name))
        np.testing.assert_array_equal(got[keep], want[keep], err_msg=name)
    tokens, want = np.asarray(paged.tokens), np.asarray(static.tokens)
    for i in np.flatnonzero(full):
        n = int(paged.length[i])
        assert n < 2 * M
        np.testing.assert_array_equal(tokens[i, :n], want[i, :n])
        assert (tokens[i, n:] == SAMPLED.pad_id).all()
