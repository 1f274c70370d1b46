"""`plan`: what a run would do, its inputs checked, nothing written (the CLIs' `--dry_run`).

Generic over the settings dataclasses: the settings are already validated on construction; here
each input the run would read is opened the cheap way (a checkpoint's config.json, every row of a
data file) and the outputs are named, so a bad path or file fails in a second instead of after
the model load.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from dlogp_jax.data.rows import read_rows
from dlogp_jax.errors import DataError
from dlogp_jax.model import hf_weights

# Fields that name inputs, by kind; a section's fields are "section.field".
CHECKPOINT_FIELDS = ("base", "rl", "init_from", "tokenizer")
DATA_FIELDS = ("data", "eval.data")
RUN_DIR_FIELDS = ("input", "inputs")  # a directory, or a tuple of them
OUTPUT_FIELDS = ("out", "workdir")


def plan(settings: Any) -> str:
    """A description of the run `settings` asks for, after checking every input it names.

    Args:
      settings: a settings dataclass (runs.ScoreSettings, SampleSettings, TrainSettings, ...).
    Returns:
      several lines: the run, each input (what it holds), each output (new or resumed), the
        settings as JSON.
    Raises:
      CheckpointError / UnsupportedModelError: a checkpoint directory that cannot be read.
      DataError: a data file that cannot be read, or a run directory that does not exist.
    """
    fields = _flat(settings)
    lines = [f"dry run of {type(settings).__name__} (nothing is written):"]
    if fields.get("demo"):
        lines.append("  inputs: tiny demo checkpoints and data, built under the output first")
    elif fields.get("toy_task"):
        lines.append("  inputs: the built-in toy task (dlogp_jax.toy)")
    if not fields.get("demo"):
        lines += [_checkpoint(k, v) for k, v in fields.items() if _is(k, CHECKPOINT_FIELDS, v)]
        lines += [_data(k, v) for k, v in fields.items() if _is(k, DATA_FIELDS, v)]
        lines += [
            _run_dir(k, d)
            for k, v in fields.items()
            if k in RUN_DIR_FIELDS
            for d in ((v,) if isinstance(v, str) else v)
            if d
        ]
    lines += [_output(k, v) for k, v in fields.items() if _is(k, OUTPUT_FIELDS, v)]
    body = json.dumps(dataclasses.asdict(settings), indent=2, default=str)
    return "\n".join([*lines, "  settings: " + body.replace("\n", "\n  ")])


def _flat(settings: Any) -> dict[str, Any]:
    """Top-level fields and one level of sections ("eval.data")."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in dataclasses.asdict(value).items()})
        else:
            out[f.name] = value
    return out


def _is(name: str, kinds: tuple[str, ...], value: Any) -> bool:
    return name in kinds and isinstance(value, str) and bool(value)


def _checkpoint(name: str, path: str) -> str:
    config = hf_weights.read_config(path)  # raises naming the directory
    return (
        f"  {name}: {path} ({config.model_type}, {config.num_layers} layers, width "
        f"{config.hidden_size}, vocab {config.vocab_size}, {config.num_params / 1e6:.1f}M params)"
    )


def _data(name: str, path: str) -> str:
    rows = read_rows(path)  # raises naming the file and the bad line
    columns = sorted({k for row in rows[:100] for k in row})
    return f"  {name}: {path} ({len(rows)} rows; columns {', '.join(columns)})"


def _run_dir(name: str, path: str) -> str:
    if not Path(path).is_dir():
        raise DataError(f"{name}={path!r}: no such directory.")
    return f"  {name}: {path} ({', '.join(sorted(p.name for p in Path(path).iterdir()))})"


def _output(name: str, path: str) -> str:
    p = Path(path)
    if p.is_dir() and any(p.iterdir()):
        return f"  {name}: {path} (exists: a run continues there or refuses other settings)"
    return f"  {name}: {path} ({'exists' if p.exists() else 'new'})"
