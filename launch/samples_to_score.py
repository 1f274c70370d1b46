"""Turns `dlogp-sample` outputs into a `dlogp-score` input: one row per sample with the exact token ids.

    python launch/samples_to_score.py --out runs/aime_responses.jsonl \
        runs/sample_base:base runs/sample_rl:rl

Each positional argument is a dlogp-sample output directory (holding run.json and samples.jsonl)
and the group name its responses get (e.g. which model wrote them). The prompt ids are rebuilt the
way dlogp-sample built them (same data file, prompt suffix and chat template, read from run.json,
tokenized with the run's base tokenizer); the response ids are the sampled `token_ids`. Rows:
{"prompt_ids", "response_ids", "group", "prompt_index", "sample_index"}; dlogp-score then reports
Δlog p, entropies and KL per token, per group (summary.json "groups").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def convert(runs: list[tuple[Path, str]]) -> list[dict]:
    from dlogp_jax.runs import samples_to_score_rows

    return samples_to_score_rows(runs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="DIR:GROUP", help="dlogp-sample output dir:group")
    ap.add_argument("--out", required=True, help="the .jsonl file to write")
    args = ap.parse_args(argv)
    runs = []
    for spec in args.runs:
        path, sep, group = spec.rpartition(":")
        if not sep or not path or not group:
            ap.error(f"write DIR:GROUP, got {spec!r}")
        if not (Path(path) / "run.json").exists() or not (Path(path) / "samples.jsonl").exists():
            ap.error(f"{path} has no run.json and samples.jsonl (a dlogp-sample --config.out dir)")
        runs.append((Path(path), group))
    rows = convert(runs)
    from dlogp_jax.outputs import write_jsonl

    write_jsonl(args.out, rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
