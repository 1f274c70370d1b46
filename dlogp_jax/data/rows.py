"""Reading user data files (jsonl or parquet) row by row, with errors that name the line.

Rows are plain dicts. Every malformed row raises `DataError` naming the file, the 1-based line (jsonl)
or row (parquet) and the field, before any work starts, so a bad file never half-runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlogp_jax.errors import DataError


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Reads every row of a `.jsonl`/`.json` (one object per line) or `.parquet` file.

    Raises:
      DataError: missing file, unknown extension, or a line that is not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: unknown data format {suffix!r}; use .jsonl or .parquet.")
    rows = []
    with path.open() as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not valid JSON ({e.msg}).") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}.")
            row["_line"] = i
            rows.append(row)
    return rows


def where(path: str | Path, index: int, row: dict[str, Any]) -> str:
    """'file:line' for jsonl rows, 'file row N' for parquet rows (1-based), for error messages."""
    return f"{path}:{row['_line']}" if "_line" in row else f"{path} row {index + 1}"


def get_text(row: dict[str, Any], field: str, loc: str) -> str:
    """The string field `field`, or DataError naming where and why."""
    if field not in row or row[field] is None:
        raise DataError(f"{loc}: missing field {field!r}.")
    value = row[field]
    if not isinstance(value, str):
        raise DataError(f"{loc}: field {field!r} must be a string, got {type(value).__name__}.")
    return value


def get_ids(row: dict[str, Any], field: str, loc: str, vocab_limit: int) -> list[int]:
    """The token-id list `field`, validated to be ints in [0, vocab_limit)."""
    if field not in row or row[field] is None:
        raise DataError(f"{loc}: missing field {field!r}.")
    ids = row[field]
    if not isinstance(ids, Sequence) or isinstance(ids, str):
        raise DataError(f"{loc}: field {field!r} must be a list of token ids.")
    for j, t in enumerate(ids):
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab_limit:
            raise DataError(
                f"{loc}: field {field!r}[{j}] = {t!r} is not a token id in [0, {vocab_limit})."
            )
    return list(ids)
