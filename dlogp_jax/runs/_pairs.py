"""`pairs`: `sample` outputs turned into one `score` input, one row per sample with the exact ids.

The prompt ids are rebuilt the way `sample` built them (the run's data file, prompt suffix and chat
template from its run.json, tokenized with its base tokenizer); the response ids are the sampled
`token_ids`. Rows {"prompt_ids", "response_ids", "group", "prompt_index", "sample_index"}: `score`
then reports Δlog p, entropies and KL per token, per group (summary.json "groups"), and its
tokens.parquet keeps prompt_index / sample_index to join back to samples.jsonl.
"""

from __future__ import annotations

from pathlib import Path

from absl import logging

from dlogp_jax import outputs
from dlogp_jax.errors import DataError
from dlogp_jax.runs._sample import samples_to_score_rows
from dlogp_jax.runs.progress import setup_logging
from dlogp_jax.runs.settings import PairsSettings


def pairs(settings: PairsSettings) -> Path:
    """Writes the `score` input of `settings.samples`; returns its path.

    Raises:
      DataError: a directory that is not a dlogp-sample output (run.json and samples.jsonl).
    """
    setup_logging()
    runs = settings.sample_runs
    for path, _ in runs:
        if not (Path(path) / "run.json").is_file() or not (Path(path) / "samples.jsonl").is_file():
            raise DataError(
                f"samples: {path} has no run.json and samples.jsonl; give dlogp-sample output "
                "directories (their --config.out)."
            )
    rows = samples_to_score_rows(runs)
    out = outputs.write_jsonl(settings.out, rows)
    logging.info("wrote %d rows from %d sample runs to %s", len(rows), len(runs), out)
    return Path(out)
