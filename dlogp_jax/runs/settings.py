"""The settings of the three runs: small frozen dataclasses, validated on construction.

Field names and defaults are those of `configs/score.py`, `configs/sample.py` and `configs/dapo.py`
(tests/runs/settings_test.py checks it), so `--config.x=...` on the command line and
`ScoreSettings(x=...)` in Python name the same setting. A settings object with bad fields raises one
ValueError with one message per bad field, each naming its field. Settings that need the checkpoint
are checked when the run starts: decoding (mode, criterion, sampling filters) by `DecodeSpec`,
stop tokens against the tokenizer, the mesh spec against the devices.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from dlogp_jax.analysis.plots import FORMATS as PLOT_FORMATS
from dlogp_jax.analysis.view_data import COLOURINGS
from dlogp_jax.data.prompts import TEMPLATE_FROM
from dlogp_jax.engine.choice import setting_problems
from dlogp_jax.extrapolation import CRITERIA, CRITERION_ALIASES
from dlogp_jax.model.pair import DTYPES
from dlogp_jax.rl.dapo_loss import LossConfig
from dlogp_jax.rl.rewards import REWARDS
from dlogp_jax.rl.rollout import UNFILLED, RolloutConfig
from dlogp_jax.rl.train_state import OptimizerConfig
from dlogp_jax.runs import services
from dlogp_jax.sampling.spec import MODES

REWARDS_BY_SOURCE_FORMAT = "rollout.rewards_by_source: write 'source_prefix:reward,...'."


# ------------------------------------------------------------------------------ checks
def _raise(problems: list[str]) -> None:
    if problems:
        raise ValueError(" ".join(problems))


def _paths(settings, *names: str) -> None:
    """Accepts pathlib paths for the path fields (stored as str: they go into run files)."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, os.PathLike):
            object.__setattr__(settings, name, os.fspath(value))


def _inputs(settings, name: str) -> list[str]:
    if settings.demo or (settings.base and settings.data):
        return []
    return [
        f"base, data: set --config.base=DIR and --config.data=FILE (or use configs/{name}.py:demo)."
    ]


def local_path_problems(path: str, field: str) -> list[str]:
    """Outputs are written with local file APIs; Cloud Storage works through a FUSE mount."""
    if "://" not in str(path):
        return []
    return [
        f"{field}={path!r}: URL paths are not supported here; mount the bucket with Cloud "
        "Storage FUSE (e.g. gcsfuse BUCKET /gcs/BUCKET, or launch/tpu_pod.sh --bucket) and pass "
        "/gcs/BUCKET/... instead."
    ]


def _template_from(value: str) -> list[str]:
    if value in TEMPLATE_FROM:
        return []
    return [f"template_from={value!r}: use base or rl (or leave it empty)."]


def _dtype(value: str, field: str) -> list[str]:
    return [] if value in DTYPES else [f"{field}={value!r}: use one of {', '.join(DTYPES)}."]


def _at_least(settings, low: int, *names: str) -> list[str]:
    def bad(v) -> bool:
        return isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low

    return [
        f"{name}={getattr(settings, name)!r}: must be an integer >= {low}."
        for name in names
        if bad(getattr(settings, name))
    ]


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(settings, *names: str) -> list[str]:
    """NaN and infinities are refused: a NaN threshold compares false everywhere (silently the
    plain model), and a run file holding NaN never matches itself again."""
    return [
        f"{name}={getattr(settings, name)!r}: must be a finite number."
        for name in names
        if not _number(getattr(settings, name)) or not math.isfinite(getattr(settings, name))
    ]


def _between(settings, name: str, low: float, high: float, *, open_low: bool = False) -> list[str]:
    """`name` in [low, high] (or (low, high] with open_low), finite."""
    value = getattr(settings, name)
    if _finite(settings, name):
        return _finite(settings, name)
    if (value <= low if open_low else value < low) or value > high:
        return [f"{name}={value!r}: must be in {'(' if open_low else '['}{low}, {high}]."]
    return []


def _one_of(settings, name: str, known) -> list[str]:
    value = getattr(settings, name)
    return [] if value in known else [f"{name}={value!r}: use one of {', '.join(known)}."]


