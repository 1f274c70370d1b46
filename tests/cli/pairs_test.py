"""`dlogp-pairs`: dlogp-sample outputs -> one dlogp-score input with exact ids, scored by group."""

import json

import numpy as np
import pytest

from dlogp_jax import outputs, runs, toy
from dlogp_jax.cli import pairs, score
from dlogp_jax.data.prompts import render_prompt
from dlogp_jax.errors import DataError
from dlogp_jax.model.tokenizer import load_tokenizer
from tests.cli.configs import get_config


def test_pairs_rebuild_exact_ids_and_score_by_group(tmp_path):
    base, rl = toy.build_pair(tmp_path / "ckpt")
    tok = load_tokenizer(base)
    outputs.write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"problem": "1+2=?", "answer": "3"}, {"prompt": "  Say 7.", "answer": "7"}],
    )
    suffix = " Answer:"
    for group, seed in (("base", 0), ("rl", 1)):
        run = tmp_path / f"sample_{group}"
        outputs.write_json(
            run / "run.json",
            {
                "base": str(base),
                "data": str(tmp_path / "prompts.jsonl"),
                "prompt_suffix": suffix,
                "chat_template": True,
            },
        )
        rng = np.random.default_rng(seed)
        outputs.write_jsonl(
            run / "samples.jsonl",
            [
                {
                    "prompt_index": p,
                    "sample_index": j,
                    "token_ids": rng.integers(0, 90, 5 + j).tolist(),
                }
                for p in (0, 1)
                for j in (0, 1)
            ],
        )
    samples = f"{tmp_path / 'sample_base'}:base,{tmp_path / 'sample_rl'}:rl"
    out = pairs.run(get_config("pairs", samples=samples, out=str(tmp_path / "responses.jsonl")))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["group"] for r in rows] == ["base"] * 4 + ["rl"] * 4
    want = tok.encode(render_prompt(tok, "Say 7." + suffix, True), add_special_tokens=False)
    assert (
        rows[2]["prompt_ids"] == want
        and rows[3]["response_ids"]
        == [
            json.loads(x)
            for x in (tmp_path / "sample_base" / "samples.jsonl").read_text().splitlines()
        ][3]["token_ids"]
    )
    result = score.run(
        get_config(
            "score",
            base=str(base),
            rl=str(rl),
            data=str(out),
            out=str(tmp_path / "score"),
            mesh="fsdp:1",
        )
    )
    summary = json.loads((result / "summary.json").read_text())
    assert set(summary["groups"]) == {"base", "rl"} and summary["num_tokens"] == 2 * (5 + 6) * 2
    with pytest.raises(ValueError, match="samples: write DIR:GROUP, got"):
        runs.PairsSettings(samples=str(tmp_path))
    with pytest.raises(DataError, match="has no run.json and samples.jsonl"):
        runs.pairs(runs.PairsSettings(samples=f"{tmp_path}:g"))
