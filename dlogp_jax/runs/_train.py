"""`train`: DAPO with probability-based token weights (docs/method.md §4), sharded and
preemption-safe.

Writes into `settings.workdir`: `checkpoints/` (orbax), `metrics.jsonl`, `tb/` (TensorBoard),
`hf/step_N` and `hf/final` (HF exports of the policy), `config.json` (the settings) and `run.json`
(the settings as dotted names, each session's versions/devices/times, and `changes`: the settings
changed on resume, with the step they changed at); with `logging.wandb`, `wandb_run_id` and the
W&B run's files (runs.services). With `hub_repo`, process 0 uploads `hf/final` once training has
finished. Re-running with the same workdir resumes from the newest checkpoint that restores (also
after SIGTERM / SIGINT); a larger `total_steps` continues. Only `RESUMABLE` settings may change on
resume. One run at a time holds the workdir (`runs.files.locked`). The step loop itself is
`rl.trainer.train`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from absl import logging
from tqdm.auto import tqdm  # notebook-aware

from dlogp_jax import outputs, toy
from dlogp_jax.data.prompts import Prompt
from dlogp_jax.data.rows import read_rows
from dlogp_jax.data.sources import prepare_prompts
from dlogp_jax.engine import choice as engines
from dlogp_jax.errors import DataError
from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.pair import DTYPES
from dlogp_jax.model.tokenizer import load_tokenizer, stop_token_ids
from dlogp_jax.rl import trainer
from dlogp_jax.rl.evaluate import evaluate
from dlogp_jax.rl.rewards import REWARDS
from dlogp_jax.rl.train_state import TrainState
from dlogp_jax.runs import files, runtime, services
from dlogp_jax.runs.progress import StepTrace
from dlogp_jax.runs.settings import TrainSettings, config_dict, from_dict
from dlogp_jax.sampling import DecodeSpec
from dlogp_jax.sharding import tree_shardings


def train(settings: TrainSettings, *, log: Callable[[str], None] = logging.info) -> TrainState:
    """Trains (or resumes) up to `settings.total_steps`, holding the work directory's lock.

    Returns:
      the final TrainState (step `total_steps`, or the saved step after SIGTERM / SIGINT).
    Raises:
      DataError: bad training / eval rows, a workdir in use or not writable, or a resume with
      settings that change the run; CheckpointError: no checkpoint of the workdir restores;
      rollout.NotEnoughGroups: dynamic sampling found too few informative groups.
    """
    workdir = Path(settings.workdir)
    check_checkpoint_dir(settings.init_from, "init_from")
    mesh = runtime.init_runtime(settings.mesh, settings.distributed)  # no model loaded yet
    with (
        files.locked(workdir, field="workdir") if runtime.is_writer() else contextlib.nullcontext()
    ):
        changes = resume_guard(workdir, settings)
        with _wandb_run(settings, workdir) as wandb_run:
            state = _train(settings, workdir, changes, mesh, log, wandb_run)
    if settings.hub_repo and runtime.is_writer() and int(state.step) >= settings.total_steps:
        services.upload_export(
            workdir / "hf" / "final", repo=settings.hub_repo, private=settings.hub_private, log=log
        )
    return state


@contextlib.contextmanager
def _wandb_run(settings: TrainSettings, workdir: Path):
    """The W&B run of process 0 when `logging.wandb` (else None), finished on the way out: exit
    code 1 when training raised (W&B shows the run as failed)."""
    lg = settings.logging
    if not (lg.wandb and runtime.is_writer()):
        yield None
        return
    workdir.mkdir(parents=True, exist_ok=True)
    run = services.open_wandb(
        workdir,
        project=lg.wandb_project,
        entity=lg.wandb_entity,
        run_name=lg.wandb_run_name,
        mode=lg.wandb_mode,
        config=config_dict(settings),
    )
    try:
        yield run
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()


def _train(
    settings: TrainSettings, workdir: Path, changes: list[dict], mesh, log, wandb_run
) -> TrainState:
    model, params, tokenizer = init_policy(
        init_from=settings.init_from,
        dtype=settings.dtype,
        param_dtype=settings.param_dtype,
        seed=settings.trainer.seed,
        mesh=mesh,
    )
    prompts = training_prompts(settings, tokenizer)
    if len(prompts) < settings.rollout.gen_prompts:
        raise DataError(
            f"rollout.gen_prompts={settings.rollout.gen_prompts}: {settings.data or 'the toy task'}"
            f" has only {len(prompts)} prompts, fewer than one generation round; lower "
            "--config.rollout.gen_prompts (and train_prompts) or give more prompts."
        )
    prompt_len = prompt_bucket(prompts)
    keep_ref = settings.reference or settings.loss.kl_coef
    ref = jax.tree.map(lambda x: x.copy(), params) if keep_ref else None

    def export(path, p):  # every process gathers; process 0 writes
        hf_weights.export_params(
            path,
            p,
            model,
            tokenizer=tokenizer,
            dtype=hf_weights.numpy_dtype(settings.export_dtype),
            write=runtime.is_writer(),
        )

    record = files.RunRecord(workdir, write=runtime.is_writer())

    def on_start(step: int) -> None:  # the checkpoint restored: only now are the files rewritten
        if runtime.is_writer():
            outputs.write_json(workdir / "config.json", config_dict(settings))
        record.start(flat_settings(settings), changes=[{"step": step, **c} for c in changes])

    loop = trainer_config(settings)
    eval_fn = None
    if loop.eval_every:
        eval_fn = _eval_fn(settings, model, tokenizer, mesh)
    ctx = trainer.RunContext(
        workdir=workdir,
        model=model,
        tokenizer=tokenizer,
        prompts=prompts,
        prompt_len=prompt_len,
        mesh=mesh,
        ref_params=ref,
        export_fn=export,
        is_writer=runtime.is_writer(),
        eval_fn=eval_fn,
        on_start=on_start,
        scalar_sink=services.wandb_sink(wandb_run) if wandb_run is not None else None,
    )
    logging.info(
        "%d prompts (Tp=%d), model %s, %.1fM params",
        len(prompts),
        prompt_len,
        model.model_type,
        model.num_params / 1e6,
    )
    bar = tqdm(total=loop.total_steps, unit="step", desc="training", disable=not ctx.is_writer)
    trace = StepTrace(str(workdir / "tb"), settings.profile.start_step, settings.profile.num_steps)
    trace.before(1)  # a trace from step 1 (compilation included) starts before the loop

    def on_step(done: int) -> None:
        bar.update(done - bar.n)  # a resumed run starts at its restored step
        trace.after(done)
        trace.before(done + 1)

    try:
        state = trainer.train(
            ctx=ctx,
            init_params=params,
            cfg=loop,
            rollout=settings.rollout,
            loss=settings.loss,
            opt=settings.optimizer,
            log=log,
            on_step=on_step,
        )
    except BaseException as e:
        record.end(files.status_of(e))
        raise
    finally:
        bar.close()
        trace.close()
    done = int(state.step) >= settings.total_steps
    record.end("finished" if done else f"interrupted at step {int(state.step)}")
    return state


# Settings a resumed run may change: they do not change what it computes (how long, how often it
# logs / saves / evaluates, where it runs). Any other change is refused (`resume_guard`).
RESUMABLE = (
    "workdir",
    "total_steps",
    "mesh",
    "distributed.",
    "eval.every",
    "trainer.log_every",
    "trainer.save_every",
    "trainer.keep_checkpoints",
    "trainer.export_every",
    "trainer.grader_workers",
    "trainer.chunk_tokens",
    "trainer.remat",
    "profile.",  # tracing does not change the run
    "export_dtype",  # only the HF exports' precision
    "hub_repo",  # where the final export goes
    "hub_private",
    "logging.",  # where metrics are shown
)


def flat_settings(settings: TrainSettings) -> dict[str, Any]:
    """The settings as dotted names -> values ("rollout.n": 16), as run.json records them."""

    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out

    return flat(config_dict(settings))


def resume_guard(workdir: Path, settings: TrainSettings) -> list[dict[str, Any]]:
    """The settings changed since the checkpointed run in `workdir` ({field, before, now} each),
    when all of them are `RESUMABLE`; [] for a fresh workdir. Reads only; writes nothing.

    Raises:
      DataError: a change that alters the run (lists each with its old and new value, and how to
        start a new run instead).
    """
    if not _has_checkpoints(workdir / "checkpoints"):
        return []
    before = _previous_settings(workdir)
    if before is None:
        return []
    now = flat_settings(settings)
    changed = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    refused = [k for k in changed if not k.startswith(RESUMABLE) and k in before]
    if refused:
        listed = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in refused)
        raise DataError(
            f"workdir={str(workdir)!r} holds a run with other settings ({listed}), which would "
            "change it: resume with the old values, or start a new run with "
            "--config.workdir=NEW_DIR."
        )
    return [{"field": k, "before": before.get(k), "now": now.get(k)} for k in changed]


def _has_checkpoints(directory: Path) -> bool:
    return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


def _previous_settings(workdir: Path) -> dict[str, Any] | None:
    """The settings of the run in `workdir`: run.json's, else (older runs) config.json's."""
    record = files.read_run_file(workdir)
    if record is not None:
        return {k: v for k, v in record.items() if k not in files.RESERVED}
    legacy = workdir / "config.json"
    if not legacy.is_file():
        return None
    try:
        values = json.loads(legacy.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise DataError(f"{legacy}: unreadable; move it away to resume without it.") from None
    return flat_settings(from_dict(TrainSettings, values))


def check_checkpoint_dir(path: str, field: str) -> None:
    """A named HF checkpoint directory exists (before the tokenizer is looked for in it)."""
    if path and not Path(path).is_dir():
        raise DataError(
            f"{field}={path!r} is not a directory: give an HF checkpoint directory (config.json, "
            f"*.safetensors, tokenizer files){' or leave it empty' if field == 'init_from' else ''}."
        )


def trainer_config(settings: TrainSettings) -> trainer.TrainerConfig:
    """The step loop's settings: the trainer section, the step count and the eval period."""
    return trainer.TrainerConfig(
        total_steps=settings.total_steps,
        eval_every=settings.eval.every if settings.eval.data else 0,
        **dataclasses.asdict(settings.trainer),
    )


