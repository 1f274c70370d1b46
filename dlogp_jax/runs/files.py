"""Resumable run files: the output lock, `run.json`, whole groups of jsonl lines, durable appends,
output sets a reader never sees mixed.

* `locked(dir)`: one run at a time per output directory (an exclusive `fcntl.flock` on
  `dir/.lock`, which holds the owner's pid; the kernel releases it on any exit, so a lock left by a
  dead process is taken over, with a message). Taking it also proves the directory writable, before
  any work.
* `run.json`: the settings that determine the results (a re-run with the same output directory
  continues where it stopped and refuses other settings), plus one `sessions` entry per process
  start (package version, git commit, jax/jaxlib versions, devices, start/end time, status).
* Results are appended a batch at a time and flushed to disk, so a kill loses at most the batch in
  flight; on resume, a torn last line and incomplete groups are dropped and redone.
* `output_set(dir)`: whole-file results (each written atomically by `dlogp_jax.outputs`) are
  written between a `.writing` marker and `manifest.json`; `check_complete` refuses a directory
  whose set is half-written (readers never take a mix of old and new files for a result).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from absl import logging

from dlogp_jax import outputs
from dlogp_jax.errors import DataError

LOCK_NAME = ".lock"
WRITING = ".writing"
MANIFEST = "manifest.json"
RESERVED = ("sessions", "changes")  # run.json keys that are not settings


# ------------------------------------------------------------------------------ the lock
@contextlib.contextmanager
def locked(
    directory: str | Path,
    *,
    field: str = "out",
    name: str = LOCK_NAME,
    log: Callable[[str], None] = logging.warning,
) -> Iterator[Path]:
    """Holds an exclusive lock on an output directory (created) for the `with` block.

    Args:
      directory: the run's output directory. field: its setting, for messages (`out`, `workdir`).
      name: the lock file's name inside it (a tool writing one file beside others uses its own).
      log: where the take-over of a dead process's lock is reported.
    Raises:
      DataError: another live process holds the lock, or the directory cannot be created or
        written (a file, read-only, full disk): before any work.
    """
    directory = Path(directory)
    path = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise DataError(_unwritable(directory, field, e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataError(_unwritable(directory, field, e)) from None
        raise DataError(
            f"{field}={str(directory)!r} is in use by another run (pid {_pid_in(path) or '?'}, "
            f"lock {path}): wait for it to end, or give another --config.{field}."
        ) from None
    try:
        before = _pid_in(path)
        if before and before != os.getpid():
            log(f"{path}: taking over the lock of process {before}, which has ended.")
        _write_pid(fd, directory, field)
        yield directory
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no pid: the next run sees a clean hand-over
        os.close(fd)  # releases the flock


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _write_pid(fd: int, directory: Path, field: str) -> None:
    """Writes our pid and syncs it: a read-only or full disk fails here, before any work."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
    except OSError as e:
        raise DataError(_unwritable(directory, field, e)) from None


def _unwritable(directory: Path, field: str, e: OSError) -> str:
    reason = e.strerror or type(e).__name__
    if directory.exists() and not directory.is_dir():
        reason = "it is a file"
    return (
        f"{field}={str(directory)!r} cannot be written ({reason}): give a writable directory "
        f"with --config.{field}=DIR."
    )


def check_input_not_output(inputs: dict[str, str], out: str | Path, field: str = "out") -> None:
    """Refuses an output directory that is one of the run's input files (it would be clobbered)."""
    target = Path(out).resolve()
    for name, value in inputs.items():
        if value and Path(value).resolve() == target:
            raise DataError(f"{field}={str(out)!r} is also {name}: give another --config.{field}.")


