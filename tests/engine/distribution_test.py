"""The sampler's distribution test on the paged engine: many sequences of one prompt, and the
empirical distribution of their first and second tokens matches the analytic mixture of
selective extrapolation computed from full forward passes (the second token's logits come from
decoding through the forked, paged prompt cache)."""

import jax.numpy as jnp
import numpy as np

from dlogp_jax.engine import EngineConfig, run_paged
from dlogp_jax.sampling import DecodeSpec
from tests.sampling.models import PROMPTS, VOCAB, full_logprobs, prompts
from tests.sampling.steps_test import analytic

N = 6000


def _tv_bound(target, n, rng, draws=200):
    """The largest total-variation distance of `draws` exact multinomial samples of size n."""
    counts = rng.multinomial(n, target / target.sum(), size=draws)
    return float((0.5 * np.abs(counts / n - target).sum(-1)).max())


def _targets(pair, spec, seqs):
    """[len(seqs), VOCAB] analytic next-token distributions after each sequence."""
    lb = full_logprobs(pair.params_base, pair.config_base, seqs)
    lr = full_logprobs(pair.params_rl, pair.config_rl, seqs)
    return [np.asarray(analytic(spec, jnp.asarray(b), jnp.asarray(r))) for b, r in zip(lb, lr)]


def test_first_and_second_token_distributions(pair):
    spec = DecodeSpec(
        mode="extrapolate",
        criterion="dlogp",
        threshold=-2.0,
        gamma=0.5,
        top_p=0.9,
        temperature=0.9,
        max_new_tokens=2,
        vocab_limit=VOCAB,
        n=N,
    )
    tokens, mask = prompts([PROMPTS[0]])
    engine = EngineConfig(num_pages=2 * 512 + 8, page_size=4, max_seqs=512, round_steps=2)
    out, _ = run_paged(
        pair.params_base,
        tokens,
        mask,
        np.arange(1),
        spec=spec,
        config_base=pair.config_base,
        params_rl=pair.params_rl,
        config_rl=pair.config_rl,
        seed=0,
        engine=engine,
    )
    got = np.asarray(out.tokens)
    prompt = list(PROMPTS[0])
    target1 = _targets(pair, spec, [prompt])[0]
    # second token: the mixture over first tokens of each continuation's distribution
    after = _targets(pair, spec, [prompt + [y] for y in range(VOCAB)])
    target2 = sum(p * q for p, q in zip(target1, after))
    rng = np.random.default_rng(0)
    for column, target in ((0, target1), (1, target2)):
        counts = np.bincount(got[:, column], minlength=VOCAB)[:VOCAB]
        tv = 0.5 * np.abs(counts / N - target).sum()
        assert tv <= _tv_bound(target, N, rng), (column, tv)
