"""Start-up shared by the runs: multi-host initialization, the mesh, which process writes."""

from __future__ import annotations

import logging as py_logging
import os

import jax
from absl import logging
from jax.experimental import multihost_utils

from dlogp_jax.runs.progress import setup_logging
from dlogp_jax.runs.settings import Distributed
from dlogp_jax.sharding import make_mesh


def init_runtime(mesh: str = "fsdp:-1", distributed: Distributed | None = None):
    """Initializes `jax.distributed` when asked and builds the (data, fsdp, tensor) mesh.

    Multi-host runs are asked for by `distributed.enabled` (`jax.distributed.initialize()` with
    its auto-detection on TPU pods / SLURM, or the coordinator fields when set) or by the
    environment variable `DLOGP_DISTRIBUTED=1` (what launch/*.sh set). A process that is already
    initialized is left as it is, so a notebook can start several runs.

    Args:
      mesh: mesh spec, e.g. "data:2,fsdp:2,tensor:2" (see `sharding.make_mesh`).
      distributed: multi-host settings; None: single host (unless DLOGP_DISTRIBUTED=1).
    Returns:
      the jax.sharding.Mesh over every process's devices.
    """
    setup_logging()
    _quiet_libraries()
    distributed = distributed or Distributed()
    wanted = distributed.enabled or os.environ.get("DLOGP_DISTRIBUTED") == "1"
    if wanted and not jax.distributed.is_initialized():
        kw = {}
        if distributed.coordinator_address:
            kw = dict(
                coordinator_address=distributed.coordinator_address,
                num_processes=distributed.num_processes,
                process_id=distributed.process_id,
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
    return make_mesh(mesh)


def is_writer() -> bool:
    """Only process 0 writes reports, logs and exports."""
    return jax.process_index() == 0


def wait_for_writer(name: str) -> None:
    """The other processes of a multi-host run wait here until process 0 has written `name`."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


class _QuietLibraries(py_logging.Filter):
    """Drops INFO chatter of orbax/grain (dozens of lines per checkpoint); warnings pass."""

    def filter(self, record) -> bool:
        noisy = any(s in record.pathname for s in ("orbax", "grain", "etils"))
        return record.levelno >= 30 or not noisy


def _quiet_libraries() -> None:
    handler = logging.get_absl_handler()
    if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
        handler.addFilter(_QuietLibraries())
    py_logging.getLogger("absl").addFilter(_QuietLibraries())
