"""What every demo stage shares: the settings, the work directory, earlier results (`Ctx`).

The bottom of the pipeline's modules (settings -> context -> rl_pool, experiments -> pipeline): it
knows how stages and RL runs are named and what identifies them, not how they run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from dlogp_jax.demo import stages
from dlogp_jax.demo.settings import DemoSettings


class RLResults(Protocol):
    """The RL stage as the experiments see it (`rl_pool.TrainPool`)."""

    def result(self, method: str, seed: int) -> dict[str, Any]: ...


def run_name(method: str, seed: int) -> str:
    """One RL run's name: its directory under rl/ and its key in the results."""
    return f"{method}_s{seed}"


def rl_stage_name(method: str, seed: int) -> str:
    """The run's stage record name (stages/rl/<method>_s<seed>.json)."""
    return f"rl/{run_name(method, seed)}"


# rl fields that do not change what one run computes (which runs exist, how many run at once).
_NOT_PER_RUN = ("methods", "seeds", "workers", "weight_c", "reshape_c")


def rl_run_key(settings: DemoSettings, method: str, seed: int) -> dict[str, Any]:
    """What determines one run's result: the world, the shared rl fields, its method, c and seed.

    Adding a seed or a method, or changing `workers`, leaves the other runs (and the experiments on
    the first run) cached.
    """
    rl = settings.rl
    shared = {k: v for k, v in rl.to_dict().items() if k not in _NOT_PER_RUN}
    c = {"reshape": rl.reshape_c, "none": None}.get(method, rl.weight_c)
    world = {"world": settings.section_dict("world")}
    key = {**world, "rl": shared, "method": method, "weight_c": c, "seed": seed}
    # The run's held-out evaluation samples at exp.top_p (rl_pool); named only when not the
    # default 1.0, so the runs cached before it was part of the key stay cached.
    if settings.exp.top_p != 1.0:
        key["eval_top_p"] = settings.exp.top_p
    return key


@dataclasses.dataclass
class Ctx:
    """What every stage needs: the settings, the work directory, and what earlier stages made.

    Attributes:
      settings: the demo's settings.
      root: the work directory.
      log: receives one progress line at a time.
      world: paths and base metrics of the world stage.
      done: results by stage name (what the report shows).
      memo: stage results looked up or computed in this process.
      pool: the RL stage, running or finished.
    """

    settings: DemoSettings
    root: Path
    log: Callable[[str], None]
    world: dict[str, Any] = dataclasses.field(default_factory=dict)
    done: dict[str, Any] = dataclasses.field(default_factory=dict)
    memo: dict[str, Any] = dataclasses.field(default_factory=dict)
    pool: RLResults | None = None

    def rl(self, method: str, seed: int) -> dict[str, Any]:
        """One RL run's result (model path, curves), waiting for it if it is still training."""
        return self.pool.result(method, seed)

    def rl_model(self) -> str:
        """The RL model of experiments 1-3: the first method's first seed (exported HF dir)."""
        return self.rl(*self.settings.rl.runs[0])["model"]

    def uses(self, *paths: str) -> dict[str, Any]:
        """Settings identity of a tool run: the world, and the RL run when it reads the RL model."""
        key = self.key("world")
        if self.rl_model() in paths:
            key["rl_model"] = rl_run_key(self.settings, *self.settings.rl.runs[0])
        return key

    def stage(self, name: str, settings: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """`stages.cached` (recorded in the work directory), looked up once per process."""
        if name not in self.memo:
            self.memo[name] = stages.cached(self.root, name, settings, fn, self.log)
        return self.memo[name]

    def key(self, *parts: str) -> dict[str, Any]:
        """Settings identity of the named sections (a stage reruns when they change)."""
        return {p: self.settings.section_dict(p) for p in parts}