def init_policy(*, init_from: str, dtype: str, param_dtype: str, seed: int, mesh):
    """(model config, params, tokenizer): an HF checkpoint, or a random tiny model when
    `init_from` is "" (the toy tokenizer; the init is sharded as it is created).

    Params (and so AdamW's master weights) are kept in `param_dtype` (fp32 by default) while the
    forward pass computes in `dtype`: a bf16 master copy would round lr-1e-6 updates away.
    """
    if init_from:
        tokenizer = load_tokenizer(init_from)
        model = hf_weights.read_config(init_from, dtype=dtype)
        _, params = hf_weights.load_params(init_from, model, mesh=mesh, dtype=DTYPES[param_dtype])
        return model, params, tokenizer
    tokenizer = toy.build_tokenizer()
    model = toy.tiny_config(len(tokenizer), dtype=dtype)

    def init(key):
        return transformer.init(key, model, dtype=DTYPES[param_dtype], std=0.3)

    key = jax.random.key(seed)
    # eval_shape -> specs -> jit(out_shardings): each device creates only its own shard.
    shardings = tree_shardings(mesh, transformer.param_axes(model), jax.eval_shape(init, key))
    return model, jax.jit(init, out_shardings=shardings)(key), tokenizer


def training_prompts(settings: TrainSettings, tokenizer) -> list[Prompt]:
    """The training prompts: the built-in toy task, or `settings.data`."""
    rows = toy.toy_task_rows() if settings.toy_task else read_rows(settings.data)
    return prepare_prompts(
        rows,
        tokenizer,
        path=settings.data or "toy task",
        chat_template=settings.chat_template,
        prompt_format=settings.prompt_format,
        max_prompt_len=settings.max_prompt_len,
    )


