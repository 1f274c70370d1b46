"""Processes and signals (issue 12, items 7 and 8): grader workers die with their parent;
dlogp-train saves on SIGINT like on SIGTERM and exits with EXIT_INTERRUPTED."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from dlogp_jax.cli import train as train_cli
from dlogp_jax.rl import trainer
from tests.cli.configs import get_config

PARENT = textwrap.dedent(
    """
    import time
    from dlogp_jax.rl.rewards import Grader
    with Grader(workers=2) as g:
        g.score("accuracy", ["Answer: 1"], ["1"])  # the workers are up
        print(" ".join(str(w.proc.pid) for w in g._pool), flush=True)
        time.sleep(120)
    """
)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (exited, not reaped) counts as gone
        return f.read().split(")")[1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_grader_workers_die_with_their_parent(sig):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(p) for p in workers)
    parent.send_signal(sig)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def test_sigint_saves_and_exits_75(tmp_path, monkeypatch):
    log_step = trainer._log_step

    def interrupt_at_1(metrics, *args):
        log_step(metrics, *args)
        if metrics["step"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(trainer, "_log_step", interrupt_at_1)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under `nohup ... &`, else the default
    config = get_config("dapo", "tiny", workdir=str(tmp_path), total_steps=3, mesh="fsdp:1")
    with pytest.raises(SystemExit) as e:
        train_cli.main(config)
    assert e.value.code == trainer.EXIT_INTERRUPTED == 75
    assert (tmp_path / "checkpoints" / "1").is_dir()
    assert signal.getsignal(signal.SIGINT) is before  # restored
    run = (tmp_path / "run.json").read_text()
    assert '"status": "interrupted at step 1"' in run
