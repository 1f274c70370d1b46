"""Running a CLI as two JAX processes x 4 CPU devices (jax.distributed on localhost, gloo)."""

import os
import socket
import subprocess
import sys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_two_processes(module: str, *flags: str, timeout: int = 300) -> list[str]:
    """Runs `python -m module flags...` as processes 0 and 1 of one distributed run.

    Returns:
      both processes' logs (stdout and stderr); asserts both exit 0, showing the logs' tails.
    """
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
    distributed = (
        "--config.distributed.enabled=true",
        f"--config.distributed.coordinator_address=localhost:{port}",
        "--config.distributed.num_processes=2",
    )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                *flags,
                *distributed,
                f"--config.distributed.process_id={i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=timeout)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    return logs
