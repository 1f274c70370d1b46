"""`dlogp-score` as two JAX processes x 4 CPU devices (jax.distributed on localhost, gloo) equals the
single-process result."""

import os
import socket
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

from dlogp_jax.cli import score
from tests.cli.configs import CONFIGS, get_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
    out = tmp_path / "multi"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dlogp_jax.cli.score",
                f"--config={CONFIGS}/score.py:demo",
                f"--config.out={out}",
                "--config.mesh=data:2,fsdp:2,tensor:2",
                "--config.distributed.enabled=true",
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
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    single = score.run(get_config("score", "demo", out=str(tmp_path / "single")))
    a = pq.read_table(out / "tokens.parquet").to_pandas()
    b = pq.read_table(single / "tokens.parquet").to_pandas()
    assert list(a.token_id) == list(b.token_id) and len(a) == 604  # 24 demo responses
    for col in ("logp_base", "dlogp", "kl_rl_base", "kl_base_rl", "entropy_rl"):
        np.testing.assert_allclose(a[col], b[col], atol=2e-4, rtol=1e-4)
