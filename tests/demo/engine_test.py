"""The demo decodes on the paged engine by default (its dlogp-sample runs, its dlogp-train
children's rollouts and evaluation, the SFT world's eval sampling), and its samples are those of
the static decoder: the SFT eval sampling on a tiny random model, both ways."""

import jax

from dlogp_jax import runs, toy
from dlogp_jax.demo import sft, tools
from dlogp_jax.engine.choice import EngineChoice
from dlogp_jax.model import transformer


def test_demo_tools_default_to_the_paged_engine():
    assert runs.from_dict(runs.SampleSettings, {"demo": True}).engine == "paged"  # tools.sample
    config = tools.train_config({"data": "d.jsonl"}, {"rollout": {"n": 2}})
    assert config["rollout"]["engine"] == "paged"
    assert (config["rollout"]["kv_pages"], config["rollout"]["max_seqs"]) == (0, 0)  # auto


def test_sft_eval_samples_equal_the_static_decoder():
    tok = toy.build_tokenizer()
    config = toy.tiny_config(len(tok), hidden_size=32, intermediate_size=64, head_dim=8)
    params = transformer.init(jax.random.key(4), config, std=0.3)
    problems = ["1+2=?", "What is 40+2?", "7"]  # mixed prompt lengths
    kw = dict(n=3, seed=5, max_new_tokens=10)
    paged = sft.sample_responses(params, config, tok, problems, **kw)  # the default: paged
    static = sft.sample_responses(
        params, config, tok, problems, prompt_batch=2, engine=EngineChoice(engine="static"), **kw
    )
    assert paged == static
    assert len({t for ts in paged for t in ts}) > 1  # not a comparison of constants
