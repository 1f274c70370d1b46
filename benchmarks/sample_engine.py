"""`dlogp-sample` wall time with engine=paged vs engine=static on a tiny long-tailed workload.

Workload: the toy pair (`toy.build_pair`, random tiny models, V = 99, 3 stop ids: each step ends a
sequence with probability ~1/30, so lengths are geometric and capped at `--max-new`), mode
`extrapolate`, `--prompts` prompts of 4-29 characters, n = 4, every prompt in one call
(`batch_prompts = prompts`): static decodes one dense batch of prompts × 4 sequences until the
longest ends; paged serves them on `--max-seqs` slots, auto `kv_pages`. Each engine runs twice in
this process (cold: with compilation, as a one-off dlogp-sample; warm: compiled programs reused,
as the demo's many runs and the trainer's rounds). Printed, not asserted: wall times, their
ratios, and whether samples.jsonl token ids are identical.

Run:
    python benchmarks/sample_engine.py                 # 16 prompts, max_new 256
    python benchmarks/sample_engine.py --quick         # 4 prompts, max_new 32
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dlogp_jax import runs, toy


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-new", type=int, default=256)
    ap.add_argument("--max-seqs", type=int, default=16, help="paged sequence slots")
    args = ap.parse_args(argv)
    if args.quick:
        args.prompts, args.max_new, args.max_seqs = 4, 32, 4
    root = Path(tempfile.mkdtemp(prefix="sample_engine_"))
    base, rl = toy.build_pair(root / "pair", seed=0)
    rng = np.random.default_rng(0)
    chars = list("abcdefgh1234+=")
    rows = [
        {"prompt": "".join(rng.choice(chars, rng.integers(4, 30)))} for _ in range(args.prompts)
    ]
    (root / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = dict(
        base=str(base),
        rl=str(rl),
        data=str(root / "p.jsonl"),
        mode="extrapolate",
        gamma=0.1,
        threshold=-0.5,
        max_new_tokens=args.max_new,
        n=4,
        batch_prompts=args.prompts,
        grader_workers=0,
        chat_template=False,
    )
    wall = {}
    for engine, kw in (("static", {}), ("paged", dict(max_seqs=args.max_seqs))):
        for rep in ("cold", "warm"):
            t = time.perf_counter()
            out = runs.sample(
                runs.SampleSettings(
                    out=str(root / f"{engine}_{rep}"), engine=engine, **kw, **common
                )
            )
            wall[engine, rep] = time.perf_counter() - t
            s = json.loads((out / "summary.json").read_text())
            print(
                f"{engine:6s} {rep}: wall {wall[engine, rep]:7.1f} s, {s['new_tokens']} tokens, "
                f"mean length {s['mean_length']:.1f}, {s['finish_reasons']}, {s['engine']}"
            )
    rows = {
        e: [json.loads(x) for x in (root / f"{e}_warm/samples.jsonl").read_text().splitlines()]
        for e in ("static", "paged")
    }
    same = [r["token_ids"] for r in rows["static"]] == [r["token_ids"] for r in rows["paged"]]
    lengths = [r["length"] for r in rows["static"]]
    print(f"lengths: median {int(np.median(lengths))}, max {max(lengths)}; identical: {same}")
    for rep in ("cold", "warm"):
        print(f"{rep}: static / paged wall time = {wall['static', rep] / wall['paged', rep]:.2f}")


if __name__ == "__main__":
    main()
