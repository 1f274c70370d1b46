"""`dlogp-demo`: the paper's four findings end to end on a laptop CPU, in a world built on the spot.

Everything goes under `--config.workdir`:
  world/      data/ (train, test, val and rl_train parquet; task.json), base/ (HF checkpoint),
              base_metrics.json                                    (dlogp_jax.world.build_base)
  rl/         one dlogp-train work directory per (method, seed), each with hf/final
  samples/    one dlogp-sample output per decoding setting
  score/      dlogp-score outputs (calibration on validation generations, direction on test ones)
  stages/     one record per finished stage (settings + result): a re-run reuses them
  figures/, report.md, results.json

Each stage drives the CLIs a user runs: dlogp-sample / dlogp-score through their `run(config)` in this
process (compiled programs are reused between runs), dlogp-train as separate processes running side by
side with the sampling (`demo_rl`).
Deviations from the paper, and why: the τ of each criterion is set from quantiles of its score on
base generations of *validation* prompts (targeting replacement rates), because a tiny model's score
scales are not the paper's; γ of the headline extrapolation result is chosen on validation prompts;
sampling uses temperature 1 and top-p 1 (the paper's top-p 0.7 removes the slips this world's base
makes); re-draws are exact over the full vocabulary (no top-50 approximation).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from absl import logging

from dlogp_jax import outputs
from dlogp_jax.cli import common
from dlogp_jax.data.rows import read_rows
from dlogp_jax.world import stages, task
from dlogp_jax.world.build import WorldSettings, build_base

STAGES = ("world", "rl", "direction", "replacement", "extrapolation", "reweighting", "report")


@dataclasses.dataclass
class Ctx:
    """What every stage needs: the config, the work directory, and what earlier stages made."""

    config: Any  # the demo ConfigDict (only the cli layer reads it)
    root: Path
    log: Callable[[str], None]
    world: dict[str, Any] = dataclasses.field(default_factory=dict)  # paths + base metrics
    done: dict[str, Any] = dataclasses.field(default_factory=dict)  # results by stage
    memo: dict[str, Any] = dataclasses.field(default_factory=dict)  # stage results this process
    pool: Any = None  # demo_rl.TrainPool running the RL stage

    def rl(self, method: str, seed: int) -> dict[str, Any]:
        """One RL run's result (model path, curves), waiting for it if it is still training."""
        return self.pool.result(method, seed)

    def uses(self, *paths: str) -> dict[str, Any]:
        """Settings identity of a tool run: the world, and the RL run when it reads the RL model."""
        from dlogp_jax.cli import demo_rl

        key = self.key("world")
        if self.rl_model() in paths:
            key["rl_model"] = demo_rl.settings(self, *demo_rl.rl_runs(self.config)[0])
        return key

    def rl_model(self) -> str:
        """The RL model of experiments 1-3: the first method's first seed (exported HF dir)."""
        from dlogp_jax.cli.demo_rl import rl_runs

        return self.rl(*rl_runs(self.config)[0])["model"]

    def stage(self, name: str, settings: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """`stages.cached` (recorded in the work directory), looked up once per process."""
        if name not in self.memo:
            self.memo[name] = stages.cached(self.root, name, settings, fn, self.log)
        return self.memo[name]

    def key(self, *parts: str) -> dict[str, Any]:
        """Settings identity of the named config sections (a stage reruns when they change)."""
        return {p: self.config[p].to_dict() for p in parts}


def csv(text: str, kind=str) -> list:
    """A comma-separated config value as a list (validated up front by `validate`)."""
    return [kind(x) for x in str(text).split(",") if x.strip()]


def validate(config) -> list[str]:
    """Checks the list-valued and ranged settings before anything is written; returns the stages.

    Raises:
      ValueError naming the field, the bad value and what is allowed.
    """
    from dlogp_jax.extrapolation import CRITERIA
    from dlogp_jax.rl.dapo_loss import TOKEN_WEIGHTS

    def items(field: str, kind, allowed=None, low=None, high=None) -> list:
        section, _, name = field.rpartition(".")
        text = (config[section] if section else config)[name]
        try:
            values = csv(text, kind)
        except ValueError:
            raise ValueError(
                f"{field}={text!r}: write comma-separated {kind.__name__} values."
            ) from None
        bad = [v for v in values if (allowed is not None and v not in allowed)
               or (low is not None and v < low) or (high is not None and v > high)]  # fmt: skip
        if not values:
            raise ValueError(f"{field} is empty: give at least one value.")
        if bad and allowed is not None:
            raise ValueError(
                f"{field}: unknown {bad} in {text!r}; use some of {', '.join(allowed)}."
            )
        if bad:
            raise ValueError(
                f"{field}: {bad} out of range in {text!r}; use values in [{low}, {high}]."
            )
        return values

    wanted = items("stages", str, STAGES)
    items("rl.methods", str, TOKEN_WEIGHTS)
    items("rl.seeds", int, low=0)
    items("exp.criteria", str, [c for c in CRITERIA if c not in ("all", "none")])
    items("exp.rates", float, low=1e-6, high=1.0)
    items("exp.extrap_rates", float, low=1e-6, high=1.0)
    items("exp.gammas", float, low=0.0, high=1e3)
    items("exp.all_gammas", float, low=0.0, high=1e3)
    if not 0 < config.exp.extrap_rate <= 1:
        raise ValueError(f"exp.extrap_rate={config.exp.extrap_rate}: use a rate in (0, 1].")
    return wanted


def world_settings(w) -> WorldSettings:
    """WorldSettings from the `world` config section."""
    diff = task.Difficulty(
        min_steps=w.min_steps, max_steps=w.max_steps, max_value=w.max_value,
        max_operand=w.max_operand, max_factor=w.max_factor,
    )  # fmt: skip
    fields = {f.name for f in dataclasses.fields(WorldSettings)} - {"difficulty"}
    return WorldSettings(difficulty=diff, **{k: w[k] for k in fields})


def fresh_dir(path: Path, settings: dict[str, Any]) -> Path:
    """`path` for a tool run with `settings`: kept (to resume) if made with the same settings, else
    emptied, so a tool never resumes from another setting's partial output."""
    marker = path / ".demo_settings.json"
    want = stages.jsonable(settings)
    if path.exists() and (not marker.is_file() or json.loads(marker.read_text()) != want):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    outputs.write_json(marker, want)
    return path


# ------------------------------------------------------------------------------ stage: world
def stage_world(ctx: Ctx) -> dict[str, Any]:
    """Task splits, SFT'd base model, and the validation / RL-training split files."""
    settings = world_settings(ctx.config.world)
    root = ctx.root / "world"

    def go():
        metrics = build_base(root, settings, log_fn=ctx.log)
        data = root / "data"
        rows = read_rows(data / "train.parquet")
        # The first n_val train rows are the validation rows SFT never saw; RL trains on the rest.
        task.to_parquet(rows[: settings.n_val], data / "val.parquet")
        task.to_parquet(rows[settings.n_val :], data / "rl_train.parquet")
        keep = ("val_accuracy", "test_accuracy", "sft_seconds", "final_loss")
        return {
            "base": str(root / "base"), "train": str(data / "rl_train.parquet"),
            "val": str(data / "val.parquet"), "test": str(data / "test.parquet"),
            "metrics": {k: metrics[k] for k in keep},
        }  # fmt: skip

    return ctx.stage("world", ctx.key("world"), go)


# ------------------------------------------------------------------------------ run
def run(config) -> Path:
    """Runs the requested stages (with what they depend on) and writes the report."""
    from dlogp_jax.cli import demo_experiments as ex
    from dlogp_jax.cli import demo_rl

    wanted = validate(config)
    common.init_runtime(config)  # each tool builds its own mesh from config.mesh
    root = Path(common.local_path(config.workdir, "workdir"))
    if not jax.config.jax_compilation_cache_dir:  # shared with the dlogp-train processes
        jax.config.update("jax_compilation_cache_dir", str(root / "xla_cache"))
    ctx = Ctx(config, root, log=lambda s: logging.info("demo %s", s))
    ctx.world = stage_world(ctx)
    ctx.done["world"] = ctx.world
    runs = demo_rl.rl_runs(config)
    if not {"rl", "reweighting"} & set(wanted):  # experiments 1-3 need the first run only
        runs = runs[:1] if {"direction", "replacement", "extrapolation"} & set(wanted) else []
    ctx.pool = demo_rl.TrainPool(ctx, runs, config.rl.workers)
    try:
        for name, fn in (("direction", ex.direction), ("replacement", ex.replacement),
                         ("extrapolation", ex.extrapolation), ("reweighting", ex.reweighting)):  # fmt: skip
            if name in wanted:
                ctx.done[name] = fn(ctx)
        if "rl" in wanted:  # after the experiments, which need the first run only
            ctx.done["rl"] = {demo_rl.run_name(*r): ctx.rl(*r) for r in runs}
    finally:
        ctx.pool.close()
    if "report" in wanted:
        path = ex.report(ctx)
        logging.info("demo report: %s", path)
    return root


def entry():
    common.run_app(run, "demo")


if __name__ == "__main__":
    entry()
