"""Resuming training (issue 12, items 1 and 4): the settings guard, and the checkpoint fallback."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import runs
from dlogp_jax.checkpoint import Checkpointer
from dlogp_jax.errors import CheckpointError, DataError
from dlogp_jax.runs import _train, files
from dlogp_jax.runs.settings import LossConfig, OptimizerConfig


def _workdir(tmp_path, settings):
    """A workdir as a run with `settings` leaves it: run.json and one checkpoint."""
    (tmp_path / "checkpoints" / "10").mkdir(parents=True)
    files.RunRecord(tmp_path, write=True).start(_train.flat_settings(settings))
    return tmp_path


def test_changed_settings_that_alter_the_run_are_refused(tmp_path):
    before = runs.TrainSettings(toy_task=True, workdir=str(tmp_path))
    workdir = _workdir(tmp_path, before)
    (workdir / "config.json").write_text("{}")
    now = runs.TrainSettings(
        toy_task=True,
        workdir=str(tmp_path),
        optimizer=OptimizerConfig(lr=0.1),
        loss=LossConfig(weight_method="none"),
    )
    with pytest.raises(DataError) as e:
        _train.resume_guard(workdir, now)
    text = str(e.value)
    assert "optimizer.lr: 1e-06 -> 0.1" in text and "loss.weight_method" in text
    assert "--config.workdir=NEW_DIR" in text and "\n" not in text
    assert (workdir / "config.json").read_text() == "{}"  # nothing rewritten


def test_harmless_changes_pass_and_are_listed(tmp_path):
    before = runs.TrainSettings(toy_task=True, workdir=str(tmp_path))
    workdir = _workdir(tmp_path, before)
    now = runs.TrainSettings(toy_task=True, workdir=str(tmp_path), total_steps=500)
    changes = _train.resume_guard(workdir, now)
    assert changes == [{"field": "total_steps", "before": 100, "now": 500}]
    record = files.RunRecord(workdir, write=True)
    record.start(_train.flat_settings(now), changes=[{"step": 10, **c} for c in changes])
    saved = json.loads((workdir / "run.json").read_text())
    assert saved["total_steps"] == 500
    assert saved["changes"] == [{"step": 10, "field": "total_steps", "before": 100, "now": 500}]


def test_fresh_workdir_has_no_guard(tmp_path):
    assert _train.resume_guard(tmp_path, runs.TrainSettings(toy_task=True)) == []


def _state():
    return {"w": jnp.arange(6.0).reshape(2, 3)}


def test_damaged_newest_checkpoint_falls_back(tmp_path):
    ckpt = Checkpointer(str(tmp_path / "checkpoints"), max_to_keep=5)
    for step in (10, 20):
        ckpt.save(step, {"w": _state()["w"] + step}, {"0": {}}, {"step": step})
    ckpt.close()
    for f in (tmp_path / "checkpoints" / "20").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"\0" * 7)  # damaged in place
    (tmp_path / "checkpoints" / "40").mkdir()  # an empty step directory
    messages = []
    ckpt = Checkpointer(str(tmp_path / "checkpoints"), max_to_keep=5)
    step, state, _, meta = ckpt.restore_newest(_state(), log=messages.append)
    assert step == 10 and meta == {"step": 10}
    np.testing.assert_array_equal(state["w"], _state()["w"] + 10)
    assert any("checkpoint 40" in m and "skipped" in m for m in messages)
    assert any("checkpoint 20" in m for m in messages)
    ckpt.save(20, _state(), {"0": {}}, {"step": 20})  # the damaged step can be saved again
    ckpt.close()


def test_no_checkpoint_restores_is_one_line(tmp_path):
    ckpt = Checkpointer(str(tmp_path / "c"))
    ckpt.save(5, _state(), {"0": {}}, {"step": 5})
    ckpt.wait()
    with pytest.raises(CheckpointError, match="no checkpoint in .* restores") as e:
        ckpt.restore_newest({"w": jnp.zeros((4, 4))})  # another model: shapes differ
    assert "\n" not in str(e.value) and "--config.workdir" in str(e.value)
    ckpt.close()