def reward_names() -> list[str]:
    """The rewards a run may name: the registered ones (`rl.rewards.REWARDS`) and `accuracy`."""
    return sorted(REWARDS) + ["accuracy"]


def _float_list(value) -> tuple[float, ...] | None:
    """(-0.2, -0.3) from "-0.2,-0.3" or a sequence of numbers; None when it is neither."""
    parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
    try:
        return tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        return None


def _int_list(value) -> tuple[int, ...] | None:
    """(64, 128) from "64,128" or a sequence of ints; None when it is neither."""
    parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else value
    try:
        return tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------ settings
@dataclasses.dataclass(frozen=True)
class Distributed:
    """`jax.distributed` settings; an empty coordinator auto-detects (TPU pods, SLURM)."""

    enabled: bool = False  # also on when the environment has DLOGP_DISTRIBUTED=1 (launch/*.sh)
    coordinator_address: str = ""  # host:port of process 0
    num_processes: int = 1
    process_id: int = 0


@dataclasses.dataclass(frozen=True)
class ScoreSettings:
    """`score`: per-token log p, entropy, Δlog p and KL of text under one or two models."""

    base: str = ""  # HF checkpoint directory of the base model
    rl: str = ""  # HF checkpoint directory of the RL model ("" = score the base model alone)
    data: str = ""  # .jsonl / .parquet: prompt+response text, or prompt_ids+response_ids
    out: str = "runs/score"
    chat_template: bool = False  # wrap `prompt` in the tokenizer's chat template (one user turn)
    # Whose chat template: base | rl (the official runs) | "" (the base's; refused if they differ).
    template_from: str = ""
    dtype: str = "float32"  # "bfloat16" on accelerators
    mesh: str = "fsdp:-1"  # e.g. "data:2,fsdp:2,tensor:2"
    batch_size: int = 8
    length_bucket: int = 64  # pad lengths to multiples of this (fewer recompilations)
    chunk_tokens: int = 1024  # tokens projected to the vocabulary at once (memory knob)
    max_length: int = 16384  # longer rows are refused
    top_k: int = 20  # most negative / positive Δlog p tokens listed in summary.json
    top_alternatives: int = 0  # each model's K most probable tokens per position (dlogp-view: 5)
    demo: bool = False  # build tiny checkpoints and data under `out` first
    distributed: Distributed = Distributed()

    def __post_init__(self):
        _paths(self, "base", "rl", "data", "out")
        problems = _inputs(self, "score") + _template_from(self.template_from)
        problems += local_path_problems(self.out, "out") + _dtype(self.dtype, "dtype")
        problems += _at_least(self, 1, "batch_size", "length_bucket", "chunk_tokens", "max_length")
        problems += _at_least(self, 0, "top_k", "top_alternatives")
        _raise(problems)


@dataclasses.dataclass(frozen=True)
class PairsSettings:
    """`pairs`: `sample` outputs -> one `score` input with exact token ids, grouped by author."""

    samples: str = ""  # comma-separated DIR:GROUP, each DIR a dlogp-sample output
    out: str = "runs/pairs.jsonl"  # the .jsonl to write

    def __post_init__(self):
        _paths(self, "out")
        problems = [] if self.samples else ["samples: set --config.samples=DIR:GROUP,DIR:GROUP."]
        for spec in filter(None, self.samples.split(",")):
            path, sep, group = spec.rpartition(":")
            if not (sep and path and group):
                problems.append(f"samples: write DIR:GROUP, got {spec!r}.")
        _raise(problems + local_path_problems(self.out, "out"))

    @property
    def sample_runs(self) -> list[tuple[str, str]]:
        """(directory, group) pairs of `samples`."""
        return [s.rpartition(":")[::2] for s in filter(None, self.samples.split(","))]


