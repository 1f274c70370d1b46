"""The world's supervised trainer: packing, loss masking, a smoke run, HF export round trip, sampling."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import toy
from dlogp_jax.demo import sft, task
from dlogp_jax.engine.choice import EngineChoice
from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return toy.build_tokenizer()


@pytest.fixture(scope="module")
def rows():
    return task.generate_splits(0, 256, 8, task.Difficulty(max_steps=2))


def _config(tok):
    return toy.tiny_config(len(tok), hidden_size=32, intermediate_size=64, head_dim=8)


@functools.partial(jax.jit, static_argnums=2)
def _logits(params, tokens, config):
    positions = jnp.arange(tokens.shape[1])[None]
    return transformer.apply(params, tokens, positions, config=config)[0]


def test_pack_masks_only_the_response():
    out = sft.pack([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], seq_len=6, pad_id=0)
    np.testing.assert_array_equal(out["tokens"], [[5, 6, 7, 1, 2, 0], [8, 3, 4, 9, 0, 0]])
    np.testing.assert_array_equal(out["input_mask"], [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(out["loss_mask"], [[0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0]])
    with pytest.raises(ValueError, match="exceed seq_len"):
        sft.pack([[1, 2, 3]], [[4, 5, 6, 7]], seq_len=6, pad_id=0)


def test_prompt_and_response_use_the_chat_template(tok, rows):
    problem = rows[0][0]["problem"]
    (ids,) = sft.prompt_ids(tok, [problem])
    text = tok.decode(ids)
    assert text == f"<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
    (resp,) = sft.response_ids(tok, ["1+1=2\nAnswer: 2"])
    assert tok.decode(resp) == "1+1=2\nAnswer: 2<|im_end|>"


def test_trace_sampler_slips_at_the_given_rate(tok, rows):
    train, _ = rows
    never = sft.TraceSampler(train, tok, slip_prob=0.0, max_value=99, seed=0)
    always = sft.TraceSampler(train, tok, slip_prob=1.0, max_value=99, seed=0)
    idx = np.arange(64)
    assert all(task.check(s, train[i]["answer"]) for i, s in zip(idx, never.solutions(idx)))
    assert not any(task.check(s, train[i]["answer"]) for i, s in zip(idx, always.solutions(idx)))
    batch = never.batch(4)
    assert batch["tokens"].shape == (4, never.seq_len)


def test_response_nll_ignores_prompt_and_padding(tok):
    config = _config(tok)
    params = transformer.init(jax.random.key(0), config)
    base = sft.pack([[5, 6, 7]], [[1, 2]], seq_len=8, pad_id=0)
    other = sft.pack([[5, 6, 7]], [[1, 2]], seq_len=8, pad_id=3)  # different pad tokens
    nll_fn = jax.jit(functools.partial(sft.response_nll, config=config))
    nll = [nll_fn(params, b["tokens"], b["input_mask"], b["loss_mask"]) for b in (base, other)]
    np.testing.assert_allclose(nll[0], nll[1], rtol=1e-6)
    logits = _logits(params, jnp.asarray([[5, 6, 7, 1, 2]]), config)
    logp = jax.nn.log_softmax(logits[0])
    expected = -(logp[2, 1] + logp[3, 2]) / 2
    np.testing.assert_allclose(nll[0], expected, rtol=1e-5)


@pytest.fixture(scope="module")
def trained(tok, rows, tmp_path_factory):
    """A smoke SFT run: (params, config, logs, exported dir)."""
    train, _ = rows
    config = _config(tok)
    logs = []
    params = sft.train_sft(
        train,
        tok,
        config,
        steps=30,
        batch_size=16,
        lr=1e-2,
        seed=0,
        log_every=10,
        log_fn=lambda step, m: logs.append((step, m)),
    )
    path = hf_weights.export_params(tmp_path_factory.mktemp("world") / "base", params, config, tok)
    return params, config, logs, path


def test_smoke_sft_lowers_loss(trained):
    _, _, logs, _ = trained
    assert [s for s, _ in logs] == [10, 20, 30]
    first, last = logs[0][1]["loss"], logs[-1][1]["loss"]
    assert np.isfinite(last) and last < 0.8 * first, logs


def test_export_loads_with_identical_logits(trained, tok, rows):
    params, config, _, path = trained
    loaded_config, loaded = hf_weights.load_params(path)
    assert loaded_config == config
    tokens = jnp.asarray(sft.prompt_ids(tok, [rows[1][0]["problem"]]))
    want, got = _logits(params, tokens, config), _logits(loaded, tokens, loaded_config)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_export_loads_with_transformers(trained, tok, rows):
    import torch
    import transformers

    params, config, _, path = trained
    (ids,) = sft.prompt_ids(tok, [rows[1][0]["problem"]])
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        hf_logits = model(torch.as_tensor([ids])).logits.numpy()
    ours = np.asarray(_logits(params, jnp.asarray([ids]), config))
    np.testing.assert_allclose(hf_logits, ours, atol=2e-4, rtol=1e-4)


def test_exported_tokenizer_loads_with_the_library(trained, tok, rows):
    _, _, _, path = trained
    loaded = load_tokenizer(path)
    problem = rows[1][0]["problem"]
    assert sft.prompt_ids(loaded, [problem]) == sft.prompt_ids(tok, [problem])
    assert sft.response_ids(loaded, ["1+1=2\nAnswer: 2"]) == sft.response_ids(
        tok, ["1+1=2\nAnswer: 2"]
    )


def test_exported_tokenizer_loads_with_transformers(trained, tok, rows):
    import transformers

    _, _, _, path = trained
    hf_tok = transformers.AutoTokenizer.from_pretrained(path)
    problem, solution = rows[1][0]["problem"], rows[1][0]["solution"]
    assert sft.prompt_ids(hf_tok, [problem]) == sft.prompt_ids(tok, [problem])
    ids = sft.response_ids(tok, [solution])[0]
    assert sft.response_ids(hf_tok, [solution])[0] == ids
    assert hf_tok.decode(ids, skip_special_tokens=True) == solution


def test_evaluate_accuracy_on_a_smoke_model(trained, tok, rows):
    params, config, _, _ = trained
    test = rows[1]
    acc, per = sft.evaluate_accuracy(
        params, config, tok, test[:3], n=2, seed=0, max_new_tokens=8, prompt_batch=2
    )
    assert per.shape == (3,) and 0.0 <= acc <= 1.0
    assert acc == pytest.approx(per.mean())
    problems = [r["problem"] for r in test[:3]]
    texts = sft.sample_responses(params, config, tok, problems, 2, seed=0, max_new_tokens=8)
    static = EngineChoice(engine="static")  # the dense batches of 2, the last one padded
    again = sft.sample_responses(
        params, config, tok, problems, 2, seed=0, max_new_tokens=8, prompt_batch=2, engine=static
    )
    # one random stream per (seed, problem, sample), whatever the batching and the engine
    assert texts == again
    summary = sft.accuracy_summary(per, 2)
    assert summary["num_prompts"] == 3 and summary["samples_per_prompt"] == 2
