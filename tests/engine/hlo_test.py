"""Loop hygiene of the compiled decode round: inside the while loop nothing copies a page pool,
the stacked layer weights or one layer's weights (per step or per layer), and the state (pools
included) is donated, so the round updates the pools in place."""

import math
import re

import numpy as np

from dlogp_jax.engine import adapter, loop
from tests.engine.common import ENGINE, SAMPLED


def test_decode_round_copies_no_weights_or_pools_and_donates_the_state(pair):
    params = (pair.params_base, pair.params_rl)
    configs = (pair.config_base, pair.config_rl)
    knobs, spec = adapter.knobs_of(SAMPLED)
    state = loop._init(
        params,
        np.int32(0),
        configs=configs,
        spec=spec,
        num_pages=ENGINE.num_pages,
        page_size=ENGINE.page_size,
        num_slots=ENGINE.max_seqs,
        table_width=4,
    )
    compiled = loop._round.lower(
        params, state, knobs, configs=configs, spec=spec, round_steps=3, width=4
    ).compile()
    text = compiled.as_text()
    assert "while" in text
    # element counts of every pool, stacked weight and per-layer weight slice (any layout)
    forbidden = {math.prod(pool.k.shape): "page pool" for pool in state.pools}
    for p in params:
        for name, w in p["layers"].items():
            if "bias" not in name and "norm" not in name:  # matrices (vectors are tiny)
                forbidden[math.prod(w.shape)] = f"stacked {name}"
                forbidden[math.prod(w.shape[1:])] = f"one layer of {name}"
    copies = re.findall(r"= [a-z0-9]+\[([0-9,]*)\]\{[^}]*\} copy\(", text)
    sizes = [math.prod(int(d) for d in c.split(",") if d) for c in copies]
    found = sorted({forbidden[s] for s in sizes if s in forbidden})
    assert not found, f"the decode round copies: {found}"
    # donation: the pools (and the rest of the state) alias the outputs
    pool_bytes = sum(2 * pool.k.size * pool.k.dtype.itemsize for pool in state.pools)
    assert compiled.memory_analysis().alias_size_in_bytes >= pool_bytes
