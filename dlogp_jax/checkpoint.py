"""Orbax checkpoints of a training run: TrainState, data-iterator state and run metadata.

Resume precedence (big_vision style), applied by the trainer:
  1. the newest checkpoint in the run's own work directory (a restarted or preempted run);
  2. otherwise `init_from` (an HF checkpoint directory) as step 0;
  3. otherwise random init (tiny/debug presets only).
This module passes URL paths (`gs://...`) to orbax untouched; the CLIs, which also write metrics and
exports with local file APIs, take local paths (Cloud Storage through a FUSE mount, see
docs/operators.md). Saves are asynchronous; `wait()` blocks until the
last one is durable (done before exiting and on SIGTERM).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def abstract_like(tree):
    """ShapeDtypeStructs (with shardings) of a concrete tree of jax.Arrays: the restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with the three items this project saves.

    Args:
      directory: the run's checkpoint directory (created; a local path is made absolute, a URL
        such as `gs://...` is passed to orbax as is). Steps are its subdirectories `<step>/`.
      max_to_keep: keep-last-K: older steps are deleted as new ones are saved.
    """

    def __init__(self, directory: str, max_to_keep: int = 3):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.directory = _absolute(directory)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest saved step (what a restarted run resumes from), or None in a fresh run."""
        return self._manager.latest_step()

    def save(self, step: int, state, data_state: dict[str, Any], meta: dict[str, Any]) -> None:
        """Starts an async save of `state` (sharded arrays), the data iterator state and metadata.

        Args:
          step: the checkpoint's step (its directory name). state: any pytree of jax.Arrays (a
            TrainState). data_state, meta: JSON-serializable dicts.
        """
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_state),
            meta=ocp.args.JsonSave(meta),
        )
        self._manager.save(step, args=args, force=True)

    def restore(self, step: int, target_state):
        """(state, data_state, meta) of `step`, the state placed like `target_state`'s shardings.

        Args:
          step: a saved step. target_state: a pytree of the saved structure whose leaves (arrays or
            ShapeDtypeStructs) give each restored array's shape, dtype and sharding.
        Raises:
          FileNotFoundError: `step` was never saved here or was dropped by keep-last-K.
        """
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_like(target_state)),
            data=ocp.args.JsonRestore(),
            meta=ocp.args.JsonRestore(),
        )
        out = self._manager.restore(step, args=args)
        return out.state, out.data, out.meta

    def wait(self) -> None:
        """Blocks until the last save is durable."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for the last save, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