@dataclasses.dataclass(frozen=True)
class ViewSettings:
    """`view`: one self-contained HTML page of a `score` or `sample` output's tokens."""

    input: str = ""  # a dlogp-score or dlogp-sample output directory
    out: str = ""  # the HTML file to write ("" = <input>/view.html)
    criterion: str = "dlogp"  # the threshold control's first metric (dlogp, entropy_*, kl_*)
    threshold: float = -0.3  # its first τ: dlogp selects Δlog p <= τ, entropy and KL >= τ
    tokenizer: str = ""  # checkpoint whose tokenizer decodes a sample output ("" = run.json's base)
    title: str = ""  # page title ("" = the input directory)
    max_responses: int = 0  # keep the first N responses (0 = all; a huge page loads slowly)

    def __post_init__(self):
        _paths(self, "input", "out", "tokenizer")
        problems = [] if self.input else ["input: set --config.input=DIR (a score/sample output)."]
        problems += local_path_problems(self.input, "input") + local_path_problems(self.out, "out")
        problems += _at_least(self, 0, "max_responses")
        if self.criterion not in COLOURINGS:
            problems.append(f"criterion={self.criterion!r}: use one of {', '.join(COLOURINGS)}.")
        problems += _finite(self, "threshold")
        _raise(problems)


PLOT_KINDS = ("train", "sample")


def _str_list(value) -> tuple[str, ...]:
    """("a", "b") from "a,b" or a sequence of strings."""
    parts = value.split(",") if isinstance(value, str) else value
    return tuple(str(p).strip() for p in parts if str(p).strip())


@dataclasses.dataclass(frozen=True)
class PlotSettings:
    """`plot`: paper figures of `train` runs (Fig. 5 layout) or of `sample` outputs (Fig. 1c/2, 4)."""

    kind: str = "train"  # train: dlogp-train workdirs; sample: dlogp-sample output directories
    inputs: tuple[str, ...] = ()  # the run / output directories; also given as "a,b,..."
    labels: tuple[str, ...] = ()  # one legend label per input ("" = the directory names)
    out: str = ""  # directory of the figures ("" = the input, when there is one)
    formats: tuple[str, ...] = PLOT_FORMATS  # any of png, pdf, svg; also given as "png,pdf"
    metrics: tuple[str, ...] = ()  # train: the metrics.jsonl keys to plot (() = the usual set)
    title: str = ""  # figure title ("" = none)
    dpi: int = 150  # PNG resolution

    def __post_init__(self):
        for name in ("inputs", "labels", "formats", "metrics"):
            object.__setattr__(self, name, _str_list(getattr(self, name)))
        _paths(self, "out")
        problems = [] if self.kind in PLOT_KINDS else [f"kind={self.kind!r}: use train or sample."]
        if not self.inputs:
            problems.append("inputs: give the runs, e.g. dlogp-plot train RUN1 RUN2.")
        if self.labels and len(self.labels) != len(self.inputs):
            problems.append(
                f"labels: {len(self.labels)} labels for {len(self.inputs)} inputs; give one each."
            )
        if len(self.inputs) > 1 and not self.out:
            problems.append("out: set --config.out=DIR when plotting several inputs.")
        bad = [f for f in self.formats if f not in PLOT_FORMATS]
        if bad or not self.formats:
            problems.append(f"formats={','.join(bad)!r}: use some of {', '.join(PLOT_FORMATS)}.")
        for path in self.inputs:
            problems += local_path_problems(path, "inputs")
        problems += local_path_problems(self.out, "out") + _at_least(self, 1, "dpi")
        _raise(problems)


