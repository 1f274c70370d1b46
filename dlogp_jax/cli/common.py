"""Shared start-up for the absl CLIs: logging, multi-host initialization, the mesh."""

from __future__ import annotations

import logging as py_logging
import os

import jax
from absl import logging

from dlogp_jax.sharding import make_mesh


class _QuietLibraries(py_logging.Filter):
    """Drops INFO chatter of orbax/grain (dozens of lines per checkpoint); warnings pass."""

    def filter(self, record) -> bool:
        noisy = any(s in record.pathname for s in ("orbax", "grain", "etils"))
        return record.levelno >= 30 or not noisy


def _quiet() -> None:
    handler = logging.get_absl_handler()
    if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
        handler.addFilter(_QuietLibraries())
    py_logging.getLogger("absl").addFilter(_QuietLibraries())


def init_runtime(config) -> jax.sharding.Mesh:
    """Initializes `jax.distributed` when configured and builds the mesh from `config.mesh`.

    Multi-host is driven by `config.distributed` (True: `jax.distributed.initialize()` with its
    auto-detection on TPU pods / SLURM, or the coordinator fields when set) or by the environment
    variable `DLOGP_DISTRIBUTED=1`.
    """
    _quiet()
    dist = config.get("distributed", None)
    if (dist is not None and dist.enabled) or os.environ.get("DLOGP_DISTRIBUTED") == "1":
        kw = {}
        if dist is not None and dist.coordinator_address:
            kw = dict(
                coordinator_address=dist.coordinator_address,
                num_processes=dist.num_processes,
                process_id=dist.process_id,
            )
        jax.distributed.initialize(**kw)
    logging.info(
        "process %d/%d, %d local / %d global devices (%s)",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
        jax.devices()[0].platform,
    )
    return make_mesh(config.mesh)


def is_writer() -> bool:
    """Only process 0 writes reports, logs and exports."""
    return jax.process_index() == 0


def fail(message: str) -> None:
    """Ends the program with one clear error line (no traceback) and exit status 1."""
    raise SystemExit(f"error: {message}")


def run_app(run_fn, config_name: str, extra_errors: tuple[type[Exception], ...] = ()) -> None:
    """Defines `--config` (default `configs/<config_name>.py`) and runs `run_fn(config)` as an app.

    The flag is defined here, at program start, not at import: several CLIs can then be imported in
    one process (tests, notebooks). User errors (bad files, rows, checkpoints, settings, and
    `extra_errors`) end with one line, no traceback.
    """
    from absl import app
    from ml_collections import config_flags

    from dlogp_jax.data.rows import DataError
    from dlogp_jax.model.config import UnsupportedModelError
    from dlogp_jax.model.hf_weights import CheckpointError

    errors = (DataError, CheckpointError, UnsupportedModelError, ValueError, *extra_errors)
    config = config_flags.DEFINE_config_file(
        "config", default_config(config_name), lock_config=True
    )

    def main(argv):
        if len(argv) > 1:
            fail(f"unexpected arguments {argv[1:]}; settings go through --config.<field>=<value>.")
        try:
            run_fn(config.value)
        except errors as e:
            fail(str(e))

    app.run(main)


def default_config(name: str) -> str:
    """Path of `configs/<name>.py` in the source tree (the default `--config`)."""
    from pathlib import Path

    return str(Path(__file__).resolve().parents[2] / "configs" / f"{name}.py")


def load_config(name: str, arg: str | None = None):
    """`configs/<name>.py:get_config(arg)` of the source tree, as `--config=configs/<name>.py:arg`
    would give it (unlocked: callers fill in fields before running a CLI's `run`)."""
    import importlib.util

    path = default_config(name)
    spec = importlib.util.spec_from_file_location(f"dlogp_configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def local_path(path: str, field: str) -> str:
    """Refuses URL paths (`gs://...`) for outputs/inputs that are read and written with local file
    APIs; Cloud Storage works through a FUSE mount (see docs/operators.md)."""
    if "://" in str(path):
        fail(
            f"{field}={path!r}: URL paths are not supported here; mount the bucket with Cloud "
            "Storage FUSE (e.g. gcsfuse BUCKET /gcs/BUCKET, or launch/tpu_pod.sh --bucket) and pass "
            "/gcs/BUCKET/... instead."
        )
    return path


def resolve_inputs(config, build_demo, name: str):
    """(out, base, rl, data): the configured paths, or the demo's (built under `out`)."""
    from pathlib import Path

    out = Path(local_path(config.out, "out"))
    base, rl, data = config.base, config.rl, config.data
    if config.demo:
        base, rl, data = build_demo(out)
    if not base or not data:
        fail(f"set --config.base=DIR and --config.data=FILE (or use configs/{name}.py:demo).")
    return out, base, rl, data
