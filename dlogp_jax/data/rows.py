"""The one table reader of every CLI (jsonl, parquet, `save_to_disk` directory) and row validation.

Rows are plain dicts. Every malformed row raises `DataError` naming the file, the 1-based line (jsonl)
or row (parquet, `save_to_disk`) and the field, before any work starts, so a bad file never
half-runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlogp_jax.errors import DataError


class Row(dict):
    """A jsonl row: a plain dict that also knows its 1-based line (blank lines count)."""

    __slots__ = ("line",)

    def __init__(self, values: dict[str, Any], line: int):
        super().__init__(values)
        self.line = line


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a `.jsonl`/`.json` file, a `.parquet` file or a `save_to_disk` directory.

    Rows come as written: jsonl rows keep exactly their own fields (a `Row`, which remembers its
    line for error messages); parquet and `save_to_disk` rows hold every column of the table.
    A `.json` file may also hold one JSON list of objects.

    Raises:
      DataError: missing or unreadable path, unknown extension, non-UTF-8 text, unreadable
        parquet / directory, a line that is not a JSON object, or no rows at all.
    """
    path = Path(path)
    if path.is_dir():
        return _not_empty(path, _read_dataset_dir(path))
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _not_empty(path, _read_parquet(path))
    if suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: unknown data format {suffix!r}; use .jsonl or .parquet.")
    text = _read_text(path)
    if suffix == ".json" and text.lstrip().startswith("["):
        rows = _read_json_list(path, text)
    else:
        rows = _read_jsonl(path, text)
    return _not_empty(path, rows)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); re-encode it as UTF-8."
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror}); check its permissions.") from None


def _not_empty(path: Path, rows: list) -> list:
    if not rows:
        raise DataError(f"{path}: holds no rows; give a data file with at least one row.")
    return rows


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i}: not valid JSON ({e.msg}).") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}.")
        rows.append(Row(row, i))
    return rows


def _read_json_list(path: Path, text: str) -> list[dict[str, Any]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of objects or one object per line.")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(
                f"{path} row {i + 1}: expected a JSON object, got {type(row).__name__}."
            )
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot be read as parquet ({type(e).__name__}: {e}).") from None


def _read_dataset_dir(path: Path) -> list[dict[str, Any]]:
    import datasets

    try:
        return datasets.load_from_disk(str(path)).to_list()
    except FileNotFoundError as e:
        raise DataError(
            f"{path}: a directory, but not one written by `datasets.Dataset.save_to_disk` ({e})."
        ) from None


def where(path: str | Path, index: int, row: dict[str, Any]) -> str:
    """'file:line' for jsonl rows, 'file row N' for other rows (1-based), for error messages."""
    line = getattr(row, "line", None)
    return f"{path}:{line}" if line is not None else f"{path} row {index + 1}"


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
