"""Runs called from Python (a notebook) log at INFO without absl's app.run and draw tqdm.auto bars;
dlogp-train's ETA leaves the compiling first step out."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import tqdm.auto

from dlogp_jax.rl.trainer import eta_seconds
from dlogp_jax.runs import _sample, _score, _train
from dlogp_jax.runs.progress import StepTrace

ROOT = Path(__file__).resolve().parents[2]


def test_eta_excludes_the_first_step():
    clock = {}
    # Step 1 ends at t=100 s (mostly compilation): no estimate yet, whatever it took.
    assert eta_seconds(clock, 1, 10, now=100.0) is None
    assert clock == {"time": 100.0, "step": 1}
    # Steps 2 and 3 take 2 s each: 7 steps left -> 14 s (not 7 x 100 / 3).
    assert eta_seconds(clock, 2, 10, now=102.0) == 16.0
    assert eta_seconds(clock, 3, 10, now=104.0) == 14.0
    resumed = {}  # a resumed run times from its own first step
    assert eta_seconds(resumed, 6, 10, now=50.0) is None
    assert eta_seconds(resumed, 7, 10, now=53.0) == 9.0


def test_runs_use_the_notebook_aware_bar():
    for module in (_score, _sample, _train):
        assert module.tqdm is tqdm.auto.tqdm, module.__name__


def test_a_run_called_from_python_logs_at_info(tmp_path):
    data = tmp_path / "r.jsonl"
    data.write_text(json.dumps({"response": "Answer: 1", "answer": "1"}) + "\n")
    script = (
        "from dlogp_jax import runs\n"
        f"runs.grade(runs.GradeSettings(data={str(data)!r}, out={str(tmp_path / 'g')!r}, "
        "grader='accuracy', workers=0))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stderr.splitlines() if "wrote" in ln)
    assert "INFO" in line and "accuracy" in line


def test_step_trace_writes_where_tensorboard_reads_it(tmp_path):
    trace = StepTrace(str(tmp_path / "tb"), start=2, num=2)
    for step in (1, 2, 3, 4):
        trace.before(step)
        assert trace.active == (step in (2, 3)), step
        jax.block_until_ready(jnp.ones((8, 8)) @ jnp.ones((8, 8)))
        trace.after(step)
    trace.close()
    assert len(list((tmp_path / "tb" / "plugins" / "profile").glob("*/*.xplane.pb"))) == 1
    off = StepTrace(str(tmp_path / "off"), start=0, num=2)
    off.before(1), off.after(1), off.close()
    assert not (tmp_path / "off").exists()
