"""The demo's RL stage: one `dlogp-train` process per (weighting method, seed), a few at a time.

Each run is the `dlogp-train` CLI itself (`python -m dlogp_jax.cli.train`) with its config written to
`rl/<method>_s<seed>/demo_config.json`; its output goes to `train.log` there. Why processes and not
calls in this process: the demo's models are tiny, so one run keeps about one core busy; running
`rl.workers` of them side by side (and the sampling experiments, which need only the first run, in
this process meanwhile) uses the machine. A run killed midway resumes from its newest checkpoint
when the demo is re-run (dlogp-train's own resume); children get SIGTERM when the demo stops early
(or dies, on Linux).

The runs are reweighted DAPO (docs/method.md §4) at the demo's scale: a few steps from a tiny SFT'd
base, no overlong penalty, no reference model (docs/method.md §6).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dlogp_jax import outputs
from dlogp_jax.demo import stages, tools
from dlogp_jax.demo.context import Ctx, rl_run_key, rl_stage_name, run_name

_LOADER = '''"""Written by dlogp-demo: the dlogp-train config stored next to this file as JSON."""
import json
from pathlib import Path

import ml_collections


def get_config():
    return ml_collections.ConfigDict(json.loads((Path(__file__).parent / "demo_config.json").read_text()))
'''


def train_config(ctx: Ctx, method: str, seed: int, workdir: Path) -> dict[str, Any]:
    """The dlogp-train config of one run (configs/dapo.py with the demo's rl section), as a dict."""
    r, w = ctx.settings.rl, ctx.settings.world
    fields = {
        "workdir": str(workdir),
        "init_from": ctx.world["base"],
        "data": ctx.world["train"],
        "max_prompt_len": 256,
        "total_steps": r.steps,
        "mesh": ctx.settings.mesh,
        "reference": False,
        "export_dtype": "float32",  # scored against the fp32 base: no bf16 rounding in Δlog p
    }
    rollout = {
        "n": r.n,
        "train_prompts": r.train_prompts,
        "gen_prompts": r.gen_prompts,
        "max_gen_rounds": r.max_gen_rounds,
        "dynamic_sampling": r.dynamic_sampling,
        "max_response_len": w.max_new_tokens,
        "overlong_buffer": 0,
    }
    loss = {"weight_method": method, "weight_c": r.reshape_c if method == "reshape" else r.weight_c}
    optimizer = {"lr": r.lr, "b2": r.b2, "warmup_steps": r.warmup_steps, "weight_decay": 0.0}
    trainer = {
        "mini_batches": r.mini_batches,
        "micro_batches": 1,
        "seed": seed,
        "save_every": 5,
        "keep_checkpoints": 1,
        "export_every": 0,
        "grader_workers": 0,
        "remat": False,
    }
    evaluation = {
        "data": ctx.world["test"],
        "every": r.eval_every,
        "n": r.eval_n,
        "max_prompts": r.eval_prompts,
        "top_p": ctx.settings.exp.top_p,  # the demo samples everything at exp.top_p (§6.24)
    }
    sections = {
        "rollout": rollout,
        "loss": loss,
        "optimizer": optimizer,
        "trainer": trainer,
        "eval": evaluation,
    }
    return tools.train_config(fields, sections)


# The child asks the kernel for SIGTERM when its parent dies (Linux), then runs the dlogp-train CLI.
# Set in the child itself rather than with Popen(preexec_fn=...): a preexec_fn forces fork() of this
# multithreaded (JAX) process, which can deadlock.
_CHILD = (
    "import ctypes, runpy, signal, sys\n"
    "try:\n    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM)\nexcept OSError:\n    pass\n"
    "sys.argv = ['dlogp-train'] + sys.argv[1:]\n"
    "runpy.run_module('dlogp_jax.cli.train', run_name='__main__')\n"
)


def launch(ctx: Ctx, method: str, seed: int) -> subprocess.Popen:
    """Starts dlogp-train for one run (resuming its partial output when the settings match)."""
    workdir = ctx.root / "rl" / run_name(method, seed)
    workdir = stages.fresh_dir(workdir, rl_run_key(ctx.settings, method, seed))
    config = train_config(ctx, method, seed, workdir)
    outputs.write_json(workdir / "demo_config.json", config)
    outputs.write_text(workdir / "demo_config.py", _LOADER)
    env = dict(os.environ)
    if ctx.settings.xla_cache:
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(ctx.root / "xla_cache"))
    cmd = [sys.executable, "-c", _CHILD, f"--config={workdir / 'demo_config.py'}"]
    with (workdir / "train.log").open("a") as log:  # the child holds its own descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


