"""Output locks (issue 12, items 2 and 6): one run per output directory, released on any exit, a
dead process's lock taken over with a message, unwritable outputs refused before any work."""

import os
import subprocess
import sys
import textwrap

import pytest

from dlogp_jax import runs
from dlogp_jax.errors import DataError
from dlogp_jax.runs import files

HOLD = textwrap.dedent(
    """
    import sys, time
    from dlogp_jax.runs import files
    with files.locked(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_second_run_on_a_locked_directory_is_refused(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DataError, match=f"in use by another run \\(pid {holder.pid}"):
            with files.locked(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    messages = []
    with files.locked(out, log=messages.append):  # SIGKILLed holder: the kernel released it
        assert (out / ".lock").read_text().strip() == str(os.getpid())
    assert messages and f"taking over the lock of process {holder.pid}" in messages[0]


def test_lock_released_on_error_and_reentry_works(tmp_path):
    with pytest.raises(RuntimeError):
        with files.locked(tmp_path):
            raise RuntimeError("boom")
    with files.locked(tmp_path, log=pytest.fail):  # no take-over message: cleared on exit
        pass


@pytest.mark.parametrize("kind", ["file", "readonly"])
def test_unwritable_out_is_refused_before_any_work(tmp_path, kind, monkeypatch):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("x")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        out.mkdir()
        out.chmod(0o500)
    monkeypatch.setattr(runs._score, "load_pair", pytest.fail)  # no model is ever loaded
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n')
    settings = runs.ScoreSettings(base=str(tmp_path), data=str(data), out=str(out))
    with pytest.raises(DataError, match="out=.*cannot be written .*--config.out=DIR"):
        runs.score(settings)


def test_full_disk_is_refused_at_the_lock(tmp_path, monkeypatch):
    def no_space(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DataError, match="No space left on device"):
        with files.locked(tmp_path / "o"):
            pass
