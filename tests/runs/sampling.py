"""Shared inputs of the `runs.sample` tests: a tiny base/RL pair and five prompts."""

import json

from dlogp_jax import runs, toy


def build_inputs(root):
    """(base dir, RL dir, prompts file) under `root`: 5 prompts of 5, 6, 1, 19 and 5 tokens
    (characters), the first 4 with answers."""
    base, rl = toy.build_pair(root, seed=3)
    texts = ["1+1=?", "Say 7.", "x", "What is 12+30 then?", "9-4=?"]
    rows = [{"prompt": t, "answer": str(i)} for i, t in enumerate(texts[:4])]
    rows.append({"prompt": texts[4]})
    data = root / "p.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return base, rl, data


def settings(inputs, out, **kw) -> runs.SampleSettings:
    """Short two-model settings on `inputs` (3 samples per prompt, 2 prompts per call)."""
    base, rl, data = inputs
    fields = dict(
        base=str(base),
        rl=str(rl),
        data=str(data),
        out=str(out),
        threshold=-0.5,
        gamma=0.2,
        max_new_tokens=10,
        n=3,
        batch_prompts=2,  # 3 calls, the last one partial
        grader_workers=0,
        chat_template=False,
    )
    return runs.SampleSettings(**{**fields, **kw})


def read_run(out):
    """(samples.jsonl rows, summary.json) of a sample output directory."""
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "summary.json").read_text())