@dataclasses.dataclass(frozen=True)
class SampleSettings:
    """`sample`: plain, selective-replacement and extrapolated decoding of a base/RL pair."""

    base: str = ""  # HF checkpoint directory of the base model (the driver)
    rl: str = ""  # HF checkpoint directory of the RL model (needed unless mode=single)
    data: str = ""  # .jsonl / .parquet with `prompt` (or `problem`) and optional `answer`
    out: str = "runs/sample"
    mode: str = "single"  # single | replace | extrapolate | extrapolate_all
    # dlogp | logp | entropy_base | entropy_rl | kl_rl_base | kl_base_rl | kl_sym | random | all |
    # none, or an official name (neg_logp, entropy, assist_entropy, kl, kl_r, js, rand)
    criterion: str = "dlogp"
    threshold: float = -0.3  # τ: dlogp fires at Δlog p <= τ; entropy/KL at >= τ; random at U < τ
    gamma: float = 0.0  # γ of π_RL^(1+γ) / π_base^γ
    # A τ/γ sweep (runs._sweep): every (threshold, gamma) pair of these lists, one model load,
    # each in out/points/; () = the single threshold / gamma. Also given as "-0.2,-0.3".
    thresholds: tuple[float, ...] = ()
    gammas: tuple[float, ...] = ()
    faithful: bool = False  # the official top-K approximation instead of the exact vocabulary
    faithful_top_k: int = 50
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    max_new_tokens: int = 1024
    stop_tokens: str = ""  # comma-separated; "" = the tokenizer's eos + <|im_end|> + <|endoftext|>
    n: int = 4  # samples per prompt
    seed: int = 0
    chat_template: bool = True  # one user turn in the tokenizer's chat template
    # Whose chat template: base | rl (the official runs) | "" (the base's; refused if they differ).
    template_from: str = ""
    prompt_suffix: str = ""  # appended to each prompt before templating
    batch_prompts: int = 8  # prompts per decode call (static: one batch of batch_prompts * n)
    # Left-pad prompts to one of these lengths; also given as "64,128,...".
    prompt_buckets: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096)
    engine: str = "paged"  # paged (continuous batching over KV pages) | static (dense batch)
    kv_pages: int = 0  # KV pages per model (paged); 0 = auto from the device's free memory
    page_size: int = 16  # tokens per KV page (paged)
    max_seqs: int = 0  # sequences decoded together (paged); 0 = auto
    dtype: str = "float32"  # "bfloat16" on accelerators
    mesh: str = "fsdp:-1"
    grader_workers: int = 2  # processes running math-verify (0 = in process)
    demo: bool = False  # build tiny checkpoints and prompts under `out` first
    distributed: Distributed = Distributed()

    def __post_init__(self):
        _paths(self, "base", "rl", "data", "out")
        problems = _inputs(self, "sample") + _template_from(self.template_from)
        if self.mode != "single" and not self.rl and not self.demo:
            problems.append(f"mode={self.mode!r} needs --config.rl=DIR (the RL checkpoint).")
        problems += local_path_problems(self.out, "out") + _dtype(self.dtype, "dtype")
        problems += _at_least(self, 1, "n", "batch_prompts") + _at_least(self, 0, "grader_workers")
        problems += _decoding_problems(self) + setting_problems(self)
        buckets = _int_list(self.prompt_buckets)
        if buckets is None or any(b < 1 for b in buckets):
            problems.append(
                f"prompt_buckets={self.prompt_buckets!r}: give positive lengths, e.g. '64,128,256'."
            )
        else:
            object.__setattr__(self, "prompt_buckets", buckets)
        _raise(problems + _sweep_problems(self))


def _sweep_problems(s: SampleSettings) -> list[str]:
    """The sweep lists parsed in place; refused where the mode ignores them (a sweep of identical
    runs), or with repeated, non-finite or unparsable values."""
    problems = []
    uses = {
        "thresholds": s.mode in ("replace", "extrapolate") and s.criterion not in ("all", "none"),
        "gammas": s.mode in ("extrapolate", "extrapolate_all"),
    }
    needs = {
        "thresholds": "mode=replace|extrapolate with a criterion other than all/none",
        "gammas": "mode=extrapolate|extrapolate_all",
    }
    for name in ("thresholds", "gammas"):
        values = _float_list(getattr(s, name))
        if values is None or not all(math.isfinite(v) for v in values):
            problems.append(f"{name}={getattr(s, name)!r}: give finite numbers, e.g. '-0.2,-0.3'.")
        elif len(set(values)) != len(values):
            problems.append(f"{name}={getattr(s, name)!r}: a value is repeated.")
        elif values and not uses[name]:
            problems.append(
                f"{name}={getattr(s, name)!r}: mode={s.mode!r} criterion={s.criterion!r} does "
                f"not use it; a sweep over it needs {needs[name]}."
            )
        else:
            object.__setattr__(s, name, values)
    return problems


def _decoding_problems(s: SampleSettings) -> list[str]:
    """What `DecodeSpec` would refuse after the models are loaded, checked before that."""
    criteria = (*CRITERIA, *CRITERION_ALIASES)  # the official names are aliases (DecodeSpec)
    problems = _one_of(s, "mode", MODES) + _one_of(s, "criterion", criteria)
    problems += _finite(s, "threshold", "gamma") + _between(s, "top_p", 0, 1, open_low=True)
    problems += _between(s, "temperature", 0, math.inf)
    problems += _at_least(s, 0, "top_k") + _at_least(s, 1, "max_new_tokens", "faithful_top_k")
    return problems


