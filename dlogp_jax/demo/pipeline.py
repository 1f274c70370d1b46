"""The demo pipeline: the paper's four findings end to end on a laptop CPU, in a world built on the spot.

Everything goes under `settings.workdir`:
  world/      data/ (train, test, val and rl_train parquet; task.json), base/ (HF checkpoint),
              base_metrics.json                                    (dlogp_jax.demo.build)
  rl/         one dlogp-train work directory per (method, seed), each with hf/final
  samples/    one dlogp-sample output per decoding setting
  score/      dlogp-score outputs (calibration on validation generations, direction on test ones)
  stages/     one record per finished stage (settings + result): a re-run reuses them
  figures/, report.md, results.json

Each stage drives the tools a user runs (through `dlogp_jax.demo.tools`): dlogp-sample and
dlogp-score in this process (compiled programs are reused between runs), dlogp-train as separate
processes running side by side with the sampling (`rl_pool`). The experiments are those of
docs/method.md §5; how the demo deviates from the paper (a tiny world, τ from validation
quantiles, temperature 1 and top-p 1, exact re-draws) is docs/method.md §6.

Modules, each importing only those before it: task, stages, findings, report, settings, sft,
build, context, tools, rl_pool, experiments, pipeline.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import jax
from absl import logging
from jax.experimental.compilation_cache import compilation_cache

from dlogp_jax.data.rows import read_rows
from dlogp_jax.demo import experiments, task, tools
from dlogp_jax.demo.build import build_base
from dlogp_jax.demo.context import Ctx, run_name
from dlogp_jax.demo.rl_pool import TrainPool
from dlogp_jax.demo.settings import DemoSettings

# Stages after the world, in the order they run, with what computes each.
EXPERIMENTS = (
    ("direction", experiments.direction),
    ("replacement", experiments.replacement),
    ("extrapolation", experiments.extrapolation),
    ("reweighting", experiments.reweighting),
)


def stage_world(ctx: Ctx) -> dict[str, Any]:
    """Task splits, SFT'd base model, and the validation / RL-training split files."""
    world = ctx.settings.world
    root = ctx.root / "world"

    def go():
        metrics = build_base(root, world, log_fn=ctx.log)
        data = root / "data"
        rows = read_rows(data / "train.parquet")
        # The first n_val train rows are the validation rows SFT never saw; RL trains on the rest.
        task.to_parquet(rows[: world.n_val], data / "val.parquet")
        task.to_parquet(rows[world.n_val :], data / "rl_train.parquet")
        keep = ("val_accuracy", "test_accuracy", "sft_seconds", "final_loss")
        return {
            "base": str(root / "base"),
            "train": str(data / "rl_train.parquet"),
            "val": str(data / "val.parquet"),
            "test": str(data / "test.parquet"),
            "metrics": {k: metrics[k] for k in keep},
        }

    return ctx.stage("world", ctx.key("world"), go)


def _rl_runs(settings: DemoSettings) -> list[tuple[str, int]]:
    """The RL runs the wanted stages need: all of them, the first one only, or none."""
    wanted = set(settings.stages_list)
    if {"rl", "reweighting"} & wanted:
        return settings.rl.runs
    if {"direction", "replacement", "extrapolation"} & wanted:  # experiments 1-3: the RL model
        return settings.rl.runs[:1]
    return []


def run(settings: DemoSettings) -> Path:
    """Runs the requested stages (with what they depend on) and writes the report.

    Args:
      settings: the demo's settings (validated when built).
    Returns:
      the work directory.
    """
    tools.init_runtime(settings.mesh)  # each tool builds its own mesh from settings.mesh
    root = Path(tools.local_path(settings.workdir, "workdir"))
    with _compilation_cache(root / "xla_cache" if settings.xla_cache else None):
        return _run_stages(settings, root)


@contextlib.contextmanager
def _compilation_cache(path: Path | None):
    """JAX's persistent compilation cache in `path` (shared with the dlogp-train processes) while
    the demo runs, unless the user set one or `path` is None; the previous setting is restored
    afterwards, so a process that goes on (a notebook) never reads a work directory's cache later."""
    if path is None or jax.config.jax_compilation_cache_dir:
        yield
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()


def _run_stages(settings: DemoSettings, root: Path) -> Path:
    """The stages of `run` (inside its compilation-cache scope)."""
    wanted = settings.stages_list
    ctx = Ctx(settings, root, log=lambda s: logging.info("demo %s", s))
    ctx.world = stage_world(ctx)
    ctx.done["world"] = ctx.world
    runs = _rl_runs(settings)
    ctx.pool = TrainPool(ctx, runs, settings.rl.workers)
    try:
        for name, fn in EXPERIMENTS:
            if name in wanted:
                ctx.done[name] = fn(ctx)
        if "rl" in wanted:  # after the experiments, which need the first run only
            ctx.done["rl"] = {run_name(*r): ctx.rl(*r) for r in runs}
    finally:
        ctx.pool.close()
    if "report" in wanted:
        path = experiments.report(ctx)
        logging.info("demo report: %s", path)
    return root