_EVAL_KEYS = (
    "step",
    "eval_accuracy",
    "eval_accuracy_ci95",
    "eval_length_mean",
    "eval_n",
    "eval_num_prompts",
)
_TRAIN_KEYS = ("step", "entropy", "response_length_mean", "accuracy", "weight_mean")


def read_curves(metrics_jsonl: Path) -> dict[str, Any]:
    """Eval accuracy by step and training entropy / length / accuracy by step from metrics.jsonl."""
    curves: dict[str, list] = {"eval": [], "train": []}
    for line in metrics_jsonl.read_text().splitlines():
        m = json.loads(line)
        if "eval_accuracy" in m:
            curves["eval"].append({k: m[k] for k in _EVAL_KEYS})
        if "entropy" in m:
            curves["train"].append({k: m.get(k) for k in _TRAIN_KEYS})
    return curves


def collect(ctx: Ctx, method: str, seed: int, returncode: int) -> dict[str, Any]:
    """The run's result once its process ended; a clear error with the log's tail if it failed."""
    workdir = ctx.root / "rl" / run_name(method, seed)
    if returncode != 0:
        log = workdir / "train.log"
        tail = "\n  ".join(log.read_text().splitlines()[-5:])
        tools.fail(
            f"dlogp-train {run_name(method, seed)} exited with status {returncode}; "
            f"see {log}:\n  {tail}"
        )
    return {"model": str(workdir / "hf" / "final"), **read_curves(workdir / "metrics.jsonl")}


class TrainPool:
    """Runs the pending RL runs, `workers` processes at a time, from a background thread.

    `result(method, seed)` blocks until that run is recorded as a stage (or was before).
    """

    def __init__(self, ctx: Ctx, runs: list[tuple[str, int]], workers: int):
        self.ctx, self.workers = ctx, max(1, workers)
        self.pending = [r for r in runs if not self._recorded(*r)]
        self.running: dict[tuple[str, int], subprocess.Popen] = {}
        self.started: dict[tuple[str, int], float] = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _recorded(self, method: str, seed: int) -> bool:
        key = rl_run_key(self.ctx.settings, method, seed)
        return stages.lookup(self.ctx.root, rl_stage_name(method, seed), key) is not None

    def _loop(self) -> None:
        last_report = time.monotonic()  # a progress line every 30 s
        try:
            while self.pending or self.running:
                while self.pending and len(self.running) < self.workers:
                    run = self.pending.pop(0)
                    self.ctx.log(f"[{rl_stage_name(*run)}] started (dlogp-train process)")
                    self.running[run] = launch(self.ctx, *run)
                    self.started[run] = time.perf_counter()
                for run, proc in list(self.running.items()):
                    if proc.poll() is not None:
                        del self.running[run]
                        result = collect(self.ctx, *run, proc.returncode)
                        seconds = time.perf_counter() - self.started[run]
                        key = rl_run_key(self.ctx.settings, *run)
                        name = rl_stage_name(*run)
                        stages.record(self.ctx.root, name, key, result, seconds, self.ctx.log)
                if time.monotonic() - last_report > 30 and self.running:
                    last_report = time.monotonic()  # a progress line every 30 s
                    self.ctx.log(
                        "rl progress: " + "; ".join(self._progress(r) for r in self.running)
                    )
                time.sleep(0.5)
        except BaseException as e:  # noqa: BLE001 (re-raised in the main thread by result())
            self.error = e
            for proc in self.running.values():
                proc.terminate()

    def close(self) -> None:
        """Stops the runs still training (they save a checkpoint on SIGTERM and resume later)."""
        self.pending.clear()
        for proc in list(self.running.values()):
            proc.terminate()

    def _progress(self, run: tuple[str, int]) -> str:
        log = self.ctx.root / "rl" / run_name(*run) / "train.log"
        steps = [ln for ln in log.read_text(errors="replace").splitlines() if "] step " in ln]
        return f"{run_name(*run)} " + (steps[-1].split("] ", 1)[1][:40] if steps else "starting")

    def result(self, method: str, seed: int) -> dict[str, Any]:
        name, want = rl_stage_name(method, seed), rl_run_key(self.ctx.settings, method, seed)
        while not self._recorded(method, seed):
            if self.error is not None:
                raise self.error
            if not self._thread.is_alive() and not self._recorded(method, seed):
                raise RuntimeError(f"{name} was not scheduled")
            time.sleep(0.5)
        return self.ctx.stage(name, want, lambda: None)  # recorded: read back, never run