# ------------------------------------------------------------------------------ run.json
def environment() -> dict[str, Any]:
    """What produced a run: package version, git commit (None outside a checkout), jax, jaxlib,
    Python, the devices (platform, kind, count) and the process count."""
    import platform

    import jax
    import jaxlib

    devices = jax.devices()
    return {
        "package_version": _version("dlogp_jax"),
        "git_commit": _git_commit(),
        "jax": jax.__version__,
        "jaxlib": getattr(jaxlib, "__version__", _version("jaxlib")),
        "python": platform.python_version(),
        "host": platform.node(),
        "devices": {
            "platform": devices[0].platform,
            "kind": devices[0].device_kind,
            "count": len(devices),
            "local_count": jax.local_device_count(),
        },
        "processes": jax.process_count(),
    }


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD of the checkout holding this package (a dirty tree gets "+dirty"); None otherwise."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        run = dict(cwd=root, capture_output=True, text=True, timeout=5, check=True)
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], **run).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def read_run_file(out: str | Path) -> dict[str, Any] | None:
    """`out/run.json`, or None when there is none.

    Raises:
      DataError: it is not a readable JSON object (names the file and the fix).
    """
    run_file = Path(out) / "run.json"
    if not run_file.exists():
        return None
    try:
        record = json.loads(run_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(
            f"{run_file}: unreadable ({type(e).__name__}); move it away to start over."
        ) from None
    if not isinstance(record, dict):
        raise DataError(f"{run_file}: not a JSON object; move it away to start over.")
    return record


class RunRecord:
    """`out/run.json` kept by one process start: `start` records the settings (and `changes`)
    and appends a `sessions` entry (`environment()`, start time); `end` adds the end time and the
    status ("finished", "failed: <error>", "interrupted: <signal>"). Nothing is written when
    `write` is false (processes other than 0)."""

    def __init__(self, out: str | Path, *, write: bool):
        self.path = Path(out) / "run.json"
        self.write = write
        self.record: dict[str, Any] = read_run_file(out) or {}
        self.entry: dict[str, Any] | None = None

    def start(self, settings: dict[str, Any], *, changes: list[dict] = ()) -> None:
        """Records `settings` (current values), appends `changes` and a new session entry."""
        if not self.write:
            return
        self.record.update(settings)
        if changes:
            self.record.setdefault("changes", []).extend(changes)
        self.entry = {**environment(), "started": _now(), "ended": None, "status": "running"}
        self.record.setdefault("sessions", []).append(self.entry)
        outputs.write_json(self.path, self.record)

    def end(self, status: str) -> None:
        """Closes the session entry (a failing write, e.g. a full disk, never hides the run's
        own error)."""
        if not self.write or self.entry is None:
            return
        self.entry.update(ended=_now(), status=status)
        with contextlib.suppress(OSError):
            outputs.write_json(self.path, self.record)


@contextlib.contextmanager
def session(out: str | Path, settings: dict[str, Any], *, write: bool) -> Iterator[RunRecord]:
    """A `RunRecord` started with `settings` for the `with` block and ended with its outcome.
    Call after the settings guard (`check_run_file`)."""
    run = RunRecord(out, write=write)
    run.start(settings)
    try:
        yield run
    except BaseException as e:
        run.end(status_of(e))
        raise
    run.end("finished")


def status_of(e: BaseException) -> str:
    """The run.json status of a run that ended with `e`."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted: SIGINT"
    return f"failed: {type(e).__name__}: {str(e)[:300]}"


# ------------------------------------------------------------------------------ output sets
@contextlib.contextmanager
def output_set(out: str | Path) -> Iterator[Path]:
    """The whole-file results written in the block form one set: `.writing` marks it in progress
    (set first, so a reader never takes old and new files for one result), `manifest.json` lists
    the files with their sizes when the block ends without error. A failed block leaves the marker
    (a reader refuses the directory) and no temporary file (`outputs` cleans its own)."""
    out = Path(out)
    (out / MANIFEST).unlink(missing_ok=True)
    outputs.write_text(out / WRITING, f"{os.getpid()} {_now()}\n")
    yield out
    names = sorted(n for n in os.listdir(out) if not n.startswith(".") and n != MANIFEST)
    sizes = {n: (out / n).stat().st_size for n in names if (out / n).is_file()}
    outputs.write_json(out / MANIFEST, {"files": sizes, "written": _now()})
    (out / WRITING).unlink(missing_ok=True)


def check_complete(directory: str | Path) -> None:
    """Refuses an output directory whose result set is half-written (a run failed or is writing).

    Raises:
      DataError: `.writing` is present.
    """
    if (Path(directory) / WRITING).exists():
        raise DataError(
            f"{directory}: its outputs are incomplete (a run is writing them or failed while "
            "writing); wait for it, or re-run it with the same settings."
        )


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
        before = read_run_file(out)
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            raise DataError(
                f"{out} holds results made with other settings {changed} (before, now); use a new "
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
