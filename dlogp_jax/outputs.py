"""Atomic writes: every result file appears whole or not at all (temp file + rename).

The temporary file (`.<name>.<random>`) is created beside the target, so the final `os.replace` is a
rename within one file system; a failing writer leaves the previous file (if any) untouched and no
temporary file behind. Parent directories are created. Results get the permissions the user's umask
gives (`mkstemp`/`mkdtemp` would leave them 0600/0700, unreadable to a colleague or a server).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read by setting (restored at once)
    os.umask(mask)
    return mask


def plain_mode(path: str | Path) -> None:
    """Gives a file 0666 and a directory 0777 less the umask: what `open`/`mkdir` would give."""
    full = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, full & ~umask())


def _atomic(path: str | Path, write: Callable[[str], object]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    plain_mode(tmp)  # mkstemp creates 0600; writers keep the mode of the file they overwrite
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Writes text atomically; returns the path."""
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | Path, obj: Any) -> Path:
    """Writes JSON atomically: indented by 2, a final newline, NumPy scalars and arrays as numbers
    and lists. NaN and infinities are written as Python's `NaN` / `Infinity` (which `json` reads
    back), not as null.

    Raises:
      TypeError: for other non-JSON values (before anything is written).
    """
    return write_text(path, json.dumps(obj, indent=2, default=_default) + "\n")


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Writes one JSON object per line (compact, NumPy values converted) atomically."""
    return write_text(path, "".join(json.dumps(r, default=_default) + "\n" for r in rows))


def write_parquet(path: str | Path, columns: dict[str, Any]) -> Path:
    """Writes a dict of equal-length columns as a parquet table atomically.

    Args:
      columns: name -> [rows] values: arrays (or anything `np.asarray` takes) become typed columns;
        Python lists are given to pyarrow as they are, so a list of lists becomes a list column.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {k: np.asarray(v) if not isinstance(v, list) else v for k, v in columns.items()}
    )
    return _atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_parquet(path: str | Path, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """A parquet table as a dict of NumPy columns (all in file order, or the named ones).

    Returns:
      name -> [rows] array; a list column is an object array of per-row arrays.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    return {c: table[c].to_numpy(zero_copy_only=False) for c in table.column_names}


def _default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")
