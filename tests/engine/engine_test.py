"""The paged engine against the static decoder: same seeds and prompts -> the same samples, in
every mode (exact and faithful), with one and two models, mixed prompt lengths, n > 1, more
sequences than slots, other page sizes and round lengths, and on the 8-device mesh."""

import jax
import numpy as np
import pytest

from dlogp_jax.engine import EngineConfig
from dlogp_jax.model import transformer
from dlogp_jax.sampling import FINISH_LENGTH, FINISH_STOP, DecodeSpec
from dlogp_jax.sharding import make_mesh, tree_shardings
from tests.engine.common import BASE, ROWS, SAMPLED, assert_same, run_both

CASES = {
    "single_greedy_base_only": (DecodeSpec(temperature=0, **BASE), False),
    "single_sampled_rl_scores": (DecodeSpec(top_p=0.9, **BASE), True),
    "replace_exact": (SAMPLED.replace(mode="replace"), True),
    "extrapolate_exact": (SAMPLED, True),
    "extrapolate_all_exact": (DecodeSpec(mode="extrapolate_all", gamma=0.5, **BASE), True),
    "replace_faithful_entropy": (
        SAMPLED.replace(mode="replace", criterion="entropy_rl", threshold=2.5, faithful=True),
        True,
    ),
    "extrapolate_faithful_greedy": (SAMPLED.replace(temperature=0, faithful=True), True),
    "extrapolate_all_faithful": (
        DecodeSpec(mode="extrapolate_all", gamma=0.5, faithful=True, faithful_top_k=8, **BASE),
        True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_modes_match_static(pair, case):
    spec, rl = CASES[case]
    static, paged, stats = run_both(pair, spec, seed=3, rl=rl)
    assert_same(static, paged)
    reasons = np.asarray(paged.finish_reason)
    assert (reasons == FINISH_STOP).any() and (reasons == FINISH_LENGTH).any(), "mixed ends"
    assert stats.prefilled_prompts == len(ROWS)  # n samples share one prefill
    assert stats.peak_live_seqs == 5
    if spec.mode in ("replace", "extrapolate"):
        assert 0 < np.asarray(paged.selected).mean() < 1, "a threshold that fires sometimes"


@pytest.mark.parametrize(
    "engine",
    [
        EngineConfig(num_pages=64, page_size=1, max_seqs=3, round_steps=1),
        EngineConfig(num_pages=8, page_size=16, max_seqs=16, round_steps=8),
    ],
    ids=["page1_round1", "page16_all_slots"],
)
def test_page_sizes_and_rounds(pair, engine):
    static, paged, _ = run_both(pair, SAMPLED, seed=1, engine=engine)
    assert_same(static, paged)


def test_n1_more_prompts_than_slots_and_global_indices(pair):
    spec = SAMPLED.replace(n=1)
    engine = EngineConfig(num_pages=16, page_size=4, max_seqs=2, round_steps=2)
    static, paged, stats = run_both(pair, spec, seed=5, engine=engine, index=[7, 2, 11, 0])
    assert_same(static, paged)
    assert stats.peak_live_seqs == 2


def test_mesh(pair):
    """Params sharded over data:2,fsdp:2,tensor:2 (8 CPU devices): the same samples."""
    mesh = make_mesh("data:2,fsdp:2,tensor:2")
    place = lambda params, config: jax.device_put(
        params, tree_shardings(mesh, transformer.param_axes(config), params)
    )
    sharded = type(pair)(
        pair.config_base,
        place(pair.params_base, pair.config_base),
        pair.config_rl,
        place(pair.params_rl, pair.config_rl),
    )
    static, _, _ = run_both(pair, SAMPLED, seed=1)
    engine = EngineConfig(num_pages=40, page_size=4, max_seqs=8, round_steps=3)
    with jax.set_mesh(mesh):
        _, paged, _ = run_both(sharded, SAMPLED, seed=1, engine=engine)
    assert_same(static, paged)


def test_budget_and_argument_errors(pair):
    with pytest.raises(ValueError, match="raise num_pages"):
        run_both(pair, SAMPLED, engine=EngineConfig(num_pages=3, page_size=4))
    with pytest.raises(ValueError, match="needs params_rl"):
        run_both(pair, SAMPLED, rl=False)
    with pytest.raises(ValueError, match="must be >= 1"):
        EngineConfig(max_seqs=0)


# The criteria not in CASES (dlogp, entropy_rl), each with a threshold that fires sometimes.
THRESHOLDS = {
    "entropy_base": 2.5,
    "kl_rl_base": 0.05,
    "kl_base_rl": 0.05,
    "kl_sym": 0.05,
    "random": 0.5,
    "all": 0.0,
    "none": 0.0,
}


@pytest.mark.parametrize("criterion", list(THRESHOLDS))
def test_every_criterion(pair, criterion):
    spec = SAMPLED.replace(criterion=criterion, threshold=THRESHOLDS[criterion])
    static, paged, _ = run_both(pair, spec, seed=4)
    assert_same(static, paged)


def test_long_prompt_admitted_mid_run_is_prefilled_in_chunks(pair):
    """A 37-token prompt queued behind short ones, prefilled 6 tokens at a time (chunks end
    mid-page): the running sequences decode between its chunks, and every sample still equals
    the static decoder's."""
    long_prompt = [int(t) for t in np.random.default_rng(0).integers(1, 97, 37)]
    rows = (*ROWS[:2], long_prompt, ROWS[2])
    engine = EngineConfig(num_pages=64, page_size=4, max_seqs=5, round_steps=2, prefill_chunk=6)
    static, paged, stats = run_both(pair, SAMPLED, rows=rows, seed=6, engine=engine)
    assert_same(static, paged)
    assert stats.prefill_rounds > 0, "decoding went on while the long prompt was prefilled"
