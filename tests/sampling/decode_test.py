"""The decode loop: cached greedy decoding vs full forward passes, stop/length/cache-full handling,
reproducibility across seeds, batch compositions and meshes, vocabulary padding, and identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import toy
from dlogp_jax.model import transformer
from dlogp_jax.sampling import FINISH_CACHE, FINISH_LENGTH, FINISH_STOP, DecodeSpec, generate
from dlogp_jax.sharding import make_mesh, tree_shardings
from tests.sampling.models import PROMPTS, VOCAB, full_logprobs, prompts
from tests.sampling.steps_test import analytic

M = 8


def decode(pair, spec, *, rows=PROMPTS, index=None, seed=0, rl=True, **kw):
    tokens, mask = prompts(rows)
    index = np.arange(len(rows)) if index is None else np.asarray(index)
    rl_kw = dict(params_rl=pair.params_rl, config_rl=pair.config_rl) if rl else {}
    return generate(
        pair.params_base,
        tokens,
        mask,
        index,
        spec=spec,
        config_base=pair.config_base,
        seed=seed,
        **rl_kw,
        **kw,
    )


def reference_greedy(pair, mode, tau=0.0, gamma=0.0, steps=M, criterion="dlogp"):
    """Step-by-step argmax from full forward passes (no cache), with the mode's rule: criterion
    `dlogp` fires at Δlog p(ŷ) <= τ, `logp` at log π_B(ŷ) − log π_R(ŷ) <= τ."""
    seqs = [list(p) for p in PROMPTS]
    records = {"tokens": [], "logp_base": [], "logp_rl": [], "dlogp": [], "selected": []}
    for _ in range(steps):
        lb = full_logprobs(pair.params_base, pair.config_base, seqs)
        lr = full_logprobs(pair.params_rl, pair.config_rl, seqs)
        yhat = lb.argmax(-1)
        rows = np.arange(len(seqs))
        dl = lr[rows, yhat] - lb[rows, yhat]
        if mode == "single_rl":
            tok, sel = lr.argmax(-1), np.zeros(len(seqs), bool)
        elif mode == "single":
            tok, sel = yhat, np.zeros(len(seqs), bool)
        else:
            sel = (dl if criterion == "dlogp" else -dl) <= tau
            tok = np.where(sel, (lr + gamma * (lr - lb)).argmax(-1), yhat)
        for s, t in zip(seqs, tok):
            s.append(int(t))
        records["tokens"].append(tok)
        records["logp_base"].append(lb[rows, tok])
        records["logp_rl"].append(lr[rows, tok])
        records["dlogp"].append(dl)
        records["selected"].append(sel)
    return {k: np.stack(v, axis=1) for k, v in records.items()}


def test_greedy_base_with_stops(pair):
    """Greedy base decoding with the cache = argmax of full forward passes; stop tokens end sequences
    (everything after is padding), and the loop exits once every sequence has stopped."""
    ref = reference_greedy(pair, "single")
    stops = tuple(sorted({int(t) for t in ref["tokens"][:, 2]}))
    spec = DecodeSpec(temperature=0, max_new_tokens=M, vocab_limit=VOCAB, stop_ids=stops, pad_id=97)
    out = decode(pair, spec)
    for i, row in enumerate(ref["tokens"]):
        length = next(t for t in range(M) if row[t] in stops) + 1
        assert length <= 3 and int(out.length[i]) == length
        assert int(out.finish_reason[i]) == FINISH_STOP
        np.testing.assert_array_equal(out.tokens[i, :length], row[:length])
        np.testing.assert_array_equal(out.tokens[i, length:], 97)
        for name in ("logp_base", "logp_rl", "dlogp"):
            got = np.asarray(getattr(out, name))[i]
            np.testing.assert_allclose(got[:length], ref[name][i, :length], atol=1e-4, err_msg=name)
            assert not np.any(got[length:])
    assert int(out.num_steps) == int(np.max(out.length)) < M
    assert not np.any(out.selected)


def test_greedy_rl_alone(pair):
    """The RL model decoded alone (its 106 embedding rows cut to the tokenizer's 99)."""
    ref = reference_greedy(pair, "single_rl")
    spec = DecodeSpec(temperature=0, max_new_tokens=M, vocab_limit=VOCAB)
    tokens, mask = prompts()
    out = generate(
        pair.params_rl, tokens, mask, np.arange(3), spec=spec, config_base=pair.config_rl
    )
    np.testing.assert_array_equal(out.tokens, ref["tokens"])
    np.testing.assert_allclose(out.logp_base, ref["logp_rl"], atol=1e-4)
    np.testing.assert_array_equal(out.finish_reason, [FINISH_LENGTH] * 3)


@pytest.mark.parametrize(
    ("criterion", "tau", "rule"), [("dlogp", -4.0, "dlogp"), ("logp", 4.0, "logp")]
)
def test_greedy_selective_extrapolation(pair, criterion, tau, rule):
    """Two models in lock-step: base argmax ŷ, replaced by the extrapolated argmax where
    Δlog p(ŷ) <= τ (the replace rule is the same code with γ = 0, checked per step in steps_test);
    the official `logp` criterion fires at log π_B(ŷ) − log π_R(ŷ) <= τ instead."""
    gamma = 0.5
    ref = reference_greedy(pair, "extrapolate", tau, gamma, criterion=rule)
    spec = DecodeSpec(
        mode="extrapolate",
        criterion=criterion,
        threshold=tau,
        gamma=gamma,
        temperature=0,
        max_new_tokens=M,
        vocab_limit=VOCAB,
    )
    out = decode(pair, spec)
    np.testing.assert_array_equal(out.tokens, ref["tokens"])
    np.testing.assert_array_equal(out.selected, ref["selected"])
    assert 0 < ref["selected"].mean() < 1, "pick a threshold that fires sometimes"
    for name in ("logp_base", "logp_rl", "dlogp"):
        np.testing.assert_allclose(getattr(out, name), ref[name], atol=1e-4, err_msg=name)
    np.testing.assert_array_equal(out.finish_reason, [FINISH_LENGTH] * 3)
    np.testing.assert_allclose(out.replacement_rate, ref["selected"].mean(1), rtol=1e-6)


def check_padding(out, stop_ids, pad_id, max_new):
    tokens = np.asarray(out.tokens)
    for i, length in enumerate(np.asarray(out.length)):
        row = tokens[i, :length]
        assert not np.isin(row[:-1], stop_ids).any()
        if int(out.finish_reason[i]) == FINISH_STOP:
            assert row[-1] in stop_ids
        else:
            assert length == max_new and out.finish_reason[i] == FINISH_LENGTH
        assert np.all(tokens[i, length:] == pad_id)
        for name in ("logp_base", "logp_rl", "dlogp", "selected"):
            assert not np.any(np.asarray(getattr(out, name))[i, length:]), name
        rate = np.asarray(out.selected)[i].sum() / max(length, 1)
        np.testing.assert_allclose(out.replacement_rate[i], rate, rtol=1e-6)


def test_cache_full_stops(pair):
    spec = DecodeSpec(max_new_tokens=M, vocab_limit=VOCAB)
    out = decode(pair, spec, rl=False, cache_length=6 + 3)  # Tp = 6
    assert int(out.num_steps) == 3
    np.testing.assert_array_equal(out.length, 3)
    np.testing.assert_array_equal(out.finish_reason, FINISH_CACHE)
    assert np.all(np.asarray(out.tokens)[:, 3:] == 0)
    with pytest.raises(ValueError, match="no room"):
        decode(pair, spec, rl=False, cache_length=6)


STOPS = tuple(range(0, VOCAB, 9))  # 11 of 99 ids: some sequences stop within M tokens, some don't
SAMPLED = DecodeSpec(
    mode="extrapolate",
    criterion="dlogp",
    threshold=-4.0,
    gamma=0.5,
    top_p=0.9,
    max_new_tokens=M,
    vocab_limit=VOCAB,
    n=4,
    stop_ids=STOPS,
    pad_id=98,
)


def test_sampled_seed_rows_and_padding(pair):
    a = decode(pair, SAMPLED, seed=3)
    b = decode(pair, SAMPLED, seed=3)
    c = decode(pair, SAMPLED, seed=4)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)
    np.testing.assert_array_equal(a.prompt_index, np.repeat(np.arange(3), 4))
    np.testing.assert_array_equal(a.sample_index, np.tile(np.arange(4), 3))
    # the n samples of a prompt share its prefill but not their draws
    assert len({tuple(r) for r in np.asarray(a.tokens)}) > 6
    for out in (a, c):
        check_padding(out, STOPS, 98, M)
    reasons = np.concatenate([a.finish_reason, c.finish_reason])
    assert (reasons == FINISH_STOP).any() and (reasons == FINISH_LENGTH).any()
    selected = np.concatenate([a.selected, c.selected])
    assert 0 < selected.mean() < 1


