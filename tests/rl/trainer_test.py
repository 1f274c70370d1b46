"""`dlogp-train` end to end on the tiny preset: learning, resume equality (restart and SIGTERM),
sharded = single device, two processes = one, HF export."""

import json
import os
import signal
import socket
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from dlogp_jax.cli import train as train_cli
from dlogp_jax.model import hf_weights
from dlogp_jax.rl import trainer
from tests.cli.configs import CONFIGS, get_config

VOLATILE = ("time_", "tokens_per_second")


def _metrics(workdir):
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(VOLATILE)} for r in rows]


def _run(workdir, adam_eps=None, **kw):
    config = get_config("dapo", "tiny", workdir=str(workdir), **kw)
    if adam_eps is not None:
        config.optimizer.eps = adam_eps
    return train_cli.run(config)


def _run_converging(workdir, **kw):
    """24 steps: late in the run most groups are all-correct, so dynamic sampling gets more rounds
    (with the tiny preset's 4, an AVX-512 CPU's trajectory ran out of informative groups)."""
    config = get_config("dapo", "tiny", workdir=str(workdir), **kw)
    config.rollout.max_gen_rounds = 32
    return train_cli.run(config)


def test_reward_rises_and_policy_exported(tmp_path):
    state = _run_converging(tmp_path, total_steps=24, mesh="fsdp:1")
    m = _metrics(tmp_path)
    assert [r["step"] for r in m] == list(range(1, 25))
    early = np.mean([r["accuracy"] for r in m[:6]])
    late = np.mean([r["accuracy"] for r in m[-6:]])
    assert late > early + 0.05, (early, late)
    assert all(1.0 <= r["weight_mean"] <= 1.2 for r in m)  # reshape_reversed, c = 0.2
    assert all(r["groups_kept"] >= 4 and 0 < r["groups_kept_fraction"] <= 1 for r in m)
    assert "dlogp_vs_init_mean" in m[-1] and m[0]["dlogp_vs_init_mean"] == pytest.approx(
        0, abs=1e-5
    )
    _, exported = hf_weights.load_params(tmp_path / "hf" / "final")
    rounded = np.asarray(state.params["embed_vd"]).astype(ml_dtypes.bfloat16)  # export_dtype
    np.testing.assert_array_equal(
        np.asarray(exported["embed_vd"]).astype(np.float32), rounded.astype(np.float32)
    )
    assert list((tmp_path / "tb").iterdir())  # TensorBoard events


def test_resume_after_sigterm_and_restart_is_identical(tmp_path, monkeypatch):
    """Run 4 steps; separately run, SIGTERM after step 2 (save + exit), re-run to 4: equal metrics."""
    _run(tmp_path / "full", total_steps=4, mesh="fsdp:1")
    log_step = trainer._log_step

    def preempt_at_2(metrics, *args):
        log_step(metrics, *args)
        if metrics["step"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(trainer, "_log_step", preempt_at_2)
    state = _run(tmp_path / "cut", total_steps=4, mesh="fsdp:1")
    assert int(state.step) == 2 and len(_metrics(tmp_path / "cut")) == 2
    monkeypatch.setattr(trainer, "_log_step", log_step)
    (tmp_path / "cut" / "metrics.jsonl").write_text(
        (tmp_path / "cut" / "metrics.jsonl").read_text() + '{"step": 3, "stale": true}\n'
    )  # a line written after the last checkpoint is dropped on resume and recomputed
    _run(tmp_path / "cut", total_steps=4, mesh="fsdp:1")
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "full")


def _close(a, b):
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra["reward_mean"] == rb["reward_mean"] and ra["groups_kept"] == rb["groups_kept"]
        for k in ("loss", "grad_norm", "entropy", "weight_mean"):
            assert ra[k] == pytest.approx(rb[k], rel=2e-3, abs=2e-4), k


def test_one_device_mesh_and_two_processes_agree(tmp_path):
    """1 device, the (2,2,2) mesh of 8 devices, and 2 processes x 4 devices: same training.

    Adam's eps is raised to 1e-3: with 1e-8, coordinates whose gradient is ~0 get ±lr updates whose
    sign is float noise (reduction order differs between meshes), which the tiny model amplifies.
    """
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dlogp_jax.cli.train",
                f"--config={CONFIGS}/dapo.py:tiny",
                f"--config.workdir={tmp_path / 'multi'}",
                "--config.total_steps=3",
                "--config.mesh=data:2,fsdp:2,tensor:2",
                "--config.distributed.enabled=true",
                "--config.optimizer.eps=0.001",
                f"--config.distributed.coordinator_address=localhost:{port}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    _run(tmp_path / "one", adam_eps=1e-3, total_steps=3, mesh="fsdp:1")
    _run(tmp_path / "mesh", adam_eps=1e-3, total_steps=3, mesh="data:2,fsdp:2,tensor:2")
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    one = _metrics(tmp_path / "one")
    _close(one, _metrics(tmp_path / "mesh"))
    _close(one, _metrics(tmp_path / "multi"))
