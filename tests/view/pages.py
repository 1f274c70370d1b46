"""Hand-made dlogp-score and dlogp-sample outputs for the viewer tests (no model needed)."""

import json

import numpy as np

from dlogp_jax import outputs

# Response 0: a word, a space-led word, "é" split over two byte-level tokens, a newline, "!".
TOKENS0 = ["Hello", "Ġworld", "Ġ", "Ã", "©", "Ċ", "!"]
TEXT0 = ["Hello", " world", " ", "", "é", "\n", "!"]
DLOGP0 = [-100.0, 0.0, 100.0, -0.5, -0.2, 0.4, -1.5]
ENTROPY0 = [0.0, 100.0, 0.2, 0.6, 0.7, 0.1, 1.0]
BIG = 20_000  # response 2: must stay responsive


def score_dir(root, big: int = BIG):
    """A dlogp-score output with alternatives: 3 responses (groups base/rl/rl), data rows graded."""
    rng = np.random.default_rng(0)
    lens = [len(TOKENS0), 3, big]
    tokens = TOKENS0 + ["a", "Ġb", "c"] + ["Ġx", "y"] * (big // 2)
    n = len(tokens)
    dlogp = np.concatenate([DLOGP0, [0.3, -1.2, 2.0], rng.normal(0, 1, big)])
    entropy = np.concatenate([ENTROPY0, [0.5, 0.5, 0.5], rng.uniform(0, 3, big)])
    logp_base = -np.abs(rng.normal(1, 1, n))
    table = {
        "row": np.repeat(np.arange(3), lens),
        "position": np.concatenate([np.arange(k) for k in lens]),
        "token_id": np.arange(n) % 50,
        "token": np.asarray(tokens),
        "logp_base": logp_base,
        "logp_rl": logp_base + dlogp,
        "dlogp": dlogp,
        "entropy_base": entropy,
        "entropy_rl": entropy / 2,
        "kl_rl_base": np.full(n, 0.125),
        "kl_base_rl": np.full(n, 0.25),
        "group": np.repeat(np.asarray(["base", "rl", "rl"]), lens),
    }
    for m, first in (("base", "Ġbase"), ("rl", "Ġrl")):
        table[f"top_ids_{m}"] = [[1, 2, 3]] * n
        table[f"top_tokens_{m}"] = [[first, "Ã©", "Ċ"]] * n
        table[f"top_probs_{m}"] = [[0.5, 0.25, 0.125]] * n
    outputs.write_parquet(root / "tokens.parquet", table)
    rows = [
        {"prompt": "Say <hello>", "response": "", "correct": True},
        {"prompt": "abc?", "response": "", "correct": False},
        {"prompt": "long", "response": ""},
    ]
    outputs.write_jsonl(root / "data.jsonl", rows)
    outputs.write_json(root / "summary.json", {"data": str(root / "data.jsonl")})
    return root


def sample_dir(root, tokenizer, base: str = "/nonexistent"):
    """A dlogp-sample output (replace mode) of 2 samples; token 1 of sample 0 was replaced."""
    ids = tokenizer.encode("ab c", add_special_tokens=False)
    other = tokenizer.encode("z", add_special_tokens=False)[0]
    samples = [
        {
            "prompt_index": 0,
            "sample_index": 0,
            "token_ids": ids,
            "proposed_ids": [ids[0], other] + ids[2:],
            "selected": [0, 1] + [0] * (len(ids) - 2),
            "logp_base": [-1.0] * len(ids),
            "logp_rl": [-1.5] * len(ids),
            "dlogp": [-0.5] * len(ids),
            "correct": True,
        },
        {
            "prompt_index": 1,
            "sample_index": 0,
            "token_ids": ids[:2],
            "proposed_ids": ids[:2],
            "selected": [1, 0],
            "logp_base": [-1.0, -2.0],
            "logp_rl": [-1.0, -1.0],
            "dlogp": [0.0, 1.0],
            "correct": False,
        },
    ]
    outputs.write_jsonl(root / "samples.jsonl", samples)
    outputs.write_jsonl(root / "prompts.jsonl", [{"prompt": "p0"}, {"prompt": "p1"}])
    record = {"base": base, "rl": "/r", "data": str(root / "prompts.jsonl"), "mode": "replace"}
    (root / "run.json").write_text(json.dumps(record))
    return root, ids, other
