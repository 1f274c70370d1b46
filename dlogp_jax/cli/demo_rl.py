"""The demo's RL stage: one `dlogp-train` process per (weighting method, seed), a few at a time.

Each run is the `dlogp-train` CLI itself (`python -m dlogp_jax.cli.train`) with its config written to
`rl/<method>_s<seed>/demo_config.json`; its output goes to `train.log` there. Why processes and not
calls in this process: the demo's models are tiny, so one run keeps about one core busy; running
`rl.workers` of them side by side (and the sampling experiments, which need only the first run, in
this process meanwhile) uses the machine. A run killed midway resumes from its newest checkpoint
when the demo is re-run (dlogp-train's own resume); children get SIGTERM when the demo stops early
(or dies, on Linux).
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
from dlogp_jax.cli import common
from dlogp_jax.cli.demo import Ctx, csv, fresh_dir
from dlogp_jax.world import stages

_LOADER = '''"""Written by dlogp-demo: the dlogp-train config stored next to this file as JSON."""
import json
from pathlib import Path

import ml_collections


def get_config():
    return ml_collections.ConfigDict(json.loads((Path(__file__).parent / "demo_config.json").read_text()))
'''


def rl_runs(config) -> list[tuple[str, int]]:
    """Every (method, seed) pair of the rl section, methods first."""
    return [(m, s) for m in csv(config.rl.methods) for s in csv(config.rl.seeds, int)]


def run_name(method: str, seed: int) -> str:
    return f"{method}_s{seed}"


def stage_name(method: str, seed: int) -> str:
    """The run's stage record name (stages/rl/<method>_s<seed>.json)."""
    return f"rl/{run_name(method, seed)}"


# rl fields that do not change what one run computes (which runs exist, how many run at once).
_NOT_PER_RUN = ("methods", "seeds", "workers", "weight_c", "reshape_c")


def settings(ctx: Ctx, method: str, seed: int) -> dict[str, Any]:
    """What determines one run's result: the world, the shared rl fields, its method, c and seed.

    Adding a seed or a method, or changing `workers`, leaves the other runs (and the experiments on
    the first run) cached.
    """
    r = {k: v for k, v in ctx.config.rl.to_dict().items() if k not in _NOT_PER_RUN}
    c = {"reshape": ctx.config.rl.reshape_c, "none": None}.get(method, ctx.config.rl.weight_c)
    return {**ctx.key("world"), "rl": r, "method": method, "weight_c": c, "seed": seed}


def train_config(ctx: Ctx, method: str, seed: int, workdir: Path):
    """The dlogp-train ConfigDict of one run (configs/dapo.py with the demo's rl section)."""
    r, w = ctx.config.rl, ctx.config.world
    cfg = common.load_config("dapo")
    cfg.update(
        workdir=str(workdir), init_from=ctx.world["base"], data=ctx.world["train"],
        max_prompt_len=256, total_steps=r.steps, mesh=ctx.config.mesh, reference=False,
    )  # fmt: skip
    cfg.rollout.update(
        n=r.n, train_prompts=r.train_prompts, gen_prompts=r.gen_prompts,
        max_gen_rounds=r.max_gen_rounds, dynamic_sampling=r.dynamic_sampling,
        max_response_len=w.max_new_tokens, overlong_buffer=0,
    )  # fmt: skip
    cfg.loss.update(
        weight_method=method, weight_c=r.reshape_c if method == "reshape" else r.weight_c
    )
    cfg.optimizer.update(lr=r.lr, b2=r.b2, warmup_steps=r.warmup_steps, weight_decay=0.0)
    cfg.trainer.update(
        mini_batches=r.mini_batches, micro_batches=1, seed=seed, save_every=5,
        keep_checkpoints=1, export_every=0, grader_workers=0, remat=False,
    )  # fmt: skip
    cfg.eval.update(
        data=ctx.world["test"], every=r.eval_every, n=r.eval_n, max_prompts=r.eval_prompts
    )
    return cfg


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
    workdir = fresh_dir(ctx.root / "rl" / run_name(method, seed), settings(ctx, method, seed))
    outputs.write_json(
        workdir / "demo_config.json", train_config(ctx, method, seed, workdir).to_dict()
    )
    outputs.write_text(workdir / "demo_config.py", _LOADER)
    env = dict(os.environ)
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(ctx.root / "xla_cache"))
    cmd = [sys.executable, "-c", _CHILD, f"--config={workdir / 'demo_config.py'}"]
    with (workdir / "train.log").open("a") as log:  # the child holds its own descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def read_curves(metrics_jsonl: Path) -> dict[str, Any]:
    """Eval accuracy by step and training entropy / length / accuracy by step from metrics.jsonl."""
    curves: dict[str, list] = {"eval": [], "train": []}
    eval_keys = ("step", "eval_accuracy", "eval_accuracy_ci95", "eval_length_mean", "eval_n",
                 "eval_num_prompts")  # fmt: skip
    train_keys = ("step", "entropy", "response_length_mean", "accuracy", "weight_mean")
    for line in metrics_jsonl.read_text().splitlines():
        m = json.loads(line)
        if "eval_accuracy" in m:
            curves["eval"].append({k: m[k] for k in eval_keys})
        if "entropy" in m:
            curves["train"].append({k: m.get(k) for k in train_keys})
    return curves


def collect(ctx: Ctx, method: str, seed: int, returncode: int) -> dict[str, Any]:
    """The run's result once its process ended; a clear error with the log's tail if it failed."""
    workdir = ctx.root / "rl" / run_name(method, seed)
    if returncode != 0:
        tail = (workdir / "train.log").read_text().splitlines()[-5:]
        common.fail(f"dlogp-train {run_name(method, seed)} exited with status {returncode}; see "
                    f"{workdir / 'train.log'}:\n  " + "\n  ".join(tail))  # fmt: skip
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
        name = stage_name(method, seed)
        return stages.lookup(self.ctx.root, name, settings(self.ctx, method, seed)) is not None

    def _loop(self) -> None:
        last_report = time.monotonic()  # a progress line every 30 s
        try:
            while self.pending or self.running:
                while self.pending and len(self.running) < self.workers:
                    run = self.pending.pop(0)
                    self.ctx.log(f"[{stage_name(*run)}] started (dlogp-train process)")
                    self.running[run] = launch(self.ctx, *run)
                    self.started[run] = time.perf_counter()
                for run, proc in list(self.running.items()):
                    if proc.poll() is not None:
                        del self.running[run]
                        result = collect(self.ctx, *run, proc.returncode)
                        seconds = time.perf_counter() - self.started[run]
                        stages.record(self.ctx.root, stage_name(*run),
                                      settings(self.ctx, *run), result, seconds, self.ctx.log)  # fmt: skip
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
        name, want = stage_name(method, seed), settings(self.ctx, method, seed)
        while not self._recorded(method, seed):
            if self.error is not None:
                raise self.error
            if not self._thread.is_alive() and not self._recorded(method, seed):
                raise RuntimeError(f"{name} was not scheduled")
            time.sleep(0.5)
        return self.ctx.stage(name, want, lambda: None)  # recorded: read back, never run