def prompt_bucket(prompts: list[Prompt]) -> int:
    """Tp: the smallest power-of-two bucket (>= 64) holding every prompt, so shapes stay static."""
    longest = max(len(p.ids) for p in prompts)
    return next(b for b in (64, 128, 256, 512, 1024, 2048, 4096, 8192, longest) if b >= longest)


def _eval_fn(settings: TrainSettings, model, tokenizer, mesh):
    """eval_fn(params, grader) -> held-out Avg@n, pass@k, maj@k of the policy on `eval.data`, with
    the eval's own sampling (temperature, top_p) and reward (`eval.reward`)."""
    e, rollout = settings.eval, settings.rollout
    if e.reward not in ("by_source", "accuracy") and e.reward not in REWARDS:
        raise ValueError(
            f"eval.reward={e.reward!r}: use by_source, accuracy or one of {sorted(REWARDS)}."
        )
    rows = read_rows(e.data)[: e.max_prompts or None]
    prompts = prepare_prompts(
        rows,
        tokenizer,
        path=e.data,
        chat_template=settings.chat_template,
        prompt_format=settings.prompt_format,
        max_prompt_len=settings.max_prompt_len,
    )
    spec = DecodeSpec(
        mode="single",
        temperature=e.temperature,
        top_p=e.top_p,
        max_new_tokens=rollout.max_response_len,
        stop_ids=stop_token_ids(tokenizer),
        pad_id=tokenizer.pad_token_id or 0,
        vocab_limit=len(tokenizer),
        n=e.n,
    )
    tp = prompt_bucket(prompts)
    batch = max(1, min(16, len(prompts)))
    by_source = e.reward == "by_source"
    reward_for = rollout.reward_for if by_source else (lambda source: e.reward)

    def eval_fn(params, grader):
        return evaluate(
            params=params,
            model=model,
            tokenizer=tokenizer,
            prompts=prompts,
            spec=spec,
            seed=e.seed,
            tp=tp,
            mesh=mesh,
            grader=grader,
            batch_prompts=batch,
            reward_for=reward_for,
            engine=engines.choice_of(rollout),
        )

    return eval_fn
