"""Settings of `dlogp-demo`: frozen dataclasses, checked before anything is written.

`DemoSettings` holds one section per part of the pipeline: `world` (`WorldSettings`: the task and
the SFT'd base model), `rl` (`RLSettings`: the dlogp-train runs) and `exp` (`ExpSettings`:
experiments 1-3). `configs/demo.py` sets the same fields with the same defaults; the CLI turns its
ConfigDict into these with `DemoSettings.from_dict(config.to_dict())`.

List-valued fields (methods, seeds, criteria, rates, γ grids, stages) stay the comma-separated
strings the config holds, because those strings are part of each stage's identity (the settings
recorded in `stages/*.json` and `.demo_settings.json`): a work directory made from the command line
is reused by equal settings from Python, and back. Their parsed values are the `*_list` properties.

Why these settings deviate from the paper's (τ from validation quantiles, temperature 1 and top-p
1, a tiny model): docs/method.md §6.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from dlogp_jax import toy
from dlogp_jax.demo import task
from dlogp_jax.extrapolation import CRITERIA
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.rl.dapo_loss import TOKEN_WEIGHTS

STAGES = ("world", "rl", "direction", "replacement", "extrapolation", "reweighting", "report")
# Criteria a sweep may name: `all` and `none` are the sweep's two ends, always measured.
SWEEP_CRITERIA = tuple(c for c in CRITERIA if c not in ("all", "none"))


# ------------------------------------------------------------------------------ comma lists
def split(text: str, kind: type = str) -> list:
    """A comma-separated setting as a list of `kind` (empty items dropped)."""
    return [kind(x) for x in str(text).split(",") if x.strip()]


def list_problem(
    field: str,
    text: str,
    kind: type,
    *,
    allowed: Collection[str] | None = None,
    low: float | None = None,
    high: float | None = None,
) -> str | None:
    """The message naming `field` when its comma-separated value is bad, else None.

    Args:
      field: the setting's dotted name (`rl.methods`), quoted in the message.
      text: its value.
      kind: the type of each item (str, int or float).
      allowed: the only values an item may take; low, high: an item's inclusive range.
    """
    try:
        values = split(text, kind)
    except ValueError:
        return f"{field}={text!r}: write comma-separated {kind.__name__} values."
    if not values:
        return f"{field} is empty: give at least one value."
    if allowed is not None:
        if bad := [v for v in values if v not in allowed]:
            return f"{field}: unknown {bad} in {text!r}; use some of {', '.join(allowed)}."
        return None
    if bad := [v for v in values if not _in_range(v, low, high)]:
        return f"{field}: {bad} out of range in {text!r}; use values in [{low}, {high}]."
    return None


def _in_range(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _raise_problems(problems: list[str | None]) -> None:
    if found := [p for p in problems if p]:
        raise ValueError("\n".join(found))


def _sorted(d: Mapping[str, Any]) -> dict[str, Any]:
    """Keys in sorted order, as `ConfigDict.to_dict()` gives them (the recorded identities)."""
    return {k: d[k] for k in sorted(d)}


# ------------------------------------------------------------------------------ world
@dataclasses.dataclass(frozen=True)
class WorldSettings:
    """Everything that defines the world's data and base model.

    The defaults were tuned on the validation rows (seeds 0 and 1) for a base of roughly 15-40%
    Avg@8 at temperature 1: operands up to 9 (with 20, 1000 SFT steps left 6% accuracy), then the
    slip fraction: 0.3 -> 54%, 0.45 -> 46%, 0.6 -> 36% / 41%, 0.7 -> 43%, 0.8 -> 17% / 30% (the
    arithmetic was not learnt for seed 0), 0.85 ramped from 0 over half the steps -> 30% / 27%.

    Attributes:
      seed: task split seed; also the SFT init/data seed.
      n_train, n_val, n_test: rows; the first n_val train rows are held out from SFT for tuning.
      difficulty: the task's difficulty.
      hidden_size, num_layers, intermediate_size, num_heads, num_kv_heads: tiny Qwen2 shape.
      steps, batch_size, lr: SFT budget and peak learning rate.
      slip_prob: fraction of SFT traces with one arithmetic slip (after the ramp).
      slip_ramp_frac: fraction of the SFT steps over which the slip fraction rises from 0.
      eval_n: samples per problem for Avg@n (temperature 1).
      max_new_tokens: response length limit when sampling.
    """

    seed: int = 0
    n_train: int = 20_000
    n_val: int = 256
    n_test: int = 256
    difficulty: task.Difficulty = task.Difficulty()
    hidden_size: int = 64
    num_layers: int = 2
    intermediate_size: int = 256
    num_heads: int = 4
    num_kv_heads: int = 2
    steps: int = 1500
    batch_size: int = 32
    lr: float = 5e-3
    slip_prob: float = 0.85
    slip_ramp_frac: float = 0.5
    eval_n: int = 8
    max_new_tokens: int = 64

    def __post_init__(self):
        _raise_problems(self.problems())

    def problems(self) -> list[str | None]:
        """Degenerate sizes, refused before anything is built (an IndexError after writing
        world/base otherwise)."""
        out = [
            f"world.{name}={getattr(self, name)!r}: must be an integer >= {low}."
            for name, low in (
                ("n_train", 1),
                ("n_val", 0),
                ("n_test", 1),
                ("steps", 1),
                ("batch_size", 1),
                ("eval_n", 1),
                ("max_new_tokens", 1),
            )
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low
        ]
        if not out and self.n_val >= self.n_train:
            out.append(
                f"world.n_val={self.n_val}: must be below n_train={self.n_train} (the first n_val "
                "train rows are held out from SFT)."
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            out.append(f"world.lr={self.lr!r}: must be a number > 0.")
        return out

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The tiny Qwen2 config (tied embeddings, q/k/v biases) of this world."""
        return toy.tiny_config(
            vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            head_dim=self.hidden_size // self.num_heads,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat_dict(self) -> dict[str, Any]:
        """The fields with the difficulty's spelled out, as the `world` config section has them.

        This is the world's stage identity. `operators` appears only when it is not the default
        (the config section has no such field), so identities made from the config stay the same.
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        difficulty = dataclasses.asdict(out.pop("difficulty"))
        if tuple(difficulty["operators"]) == task.OPERATORS:
            del difficulty["operators"]
        return _sorted({**out, **difficulty})

    @classmethod
    def from_flat_dict(cls, d: Mapping[str, Any]) -> WorldSettings:
        """Inverse of `flat_dict` (the `world` config section)."""
        names = {f.name for f in dataclasses.fields(task.Difficulty)}
        difficulty = task.Difficulty(**{k: v for k, v in d.items() if k in names})
        return cls(difficulty=difficulty, **{k: v for k, v in d.items() if k not in names})

    @classmethod
    def smoke(cls) -> WorldSettings:
        """A tiny world for CI: seconds to build, accuracy meaningless."""
        return cls(
            n_train=512,
            n_val=16,
            n_test=16,
            difficulty=task.Difficulty(max_steps=2),
            hidden_size=32,
            intermediate_size=64,
            steps=40,
            batch_size=16,
            lr=1e-2,
            eval_n=2,
            max_new_tokens=24,
        )


# ------------------------------------------------------------------------------ rl
@dataclasses.dataclass(frozen=True)
class RLSettings:
    """The RL stage: one dlogp-train run per (method, seed), `workers` processes at a time.

    `methods_list[0]` with `seeds_list[0]` is "the RL model" of experiments 1-3. The fields other
    than methods, seeds, workers, weight_c and reshape_c are dlogp-train settings of every run
    (configs/dapo.py names; docs/method.md §4).
    """

    methods: str = "none,reshape_reversed,reshape"  # token-weighting methods, comma-separated
    seeds: str = "0,1,2"  # comma-separated
    weight_c: float = 0.2  # c of the weighting methods other than `reshape`
    reshape_c: float = 0.2  # c of `reshape`
    steps: int = 16
    lr: float = 1e-3
    b2: float = 0.99
    warmup_steps: int = 2
    n: int = 8  # responses per prompt (the DAPO group)
    train_prompts: int = 32
    gen_prompts: int = 48
    max_gen_rounds: int = 6
    mini_batches: int = 2
    eval_every: int = 4
    eval_n: int = 4
    eval_prompts: int = 128
    dynamic_sampling: bool = True
    workers: int = 2  # dlogp-train processes at a time

    def __post_init__(self):
        _raise_problems(self.problems())

    def problems(self) -> list[str | None]:
        return [
            list_problem("rl.methods", self.methods, str, allowed=TOKEN_WEIGHTS),
            list_problem("rl.seeds", self.seeds, int, low=0),
        ]

    @property
    def methods_list(self) -> list[str]:
        return split(self.methods)

    @property
    def seeds_list(self) -> list[int]:
        return split(self.seeds, int)

    @property
    def runs(self) -> list[tuple[str, int]]:
        """Every (method, seed) pair, methods first."""
        return [(m, s) for m in self.methods_list for s in self.seeds_list]

    def to_dict(self) -> dict[str, Any]:
        return _sorted(dataclasses.asdict(self))


# ------------------------------------------------------------------------------ experiments
@dataclasses.dataclass(frozen=True)
class ExpSettings:
    """Experiments 1-3: sampling on the test split with Avg@n (docs/method.md §5)."""

    n: int = 8  # samples per test prompt
    temperature: float = 1.0
    top_p: float = 1.0
    batch_prompts: int = 64
    seed: int = 0
    criteria: str = "dlogp,entropy_base,kl_rl_base,random"  # of the replacement sweep
    rates: str = "0.01,0.03,0.1,0.3"  # target replacement rates of the threshold sweep
    gammas: str = "0.5,1.0,2.0"  # γ grid of selective extrapolation (τ at `extrap_rate`)
    extrap_rate: float = 0.03  # the τ of the γ grid: Δlog p quantile giving this replacement rate
    extrap_rates: str = "0.1"  # τ grid (at the γ chosen on validation), besides extrap_rate
    all_gammas: str = "1.0"  # extrapolate_all
    val_n: int = 4  # samples per validation prompt when choosing γ

    def __post_init__(self):
        _raise_problems(self.problems())

    def problems(self) -> list[str | None]:
        out = [
            list_problem("exp.criteria", self.criteria, str, allowed=SWEEP_CRITERIA),
            list_problem("exp.rates", self.rates, float, low=1e-6, high=1.0),
            list_problem("exp.extrap_rates", self.extrap_rates, float, low=1e-6, high=1.0),
            list_problem("exp.gammas", self.gammas, float, low=0.0, high=1e3),
            list_problem("exp.all_gammas", self.all_gammas, float, low=0.0, high=1e3),
        ]
        if not 0 < self.extrap_rate <= 1:
            out.append(f"exp.extrap_rate={self.extrap_rate}: use a rate in (0, 1].")
        return out

    @property
    def criteria_list(self) -> list[str]:
        return split(self.criteria)

    @property
    def rates_list(self) -> list[float]:
        return split(self.rates, float)

    @property
    def gammas_list(self) -> list[float]:
        return split(self.gammas, float)

    @property
    def extrap_rates_list(self) -> list[float]:
        return split(self.extrap_rates, float)

    @property
    def all_gammas_list(self) -> list[float]:
        return split(self.all_gammas, float)

    def to_dict(self) -> dict[str, Any]:
        return _sorted(dataclasses.asdict(self))


# ------------------------------------------------------------------------------ the demo
def _stages_problem(stages: str) -> str | None:
    return list_problem("stages", stages, str, allowed=STAGES)


# Section name -> its dataclass from the config section's dict.
_SECTIONS = {
    "world": WorldSettings.from_flat_dict,
    "rl": lambda d: RLSettings(**d),
    "exp": lambda d: ExpSettings(**d),
}


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Everything `dlogp-demo` reads.

    Attributes:
      workdir: the work directory (layout in `dlogp_jax.demo.pipeline`).
      stages: comma-separated subset of STAGES (dependencies run or are reused automatically).
      mesh: the device mesh of every tool run (`dlogp_jax.sharding.make_mesh` spec).
      xla_cache: keep JAX's persistent compilation cache in `workdir/xla_cache` while the demo
        runs (its dlogp-train processes share it); the user's own cache setting always wins.
      world, rl, exp: the sections.
    """

    workdir: str = "runs/demo"
    stages: str = ",".join(STAGES)
    mesh: str = "fsdp:-1"
    xla_cache: bool = True
    world: WorldSettings = WorldSettings()
    rl: RLSettings = RLSettings()
    exp: ExpSettings = ExpSettings()

    def __post_init__(self):
        _raise_problems([_stages_problem(self.stages)])

    @property
    def stages_list(self) -> list[str]:
        return split(self.stages)

    def section_dict(self, name: str) -> dict[str, Any]:
        """Config section `name` (world, rl or exp) as a plain dict: a stage's settings identity."""
        if name == "world":
            return self.world.flat_dict()
        return getattr(self, name).to_dict()

    def to_dict(self) -> dict[str, Any]:
        """The settings as the demo's ConfigDict gives them (`results.json` records this)."""
        top = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return _sorted({**top, **{name: self.section_dict(name) for name in _SECTIONS}})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DemoSettings:
        """From the demo config's `to_dict()`.

        Raises:
          ValueError with one line per bad field (every section is checked).
        """
        d = dict(d)
        problems, sections = [], {}
        for name, make in _SECTIONS.items():
            fields = dict(d.pop(name, {}))
            try:
                sections[name] = make(fields)
            except ValueError as e:
                problems.append(str(e))
            except TypeError as e:  # a field this section does not have
                problems.append(f"{name}: {e}")
        problems.append(_stages_problem(d.get("stages", cls.stages)))
        _raise_problems(problems)
        return cls(**d, **sections)