def test_batch_composition_independence(pair):
    """Prompt 2 decoded alone (its own, shorter padding; batch of 4) = its rows in the batch of 12."""
    together = decode(pair, SAMPLED, seed=1)
    alone = decode(pair, SAMPLED, rows=[PROMPTS[2]], index=[2], seed=1)
    np.testing.assert_array_equal(alone.tokens, np.asarray(together.tokens)[8:12])
    np.testing.assert_array_equal(alone.length, np.asarray(together.length)[8:12])
    np.testing.assert_allclose(alone.dlogp, np.asarray(together.dlogp)[8:12], atol=1e-4)


def test_mesh_independence(pair):
    plain = decode(pair, SAMPLED, seed=1)
    mesh = make_mesh("data:2,fsdp:2,tensor:2")
    place = lambda params, config: jax.device_put(
        params, tree_shardings(mesh, transformer.param_axes(config), params)
    )
    tokens, mask = prompts()
    with jax.set_mesh(mesh):
        out = generate(
            place(pair.params_base, pair.config_base),
            tokens,
            mask,
            np.arange(3),
            spec=SAMPLED,
            config_base=pair.config_base,
            params_rl=place(pair.params_rl, pair.config_rl),
            config_rl=pair.config_rl,
            seed=1,
        )
        assert len(out.tokens.sharding.device_set) == 8
    np.testing.assert_array_equal(out.tokens, plain.tokens)
    np.testing.assert_allclose(out.logp_rl, plain.logp_rl, atol=1e-4)


