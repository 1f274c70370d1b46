"""The jitted DAPO step: old-policy log-probs and one mini-batch update with micro-batch accumulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import toy
from dlogp_jax.model import transformer
from dlogp_jax.rl import dapo_loss, train_state
from dlogp_jax.rl.dapo_loss import LossConfig
from dlogp_jax.rl.train_step import StepConfig, forward_logprobs, update

TP, M = 8, 6
PROMPT_LENS = np.array([8, 5, 3, 6])
# Micro-batches of 2 rows hold 6+4 and 1+0 response tokens: unequal, and one empty response.
RESP_LENS = np.array([6, 4, 1, 0])
VOCAB = 99
# AdamW's first step is lr·g/(|g| + eps): eps = 1 keeps it a smooth (nearly SGD) function of the
# gradient, so float32 accumulation noise cannot flip the sign-like update of tiny gradients; no
# clipping, decay or warmup, so the comparison sees the raw accumulated gradient.
OPT = train_state.OptimizerConfig(lr=0.5, warmup_steps=0, eps=1.0, weight_decay=0.0, grad_clip=1e6)


@pytest.fixture(scope="module")
def setup():
    tok = toy.build_tokenizer()
    assert len(tok) == VOCAB
    config = toy.tiny_config(VOCAB)
    params = jax.jit(lambda k: transformer.init(k, config, std=0.3))(jax.random.key(0))
    rng = np.random.default_rng(0)
    b = len(PROMPT_LENS)
    pad = tok.pad_token_id
    tokens = np.full((b, TP + M), pad, np.int32)
    mask = np.zeros((b, TP + M), bool)
    for i, (p, r) in enumerate(zip(PROMPT_LENS, RESP_LENS)):
        tokens[i, TP - p : TP] = rng.integers(0, 96, p)  # left-padded prompt
        tokens[i, TP : TP + r] = rng.integers(0, 96, r)  # response, then padding
        mask[i, TP - p : TP + r] = True
    resp_mask = (np.arange(M)[None, :] < RESP_LENS[:, None]).astype(np.float32)
    return tok, config, params, tokens, mask, resp_mask


def _step_cfg(config, micro_batches=1, loss=None, chunk_tokens=7, temperature=1.0):
    return StepConfig(
        temperature=temperature,
        model=config,
        loss=loss or LossConfig(),
        prompt_len=TP,
        vocab_limit=VOCAB,
        chunk_tokens=chunk_tokens,
        micro_batches=micro_batches,
        optimizer=OPT,
    )


def _state(params):
    """A fresh state on a copy of params (`update` donates its state)."""
    params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
    return train_state.create(params, train_state.make_optimizer(OPT), seed=0)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_forward_logprobs_matches_unpadded_apply(setup, temperature):
    """verl's training log-probs: log_softmax(logits / rollout temperature), entropy of the same."""
    _, config, params, tokens, mask, resp_mask = setup
    cfg = _step_cfg(config, temperature=temperature)
    logp, entropy = forward_logprobs(params, tokens, mask, cfg)
    logp, entropy = np.asarray(logp), np.asarray(entropy)
    assert logp.shape == entropy.shape == (4, M)
    # Reference: the real tokens only, left-aligned (positions 0.., no prompt padding); the
    # right padding after them cannot influence earlier positions under the causal mask.
    ref = np.zeros_like(tokens)
    ref_mask = np.zeros_like(mask)
    for i, (p, r) in enumerate(zip(PROMPT_LENS, RESP_LENS)):
        ref[i, : p + r] = tokens[i, TP - p : TP + r]
        ref_mask[i, : p + r] = True
    positions = jnp.broadcast_to(jnp.arange(TP + M), ref.shape)
    apply = jax.jit(lambda *a: transformer.apply(*a, config=config)[0])
    logits = np.asarray(apply(params, ref, positions, None, ref_mask), np.float64) / temperature
    lsm = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1))[..., None]
    lsm -= logits.max(-1, keepdims=True)
    for i, (p, r) in enumerate(zip(PROMPT_LENS, RESP_LENS)):
        for t in range(r):  # response token t is predicted at sequence index p - 1 + t
            row = lsm[i, p - 1 + t]
            np.testing.assert_allclose(logp[i, t], row[ref[i, p + t]], rtol=1e-4, atol=1e-4)
            ent = -np.sum(np.exp(row) * row)
            np.testing.assert_allclose(entropy[i, t], ent, rtol=1e-4, atol=1e-4)
    valid = resp_mask > 0
    assert np.all(logp[valid] < 0) and np.all(np.isfinite(logp[valid]))
    assert logp[valid].std() > 0.3  # std 0.3 weights: far from uniform, a meaningful comparison


