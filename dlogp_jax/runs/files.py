"""Resumable run files: the settings guard, whole groups of jsonl lines, durable appends.

A run writes its settings to `run.json` once; a re-run with the same output directory continues
where it stopped and refuses other settings. Results are appended a batch at a time and flushed to
disk, so a kill loses at most the batch in flight; on resume, a torn last line and incomplete groups
are dropped and redone. Whole-file results go through `dlogp_jax.outputs` (atomic writes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dlogp_jax import outputs
from dlogp_jax.errors import DataError


def check_run_file(out: Path, settings: dict[str, Any], *, write: bool) -> None:
    """Refuses to continue results made with other settings; records the settings otherwise.

    Args:
      out: the run's output directory (holding `run.json`).
      settings: the JSON-able settings that determine the results.
      write: whether this process records them (process 0 only).
    Raises:
      DataError: `run.json` holds different settings (the message lists them, before and now).
    """
    run_file = out / "run.json"
    if run_file.exists():
        before = json.loads(run_file.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise DataError(
                f"{out} holds samples made with other settings {changed} (before, now); use a new "
                "--config.out or the same settings to continue."
            )
    elif write:
        outputs.write_json(run_file, settings)


def read_groups(path: Path, key: str, size: int) -> dict[Any, list[dict[str, Any]]]:
    """The jsonl rows already written, grouped by `row[key]`; only groups of `size` rows are kept.

    A torn last line (killed mid-write) is dropped; a corrupt line elsewhere raises DataError.
    """
    groups: dict[Any, list[dict[str, Any]]] = {}
    if not path.exists():
        return groups
    lines = path.read_text().splitlines()
    for k, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break
            raise DataError(
                f"{path}:{k + 1}: corrupt line; move the file away to start over."
            ) from None
        groups.setdefault(row[key], []).append(row)
    return {g: rows for g, rows in groups.items() if len(rows) == size}


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Appends whole lines and flushes them to disk (a kill loses at most the batch in flight)."""
    with path.open("a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())