@dataclasses.dataclass(frozen=True)
class GradeSettings:
    """`grade`: responses from any engine graded against answers (Avg@n, pass@k, maj@k)."""

    data: str = ""  # .jsonl / .parquet: one response (or a list of them) and an answer per row
    out: str = "runs/grade"
    # dapo_answer | boxed_math_verify | accuracy (rewards.grade) | by_source | a registered reward
    grader: str = "by_source"
    # by_source: data_source prefix -> grader ("prefix:grader,..."), else default_grader.
    rewards_by_source: str = "math_dapo:dapo_answer,aime:dapo_answer"
    default_grader: str = "boxed_math_verify"
    response_field: str = "response"  # a string or a list of strings; dotted names reach inside
    answer_field: str = "answer"  # e.g. reward_model.ground_truth for verl parquet
    prompt_field: str = "prompt_index"  # groups the samples of a prompt; absent = the row alone
    data_source_field: str = "data_source"
    strip_special_tokens: bool = True  # grade text without <|...|> tokens (as DAPO / our sampler)
    workers: int = 2  # grading processes (0 = in process)
    timeout_s: float = 10.0  # wall-clock limit of one response's grading

    def __post_init__(self):
        _paths(self, "data", "out")
        problems = [] if self.data else ["data: set --config.data=FILE (responses and answers)."]
        problems += local_path_problems(self.out, "out") + _at_least(self, 0, "workers")
        if isinstance(self.timeout_s, bool) or not (
            isinstance(self.timeout_s, numbers.Real) and self.timeout_s > 0
        ):
            problems.append(f"timeout_s={self.timeout_s!r}: must be a number > 0.")
        try:
            parse_rewards_by_source(self.rewards_by_source)
        except ValueError:
            problems.append("rewards_by_source: write 'source_prefix:grader,...'.")
        for name in ("response_field", "answer_field"):
            if not getattr(self, name):
                problems.append(f"{name}: name the column.")
        problems += _one_of(self, "grader", ["by_source", *reward_names()])
        problems += _one_of(self, "default_grader", reward_names())
        _raise(problems)


@dataclasses.dataclass(frozen=True)
class ProfileSettings:
    """A `jax.profiler` trace of training steps start_step .. start_step + num_steps - 1."""

    start_step: int = 0  # 1-based; 0 = off
    num_steps: int = 2

    def __post_init__(self):
        _raise(_at_least(self, 0, "start_step") + _at_least(self, 1, "num_steps"))


@dataclasses.dataclass(frozen=True)
class MergeSettings:
    """`merge`: the ExPO checkpoint θ_RL + α·(θ_RL − θ_base) as an HF directory."""

    base: str = ""  # HF checkpoint directory of the base model
    rl: str = ""  # HF checkpoint directory of the RL model (its tokenizer is written out)
    out: str = "runs/merge"  # output HF directory (replaced if it exists)
    alpha: float = 0.3  # α: 0 = the RL model, > 0 extrapolates past it
    dtype: str = "bfloat16"  # dtype of the written weights: float32 | bfloat16 | float16

    def __post_init__(self):
        _paths(self, "base", "rl", "out")
        problems = [] if self.base and self.rl else ["base, rl: set --config.base and --config.rl."]
        problems += local_path_problems(self.out, "out") + _dtype(self.dtype, "dtype")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, numbers.Real):
            problems.append(f"alpha={self.alpha!r}: must be a number.")
        _raise(problems)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """Held-out Avg@n every `every` steps and at step 0 (data="" or every=0: off)."""

    data: str = ""  # a file `data.rows.read_rows` reads, in a training-data layout
    every: int = 0
    n: int = 4  # samples per prompt
    temperature: float = 1.0
    top_p: float = 0.7  # the eval's own nucleus mass (the official val_top_p), not the rollout's
    # by_source: each row's rollout reward (rollout.rewards_by_source, else default_reward);
    # "accuracy" (rewards.grade) or a REWARDS name for every row.
    reward: str = "by_source"
    max_prompts: int = 0  # the first N prompts only (0 = all)
    seed: int = 1234  # fixed across evaluations, so curves compare like with like

    def __post_init__(self):
        _paths(self, "data")
        problems = _at_least(self, 0, "every", "max_prompts") + _at_least(self, 1, "n")
        problems += _between(self, "temperature", 0, math.inf)
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p={self.top_p}: must be in (0, 1].")
        if not self.reward:
            problems.append("reward: by_source, accuracy or a registered reward name.")
        _raise(["eval." + p for p in problems])


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """The loop-level training settings (`rl.trainer.TrainerConfig` without the step count)."""

    mini_batches: int = 16  # optimizer updates per training step
    micro_batches: int = 16  # gradient accumulation inside one update
    seed: int = 0
    save_every: int = 10  # checkpoint every N steps (and at the end, and on SIGTERM)
    keep_checkpoints: int = 3
    export_every: int = 50  # HF export of the policy every N steps (0: only at the end)
    chunk_tokens: int = 512  # tokens projected to the vocabulary at once (memory knob)
    remat: bool = True  # recompute activations in the backward pass
    grader_workers: int = 8  # processes running the rewards (0 = in process)
    log_every: int = 1

    def __post_init__(self):
        problems = _at_least(
            self, 1, "mini_batches", "micro_batches", "save_every", "keep_checkpoints"
        )
        problems += _at_least(self, 1, "chunk_tokens", "log_every")
        problems += _at_least(self, 0, "export_every", "grader_workers")
        _raise(["trainer." + p for p in problems])