def _batch(setup, params, adv_sign=None, seed=1):
    _, config, _, tokens, mask, resp_mask = setup
    logp, _ = forward_logprobs(params, tokens, mask, _step_cfg(config))
    rng = np.random.default_rng(seed)
    logp = np.asarray(logp)
    if adv_sign is None:  # perturbed old policy: ratios inside and outside the clip range
        logp_old = logp + rng.normal(0.0, 0.4, logp.shape).astype(np.float32)
        logp_old[1, 0] = logp[1, 0] - 3.0  # ratio e³ > c = 10 on a negative advantage: dual clip
        adv = np.repeat(np.array([[1.3], [-0.7], [-1.1], [0.5]], np.float32), M, axis=1)
    else:
        logp_old = logp
        adv = np.full(logp.shape, adv_sign, np.float32)
    logp_old = np.where(resp_mask > 0, logp_old, 0.0).astype(np.float32)
    weights = np.asarray(dapo_loss.token_weights("reshape_reversed", np.exp(logp_old), 0.2))
    return {
        "tokens": tokens,
        "mask": mask,
        "resp_mask": resp_mask,
        "adv": (adv * resp_mask).astype(np.float32),
        "weights": weights.astype(np.float32),
        "logp_old": logp_old,
    }


def test_micro_batch_accumulation_matches_full_batch(setup):
    _, config, params, *_ = setup
    batch = _batch(setup, params)
    loss_cfg = LossConfig()  # token_mean: verl's per-micro-batch mean would differ here
    results = {}
    for u in (1, 2):
        new, metrics = update(_state(params), batch, _step_cfg(config, u, loss_cfg))
        results[u] = (jax.tree.map(np.asarray, new.params), jax.tree.map(float, metrics))
        assert int(new.step) == 0  # the step counter is the trainer's
    (p1, m1), (p2, m2) = results[1], results[2]

    # The loss is the exact mini-batch loss (global denominators), computed here directly.
    logp = forward_logprobs(params, batch["tokens"], batch["mask"], _step_cfg(config))[0]
    rm = batch["resp_mask"]
    want, stats = dapo_loss.policy_loss(
        logp,
        batch["logp_old"],
        batch["adv"],
        batch["weights"],
        rm,
        loss_cfg,
        jnp.sum(rm),
        jnp.sum(jnp.any(rm > 0, axis=-1)),
    )
    for m in (m1, m2):
        np.testing.assert_allclose(m["loss"], float(want), rtol=1e-5, atol=1e-6)
        for k in ("clipped_low", "clipped_high", "clipped_dual"):
            np.testing.assert_allclose(m[k], float(stats[k]) / rm.sum(), atol=1e-6)
    assert min(m1["clipped_low"], m1["clipped_high"], m1["clipped_dual"]) > 0  # all branches
    np.testing.assert_allclose(m2["grad_norm"], m1["grad_norm"], rtol=1e-4)
    assert m1["grad_norm"] > 1e-3

    # Parameter updates agree up to float32 accumulation noise, relative to their size.
    d1 = [a - np.asarray(b) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params))]
    d2 = [a - np.asarray(b) for a, b in zip(jax.tree.leaves(p2), jax.tree.leaves(params))]
    scale = max(float(np.max(np.abs(d))) for d in d1)
    assert scale > 1e-2
    for a, b in zip(d1, d2):
        np.testing.assert_allclose(a, b, atol=1e-4 * scale)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_update_moves_response_logprobs_with_advantage_sign(setup, sign):
    _, config, params, tokens, mask, resp_mask = setup
    batch = _batch(setup, params, adv_sign=sign)
    new, metrics = update(_state(params), batch, _step_cfg(config, 2))  # compiled above
    before = forward_logprobs(params, tokens, mask, _step_cfg(config))[0]
    after = forward_logprobs(new.params, tokens, mask, _step_cfg(config))[0]
    mean = lambda x: float(jnp.sum(x * resp_mask) / resp_mask.sum())
    assert sign * (mean(after) - mean(before)) > 0.05, (mean(before), mean(after))
    # ratio 1 everywhere: nothing clipped, loss = −sign·mean(w) (token mean of −A·w·1).
    np.testing.assert_allclose(metrics["loss"], -sign * mean(batch["weights"]), rtol=1e-5)
    assert metrics["clipped_low"] == metrics["clipped_high"] == metrics["clipped_dual"] == 0.0
    assert np.all(np.isfinite(np.asarray(after)))


