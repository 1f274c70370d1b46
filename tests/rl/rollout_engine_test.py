"""Rollouts on the paged engine (the default) against the static decoder: the same responses, so
the same training batch and the same log π_θold (the trainer recomputes it from the tokens with
one forward pass, whatever decoded them); and the rollout section's engine settings reach
`generate_round` and are validated with the section's name."""

import jax
import numpy as np
import pytest

from dlogp_jax import runs, toy
from dlogp_jax.data.prompts import Prompt
from dlogp_jax.engine.choice import EngineChoice
from dlogp_jax.model import transformer
from dlogp_jax.model.tokenizer import stop_token_ids
from dlogp_jax.rl import rollout, train_step
from dlogp_jax.rl.dapo_loss import LossConfig
from dlogp_jax.rl.rollout import Groups, RolloutConfig
from dlogp_jax.rl.trainer import batch_arrays
from dlogp_jax.sampling import DecodeSpec
from dlogp_jax.sharding import make_mesh
from tests.rl.rollout_test import fake_generate_round

N = 3
TP = 16


def test_paged_rollout_equals_static():
    tok = toy.build_tokenizer()
    config = toy.tiny_config(len(tok))
    params = transformer.init(jax.random.key(1), config, std=0.3)
    texts = ("Say 1.", "x", "What is 12+30?", "Say 22.", "9-4")  # 1 to 14 tokens
    prompts = [
        Prompt(index=i, ids=tuple(tok.encode(t)), answer="1", data_source="toy")
        for i, t in enumerate(texts)
    ]
    spec = DecodeSpec(
        mode="single",
        temperature=1.0,
        max_new_tokens=8,
        n=N,
        stop_ids=stop_token_ids(tok),
        pad_id=tok.pad_token_id,
        vocab_limit=len(tok),
    )
    mesh = make_mesh("data:2")
    idx = [4, 0, 2, 1]  # a round's prompts, not in index order
    engines = {
        "static": EngineChoice(engine="static"),
        # 12 sequences on 3 slots and a small page budget: admissions while others run
        "paged": EngineChoice(max_seqs=3, page_size=4, kv_pages=12),
    }
    got = {}
    for name, engine in engines.items():
        got[name] = rollout.generate_round(
            params,
            config=config,
            prompts=prompts,
            idx=idx,
            spec=spec,
            seed=11,
            tp=TP,
            mesh=mesh,
            engine=engine,
        )
    for a, b, what in zip(got["paged"], got["static"], ("idx", "prompts", "mask", "resp", "len")):
        np.testing.assert_array_equal(a, b, err_msg=what)
    lengths = got["paged"][4]
    assert len(set(lengths.tolist())) > 1 and (lengths < spec.max_new_tokens).any()
    # The training batch, and log π_θold computed from it, are those of the static rollout.
    batches = []
    for name in ("paged", "static"):
        i, t, m, r, n = got[name]
        rewards = np.zeros((len(i), N), np.float32)
        batches.append(batch_arrays(Groups(i, t, m, r, n, rewards, rewards), N))
    for k in batches[0]:
        np.testing.assert_array_equal(batches[0][k], batches[1][k], err_msg=k)
    step_cfg = train_step.StepConfig(
        model=config, loss=LossConfig(), prompt_len=TP, vocab_limit=len(tok), remat=False
    )
    logp = [
        np.asarray(train_step.forward_logprobs(params, b["tokens"], b["mask"], step_cfg)[0])
        for b in batches
    ]
    np.testing.assert_array_equal(logp[0], logp[1])


def test_collect_passes_the_rollout_engine(monkeypatch):
    calls = []
    monkeypatch.setattr(rollout, "generate_round", fake_generate_round(calls))
    cfg = RolloutConfig(n=2, gen_prompts=4, train_prompts=1, max_response_len=4, page_size=8)
    rollout.collect(
        cfg,
        next_prompts=lambda: [0, 1, 2, 3],
        params=None,
        model=None,
        prompts=[Prompt(index=i, ids=(7,), answer="1", data_source="t") for i in range(4)],
        spec=None,
        seeds=lambda r: r,
        tp=3,
        tokenizer=type("T", (), {"decode": lambda self, ids, **kw: ",".join(map(str, ids))})(),
        grader=type("G", (), {"score": lambda self, name, t, a: [float(x[0] == "1") for x in t]})(),
        mesh=None,
    )
    assert calls[0]["engine"] == EngineChoice(engine="paged", page_size=8)


def test_rollout_engine_settings_are_checked():
    assert RolloutConfig().engine == runs.TrainSettings(toy_task=True).rollout.engine == "paged"
    bad = RolloutConfig(engine="dense", max_seqs=-2)
    with pytest.raises(ValueError) as e:
        runs.TrainSettings(toy_task=True, rollout=bad)
    assert "rollout.engine='dense': use one of paged, static." in str(e.value)
    assert "rollout.max_seqs=-2: must be an integer >= 0 (0 = auto)." in str(e.value)
