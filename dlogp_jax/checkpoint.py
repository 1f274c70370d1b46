"""Orbax checkpoints of a training run: TrainState, data-iterator state and run metadata.

Resume precedence (big_vision style), applied by the trainer:
  1. the newest checkpoint in the run's own work directory that restores (a restarted or
     preempted run; damaged newer ones are skipped with a message, `restore_newest`);
  2. otherwise `init_from` (an HF checkpoint directory) as step 0;
  3. otherwise random init (tiny/debug presets only).
This module passes URL paths (`gs://...`) to orbax untouched; the CLIs, which also write metrics and
exports with local file APIs, take local paths (Cloud Storage through a FUSE mount, see
docs/operators.md). Saves are asynchronous; `wait()` blocks until the
last one is durable (done before exiting and on SIGTERM).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

from dlogp_jax.errors import CheckpointError


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _reason(e: Exception) -> str:
    """The first line of an orbax error, shortened (they run to hundreds of lines)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


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
        self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.directory = _absolute(directory)
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)

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

    def restore_newest(self, target_state, *, log: Callable[[str], None] = print):
        """(step, state, data_state, meta) of the newest checkpoint that restores, or None when
        there is none. A damaged newer one (an empty or half-copied step directory) is skipped,
        said so, and moved to `<directory>_damaged/` so that its step can be saved again.

        Raises:
          CheckpointError: no checkpoint restores (e.g. they were saved for another model).
        """
        failures = []
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                state, data, meta = self.restore(step, target_state)
            except Exception as e:  # orbax raises many types for a damaged step
                failures.append((step, _reason(e)))
                continue
            for bad, reason in failures:
                log(
                    f"checkpoint {bad} in {self.directory} cannot be restored ({reason}): "
                    f"skipped, moved to {self._set_aside(bad)}; resuming from step {step}."
                )
            if failures:
                self._reopen()
            return step, state, data, meta
        if failures:
            step, reason = failures[0]
            raise CheckpointError(
                f"no checkpoint in {self.directory} restores (newest: step {step}: {reason}); if "
                "the model or its settings changed, start a new --config.workdir, else move the "
                "damaged checkpoints away."
            )
        return None

    def _set_aside(self, step: int) -> str:
        src = os.path.join(self.directory, str(step))
        dst_dir = self.directory.rstrip("/") + "_damaged"
        os.makedirs(dst_dir, exist_ok=True)
        dst = os.path.join(dst_dir, f"{step}.{int(time.time())}")
        shutil.move(src, dst)
        return dst

    def _reopen(self) -> None:
        self._manager.close()
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)

    def wait(self) -> None:
        """Blocks until the last save is durable."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for the last save, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