WANDB_MODES = ("offline", "online", "disabled")


@dataclasses.dataclass(frozen=True)
class LoggingSettings:
    """Where training metrics go besides metrics.jsonl and TensorBoard: Weights & Biases."""

    wandb: bool = False  # log to W&B too (pip install 'dlogp_jax[wandb]'); process 0 only
    wandb_project: str = "dlogp_jax"
    wandb_entity: str = ""  # W&B team or user ("" = your default entity)
    wandb_run_name: str = ""  # "" = the work directory's name
    wandb_mode: str = "offline"  # offline (files under wandb/, `wandb sync`) | online | disabled

    def __post_init__(self):
        problems = _one_of(self, "wandb_mode", WANDB_MODES)
        if self.wandb:
            problems += services.wandb_problems()
        _raise(["logging." + p for p in problems])


# The paper's DAPO recipe (docs/method.md §4): n = 16, 512 prompts per step from rounds of 1536.
PAPER_ROLLOUT = RolloutConfig(
    n=16,
    train_prompts=512,
    gen_prompts=1536,
    max_gen_rounds=10,
    dynamic_sampling=True,
    temperature=1.0,
    top_p=1.0,
    max_response_len=8192,
    overlong_buffer=4096,
    overlong_factor=1.0,
    default_reward="dapo_answer",
    rewards_by_source=(("math_dapo", "dapo_answer"), ("aime", "dapo_answer")),
)


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """`train`: DAPO with probability-based token weights (docs/method.md §4)."""

    workdir: str = "runs/dapo"
    init_from: str = ""  # HF checkpoint directory of the initial policy ("" = random tiny model)
    data: str = ""  # jsonl / parquet / save_to_disk dir (DAPO-Math-17k layout or problem/answer)
    toy_task: bool = False  # use the built-in toy task instead of `data`
    chat_template: bool = True
    prompt_format: str = "{content}"  # applied to the last user message
    max_prompt_len: int = 2048
    dtype: str = "float32"  # compute dtype ("bfloat16" on accelerators)
    param_dtype: str = "float32"  # master weights and AdamW state (keep fp32: lr 1e-6 steps)
    export_dtype: str = "bfloat16"  # HF exports: bfloat16 to serve | float32 (the master weights)
    hub_repo: str = ""  # upload hf/final to this Hugging Face Hub repo after training ("" = off)
    hub_private: bool = True  # create the hub repo private (an existing repo keeps its visibility)
    mesh: str = "fsdp:-1"
    reference: bool = False  # keep the initial policy: Δlog p vs init (and k3 KL if kl_coef > 0)
    total_steps: int = 100
    eval: EvalSettings = EvalSettings()
    rollout: RolloutConfig = PAPER_ROLLOUT
    loss: LossConfig = LossConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    trainer: TrainerSettings = TrainerSettings()
    profile: ProfileSettings = ProfileSettings()
    logging: LoggingSettings = LoggingSettings()
    distributed: Distributed = Distributed()

    def __post_init__(self):
        _paths(self, "workdir", "init_from", "data")
        problems = []
        if not self.toy_task and not self.data:
            problems.append("data: set --config.data=FILE (or --config.toy_task=true).")
        problems += local_path_problems(self.workdir, "workdir")
        problems += _dtype(self.dtype, "dtype") + _dtype(self.param_dtype, "param_dtype")
        problems += _dtype(self.export_dtype, "export_dtype")
        problems += services.hub_problems(self.hub_repo) if self.hub_repo else []
        problems += _at_least(self, 1, "max_prompt_len", "total_steps")
        problems += ["rollout." + p for p in _rollout_problems(self.rollout)]
        problems += setting_problems(self.rollout, "rollout.")
        _raise(problems)


