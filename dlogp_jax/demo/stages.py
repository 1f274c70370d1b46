"""Stage caching for multi-stage pipelines (the demo): a finished stage is not run again.

A stage is a named function of its settings. When it finishes, `stages/<name>.json` records the
settings and the JSON result atomically; a later call with equal settings returns the recorded result
without running the function. A stage killed midway leaves no record and runs again; the tools it
calls resume their own partial outputs (dlogp-sample keeps finished prompts, dlogp-train restores its
newest checkpoint), so a killed run loses at most the work in flight. Changed settings re-run the
stage and overwrite its record.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlogp_jax.outputs import write_json


def jsonable(x: Any) -> Any:
    """`x` as it reads back from a JSON file (tuples -> lists, numpy scalars refused loudly)."""
    return json.loads(json.dumps(x))


def record_path(workdir: str | Path, name: str) -> Path:
    """Where stage `name` (may contain '/') records its result."""
    return Path(workdir) / "stages" / f"{name}.json"


def lookup(workdir: str | Path, name: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Stage `name`'s record ({settings, result, seconds}) if it finished with these settings."""
    path = record_path(workdir, name)
    if not path.is_file():
        return None
    before = json.loads(path.read_text())
    return before if before.get("settings") == jsonable(settings) else None


def cached(
    workdir: str | Path,
    name: str,
    settings: dict[str, Any],
    fn: Callable[[], Any],
    log_fn: Callable[[str], None] = print,
) -> Any:
    """Returns stage `name`'s result: recorded (same settings) or computed by `fn()` and recorded.

    Args:
      workdir: the pipeline's work directory (records go under `stages/`).
      name: stage name, unique in the pipeline.
      settings: JSON-serialisable; a record with different settings is stale.
      fn: computes the result (JSON-serialisable).
      log_fn: receives one line when a stage starts, finishes or is reused.
    """
    before = lookup(workdir, name, settings)
    if before is not None:
        log_fn(f"[{name}] done before, reusing ({before.get('seconds', 0):.0f} s then)")
        return before["result"]
    if record_path(workdir, name).is_file():
        log_fn(f"[{name}] settings changed: running again")
    log_fn(f"[{name}] running")
    start = time.perf_counter()
    result = fn()
    return record(workdir, name, settings, result, time.perf_counter() - start, log_fn)


def record(
    workdir: str | Path,
    name: str,
    settings: dict[str, Any],
    result: Any,
    seconds: float,
    log_fn: Callable[[str], None] = print,
) -> Any:
    """Records stage `name` as finished (for work done outside `cached`, e.g. in a subprocess)."""
    result = jsonable(result)
    entry = {"settings": jsonable(settings), "result": result, "seconds": seconds}
    write_json(record_path(workdir, name), entry)
    log_fn(f"[{name}] finished in {seconds:.0f} s")
    return result


def fresh_dir(path: Path, settings: dict[str, Any]) -> Path:
    """`path` for a tool run with `settings`: kept (to resume) if made with the same settings, else
    emptied, so a tool never resumes from another setting's partial output.

    The settings are recorded in `path/.demo_settings.json`.
    """
    marker = path / ".demo_settings.json"
    want = jsonable(settings)
    if path.exists() and (not marker.is_file() or json.loads(marker.read_text()) != want):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    write_json(marker, want)
    return path


def seconds_by_stage(workdir: str | Path) -> dict[str, float]:
    """{stage name: seconds it took when it ran} for every recorded stage."""
    root = Path(workdir) / "stages"
    return {
        str(p.relative_to(root).with_suffix("")): json.loads(p.read_text()).get("seconds", 0.0)
        for p in sorted(root.rglob("*.json"))
    }
