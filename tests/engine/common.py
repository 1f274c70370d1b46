"""Runs one workload on the static decoder and on the paged engine, and compares them."""

import numpy as np

from dlogp_jax.engine import EngineConfig, run_paged
from dlogp_jax.sampling import DecodeSpec, generate
from tests.sampling.models import VOCAB, prompts

M = 8
STOPS = tuple(range(0, VOCAB, 9))  # 11 of 99 ids: sequences end at different steps
BASE = dict(max_new_tokens=M, vocab_limit=VOCAB, n=4, stop_ids=STOPS, pad_id=98)
SAMPLED = DecodeSpec(
    mode="extrapolate", criterion="dlogp", threshold=-4.0, gamma=0.5, top_p=0.9, **BASE
)

# lengths 3, 6, 1, 4 with page size 4: partial last pages, a full + partial prompt, a one-token
# prompt, and a prompt that fills its page exactly (all its pages shared, nothing to clone)
ROWS = ([5, 17, 42], [3, 9, 11, 60, 2, 8], [70], [8, 19, 30, 41])
# 13 sequences at n = 4 on 5 slots: admissions happen while other sequences run
ENGINE = EngineConfig(num_pages=40, page_size=4, max_seqs=5, round_steps=3)


def run_both(pair, spec, rows=ROWS, seed=0, rl=True, engine=ENGINE, index=None, **kw):
    """(static DecodeOutput, paged DecodeOutput, EngineStats) of the same prompts and seed."""
    tokens, mask = prompts(rows)
    index = np.arange(len(rows)) if index is None else np.asarray(index)
    rl_kw = dict(params_rl=pair.params_rl, config_rl=pair.config_rl) if rl else {}
    args = (pair.params_base, tokens, mask, index)
    common = dict(spec=spec, config_base=pair.config_base, seed=seed, **rl_kw)
    static = generate(*args, **common)
    paged, stats = run_paged(*args, engine=engine, **common, **kw)
    return static, paged, stats


def assert_same(static, paged):
    """Token for token (and every record) equal; log-probs up to summation-order noise."""
    for name in ("tokens", "proposed", "selected", "length", "finish_reason"):
        np.testing.assert_array_equal(
            np.asarray(getattr(paged, name)), np.asarray(getattr(static, name)), err_msg=name
        )
    for name in ("logp_base", "logp_rl", "dlogp", "replacement_rate"):
        np.testing.assert_allclose(
            np.asarray(getattr(paged, name)),
            np.asarray(getattr(static, name)),
            atol=1e-4,
            err_msg=name,
        )
    for name in ("prompt_index", "sample_index"):
        np.testing.assert_array_equal(getattr(paged, name), getattr(static, name), err_msg=name)
