"""One clear line from the command line (issue 12): an unknown --config key, a missing init_from."""

import subprocess
import sys


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=300
    )


def test_unknown_config_key_is_one_line():
    r = _run("dlogp_jax.cli.grade", "--config.data=x.jsonl", "--config.nosuch=1")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: --config.nosuch: the config has no setting 'nosuch'")
    assert "Traceback" not in r.stderr


def test_missing_init_from_is_named(tmp_path):
    r = _run(
        "dlogp_jax.cli.train",
        "--config=configs/dapo.py:tiny",
        f"--config.workdir={tmp_path / 'w'}",
        f"--config.init_from={tmp_path / 'nope'}",
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "error: init_from=" in r.stderr and "is not a directory" in r.stderr
    assert not (tmp_path / "w").exists()  # refused before the workdir is made