def test_non_finite_gradient_skips_the_update(setup):
    """verl's `_optimizer_step`: a NaN/inf grad norm leaves params and optimizer state as they were."""
    _, config, params, *_ = setup
    batch = _batch(setup, params, adv_sign=1.0)
    batch["adv"] = batch["adv"].copy()
    batch["adv"][0, 0] = np.nan
    state = _state(params)
    before = jax.tree.map(np.asarray, (state.params, state.opt_state))
    new, metrics = update(state, batch, _step_cfg(config, 2))
    assert not np.isfinite(float(metrics["grad_norm"])) and float(metrics["update_skipped"]) == 1
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves((new.params, new.opt_state))):
        np.testing.assert_array_equal(a, np.asarray(b))
    # A finite batch updates and reports no skip.
    ok = _batch(setup, params, adv_sign=1.0)
    new, metrics = update(_state(params), ok, _step_cfg(config, 2))
    assert float(metrics["update_skipped"]) == 0
    moved = [
        np.abs(np.asarray(a) - np.asarray(b)).max()
        for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(params))
    ]
    assert max(moved) > 0


def test_focal_weights_come_from_the_current_policy(setup):
    """`focal` (the official fork): w = (1 − sg(p_θ))^c from the policy being updated, not from
    p_old; the batch's weights are ignored."""
    _, config, params, *_ = setup
    batch = _batch(setup, params)  # p_old perturbed away from the current policy
    batch["weights"] = np.full_like(batch["weights"], 123.0)  # must not be used
    loss_cfg = LossConfig(weight_method="focal", weight_c=2.0)
    _, metrics = update(_state(params), batch, _step_cfg(config, 1, loss_cfg))
    logp = forward_logprobs(params, batch["tokens"], batch["mask"], _step_cfg(config))[0]
    rm = batch["resp_mask"]
    n = (jnp.sum(rm), jnp.sum(jnp.any(rm > 0, axis=-1)))
    w_now = (1.0 - jnp.exp(logp)) ** 2.0
    w_old = (1.0 - jnp.exp(batch["logp_old"])) ** 2.0
    args = (batch["logp_old"], batch["adv"])
    want = dapo_loss.policy_loss(logp, *args, w_now, rm, loss_cfg, *n)[0]
    other = dapo_loss.policy_loss(logp, *args, w_old, rm, loss_cfg, *n)[0]
    np.testing.assert_allclose(float(metrics["loss"]), float(want), rtol=1e-5, atol=1e-6)
    # p_old weights give another loss, by 100x the tolerance above (3.5e-4 on this batch).
    assert abs(float(want) - float(other)) > 1e-4
