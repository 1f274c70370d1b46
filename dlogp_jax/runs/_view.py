"""`view`: one self-contained HTML page of a `score` or `sample` output (the `dlogp-view` tool).

The input is checked before anything is read in full (one DataError line naming the problem and the
fix); the page (`analysis.view_page`) is written atomically to `settings.out`.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import logging

from dlogp_jax import outputs
from dlogp_jax.analysis import view_data, view_page
from dlogp_jax.errors import DataError
from dlogp_jax.model.tokenizer import load_tokenizer
from dlogp_jax.runs import files
from dlogp_jax.runs.settings import ViewSettings

LARGE_MIB = 200  # a page above this size loads slowly (its JSON is parsed at once)


def view(settings: ViewSettings) -> Path:
    """Writes the token viewer of `settings.input`; returns the HTML file's path.

    Raises:
      DataError: the input is not a score/sample output, lacks Δlog p, or lacks the criterion.
    """
    src = Path(settings.input)
    kind = check_input(src, settings)  # before the lock, which would create a missing `src`
    out = Path(settings.out) if settings.out else src / "view.html"
    with files.locked(out.parent, field="out", name=f".{out.name}.lock"):
        return _view(settings, src, out, kind)


def _view(settings: ViewSettings, src: Path, out: Path, kind: str) -> Path:
    if kind == "score":
        payload = view_data.from_score_dir(src, settings.max_responses)
    else:
        base = settings.tokenizer or json.loads((src / "run.json").read_text())["base"]
        payload = view_data.from_sample_dir(src, load_tokenizer(base), settings.max_responses)
    if settings.criterion not in payload["colourings"]:
        raise DataError(
            f"criterion={settings.criterion!r}: {src} holds {', '.join(payload['colourings'])} "
            "only (a dlogp-sample output records Δlog p; dlogp-score records entropy and KL too)."
        )
    page = view_page.render_html(
        payload,
        title=settings.title or f"dlogp-view: {src}",
        threshold=settings.threshold,
        criterion=settings.criterion,
    )
    path = outputs.write_text(out, page)
    size = path.stat().st_size / 2**20
    logging.info(
        "wrote %s: %d responses, %d tokens, %.1f MiB",
        path,
        len(payload["responses"]),
        payload["num_tokens"],
        size,
    )
    if size > LARGE_MIB:
        logging.warning(
            "%s is %.0f MiB: browsers get slow to load pages this large; --config.max_responses=N "
            "keeps the first N responses.",
            path,
            size,
        )
    return path


def check_input(src: Path, settings: ViewSettings) -> str:
    """ "score" or "sample": which output `src` is, after the cheap checks (no table is read)."""
    if not src.is_dir():
        raise DataError(
            f"input {str(src)!r} is not a directory: give a dlogp-score or dlogp-sample output."
        )
    files.check_complete(src)
    if (src / "tokens.parquet").is_file():
        import pyarrow.parquet as pq

        if not (src / "summary.json").is_file():
            raise DataError(f"{src}/summary.json is missing: is {src} a whole dlogp-score output?")
        names = pq.read_schema(src / "tokens.parquet").names
        if "dlogp" not in names:
            raise DataError(
                f"{src}/tokens.parquet has no dlogp column: score with an RL model (--config.rl=DIR)."
            )
        return "score"
    if (src / "samples.jsonl").is_file():
        if not (src / "run.json").is_file():
            raise DataError(f"{src}/run.json is missing: is {src} a whole dlogp-sample output?")
        record = json.loads((src / "run.json").read_text())
        if not record.get("rl"):
            raise DataError(f"{src} was sampled without an RL model: it records no Δlog p.")
        tokenizer = settings.tokenizer or record.get("base", "")
        if not Path(tokenizer).is_dir():
            raise DataError(
                f"tokenizer checkpoint {tokenizer!r} (run.json's base) is not a directory: "
                "set --config.tokenizer=DIR to the base model's checkpoint."
            )
        return "sample"
    raise DataError(
        f"{src} holds neither tokens.parquet (a dlogp-score output) nor samples.jsonl (a "
        "dlogp-sample output)."
    )