def test_extrapolate_all_gamma0_is_rl_and_padded_vocab(pair):
    """extrapolate_all with γ = 0 emits exactly the RL model's own samples (same seed), and the RL
    model's 7 large padding rows, which would hold most of the probability, are never drawn."""
    kw = dict(max_new_tokens=M, vocab_limit=VOCAB, top_p=0.9, n=4)
    tokens, mask = prompts()
    rl_alone = generate(
        pair.params_rl,
        tokens,
        mask,
        np.arange(3),
        spec=DecodeSpec(**kw),
        config_base=pair.config_rl,
    )
    ex0 = decode(pair, DecodeSpec(mode="extrapolate_all", gamma=0.0, **kw))
    np.testing.assert_array_equal(ex0.tokens, rl_alone.tokens)
    np.testing.assert_allclose(ex0.logp_rl, rl_alone.logp_base, atol=1e-5)
    assert np.asarray(ex0.selected).all()
    assert int(np.max(ex0.tokens)) < VOCAB
    positions = jnp.arange(3)[None]
    logits = transformer.apply(
        pair.params_rl, jnp.asarray([PROMPTS[0]]), positions, config=pair.config_rl
    )[0]
    assert float(jax.nn.softmax(logits[0, -1])[VOCAB:].sum()) > 0.5
    with pytest.raises(ValueError, match="vocab_limit"):
        decode(pair, DecodeSpec(mode="extrapolate_all", **{**kw, "vocab_limit": None}))
    with pytest.raises(ValueError, match="needs params_rl"):
        decode(pair, DecodeSpec(mode="extrapolate_all", **kw), rl=False)


def test_first_token_distribution(pair):
    """Many sequences, one step: the empirical first-token distribution of selective extrapolation
    matches the analytic mixture computed from full forward passes."""
    n = 4000
    spec = DecodeSpec(
        mode="extrapolate",
        criterion="dlogp",
        threshold=-2.0,
        gamma=0.5,
        top_p=0.9,
        temperature=0.9,
        max_new_tokens=1,
        vocab_limit=VOCAB,
        n=n,
    )
    out = decode(pair, spec, rows=[PROMPTS[0]])
    lb = full_logprobs(pair.params_base, pair.config_base, [PROMPTS[0]])[0]
    lr = full_logprobs(pair.params_rl, pair.config_rl, [PROMPTS[0]])[0]
    target = analytic(spec, jnp.asarray(lb), jnp.asarray(lr))
    counts = np.bincount(np.asarray(out.tokens)[:, 0], minlength=VOCAB)
    assert 0.5 * np.abs(counts / n - target).sum() < 0.06


def test_threshold_and_gamma_sweep_compiles_once():
    """τ and γ are traced: a sweep over them reuses one compiled program."""
    from dlogp_jax.sampling import decode

    config = toy.tiny_config(40, hidden_size=16, intermediate_size=32, num_layers=1)
    pb = transformer.init(jax.random.key(0), config)
    pr = transformer.init(jax.random.key(1), config)
    tokens, mask = decode.left_pad([[3, 4, 5], [6, 7]])
    spec = DecodeSpec(mode="extrapolate", criterion="dlogp", max_new_tokens=4, n=2)
    before = decode._generate._cache_size()
    rates = []
    for tau, gamma in ((-0.5, 0.0), (0.0, 0.5), (0.5, 1.0)):
        out = decode.generate(
            pb,
            tokens,
            mask,
            np.arange(2),
            spec=spec.replace(threshold=tau, gamma=gamma),
            config_base=config,
            params_rl=pr,
            config_rl=config,
            seed=0,
        )
        rates.append(float(np.asarray(out.selected).mean()))
    assert decode._generate._cache_size() == before + 1
    assert rates == sorted(rates) and rates[0] < rates[-1]