def _rollout_problems(r: RolloutConfig) -> list[str]:
    """Ranges of the rollout section and its reward names, checked before any model is loaded."""
    problems = _at_least(r, 2, "n")  # one response per prompt: every group's advantage is 0
    problems += _at_least(r, 1, "train_prompts", "gen_prompts", "max_gen_rounds")
    problems += _at_least(r, 1, "max_response_len") + _at_least(r, 0, "overlong_buffer")
    problems += _between(r, "temperature", 0, math.inf) + _between(r, "top_p", 0, 1, open_low=True)
    problems += _finite(r, "overlong_factor") + _one_of(r, "unfilled", UNFILLED)
    pairs = r.rewards_by_source
    if isinstance(pairs, str) or not all(
        isinstance(p, Sequence) and len(p) == 2 and all(isinstance(s, str) for s in p)
        for p in pairs
    ):
        return problems + [REWARDS_BY_SOURCE_FORMAT.removeprefix("rollout.")]
    for field, name in [("default_reward", r.default_reward)] + [
        ("rewards_by_source", b) for _, b in pairs
    ]:
        if name not in reward_names():
            known = ", ".join(reward_names())
            problems.append(f"{field}: unknown reward {name!r}; use one of {known}.")
    return problems


def parse_rewards_by_source(text: str) -> tuple[tuple[str, str], ...]:
    """'math_dapo:dapo_answer,aime:dapo_answer' (the config's form) -> the RolloutConfig pairs."""
    pairs = [p.split(":") for p in text.split(",") if p]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(REWARDS_BY_SOURCE_FORMAT)
    return tuple((a, b) for a, b in pairs)


def config_dict(settings) -> dict[str, Any]:
    """Settings as the config they came from: nested dicts with sorted keys (as
    `ConfigDict.to_dict()` writes them), tuples as lists, `rewards_by_source` as its string."""

    def plain(x):
        if dataclasses.is_dataclass(x):
            out = {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
            if isinstance(x, RolloutConfig):
                out["rewards_by_source"] = ",".join(f"{a}:{b}" for a, b in x.rewards_by_source)
            return dict(sorted(out.items()))
        return [plain(v) for v in x] if isinstance(x, tuple) else x

    return plain(settings)


def from_dict(cls, values: Mapping[str, Any]):
    """`cls(**values)` with nested sections (dicts) built as their dataclasses: the inverse of
    `config_dict`, so a config (`ConfigDict.to_dict()`) or a run's config.json gives its settings.

    `rollout.rewards_by_source` may be the config's string ('prefix:reward,...') or pairs.
    Raises:
      ValueError: a key that is not a field of `cls` (or of a section), or bad settings.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if unknown := sorted(set(values) - set(names)):
        raise ValueError(f"{cls.__name__}: unknown settings {unknown}; known: {names}.")
    kw = dict(values)
    for name, value in values.items():
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, Mapping):
            kw[name] = from_dict(hints[name], value)
    if cls is RolloutConfig and "rewards_by_source" in kw:
        pairs = kw["rewards_by_source"]
        if isinstance(pairs, str):
            kw["rewards_by_source"] = parse_rewards_by_source(pairs)
        elif isinstance(pairs, Sequence) and all(isinstance(p, Sequence) for p in pairs):
            kw["rewards_by_source"] = tuple(tuple(p) for p in pairs)
    return cls(**kw)
