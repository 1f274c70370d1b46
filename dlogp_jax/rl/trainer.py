"""DAPO training with the paper's probability-based token weights: the step loop.

One training step (docs/method.md §4, verl's DAPO recipe):
  1. rollout: sample n responses per prompt from the current policy (temperature 1, top-p 1), reward
     them, keep groups with non-constant accuracy until `train_prompts` groups exist (rollout.py);
  2. GRPO advantages per group, broadcast to response tokens;
  3. old policy: one forward pass of the training model gives log π_θold (and entropy) of every
     response token; token weights w = f(p_old) multiply the advantages (constant for the step);
  4. the batch is split into `mini_batches` shuffled-in-order mini-batches, one AdamW update each.
Metrics go to `metrics.jsonl` (flat keys), TensorBoard and the optional `RunContext.scalar_sink`
(Weights & Biases), both under the namespaced tags of metric_tags.py; checkpoints (orbax, async,
keep-last-K, and on SIGTERM) and HF exports of the policy go to the work directory. A resumed run
continues identically: the generation seeds derive from (seed, step, round), and the data iterator
state is checkpointed.

Deviations from the official code (docs/method.md §6): see dapo_loss.py (exact token mean);
generation uses our sampler (exact, full vocabulary) instead of vLLM; p_old comes from this model's
forward pass as in verl.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from dlogp_jax.checkpoint import Checkpointer
from dlogp_jax.data.sources import prompt_batches
from dlogp_jax.model.tokenizer import stop_token_ids
from dlogp_jax.outputs import write_text
from dlogp_jax.rl import dapo_loss, metric_tags, train_step
from dlogp_jax.rl.advantages import grpo_advantages
from dlogp_jax.rl.rewards import Grader
from dlogp_jax.rl.rollout import Groups, RolloutConfig, collect
from dlogp_jax.rl.train_state import OptimizerConfig, TrainState, create, make_optimizer, schedule
from dlogp_jax.sampling import DecodeSpec
from dlogp_jax.sharding import gather_to_host, place


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Loop-level settings."""

    total_steps: int = 100
    mini_batches: int = 1  # optimizer updates per training step
    micro_batches: int = 1  # gradient accumulation inside one update
    seed: int = 0
    save_every: int = 10
    keep_checkpoints: int = 3
    export_every: int = 0  # 0: export only at the end
    chunk_tokens: int = 512
    remat: bool = True
    grader_workers: int = 2
    log_every: int = 1
    eval_every: int = 0  # evaluate held-out accuracy every N steps (and at step 0); 0 = never


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunContext:
    """What the loop needs besides the state (host objects, not traced)."""

    workdir: Path
    model: Any  # ModelConfig
    tokenizer: Any
    prompts: list
    prompt_len: int  # Tp
    mesh: Any
    ref_params: Any = None  # frozen initial policy, for Δlog p / KL metrics
    export_fn: Any = None  # export_fn(path, params)
    is_writer: bool = True
    eval_fn: Any = None  # eval_fn(params, grader) -> dict of `eval_*` metrics
    on_start: Any = None  # on_start(step): once restored (or fresh), before the first step
    scalar_sink: Any = None  # scalar_sink({tag: value}, step): each step's tagged scalars (W&B)


def batch_arrays(groups: Groups, n: int) -> dict[str, np.ndarray]:
    """The training batch dict (see train_step) from collected groups, without logp_old/weights.

    Args:
      groups: G groups of n responses (rows g*n + j), prompts [G, Tp], responses [G*n, M].
    Returns:
      tokens [G*n, Tp+M] int32, mask [G*n, Tp+M] bool, resp_mask [G*n, M] f32 and adv [G*n, M]
      f32 (the group's GRPO advantage on every response token, 0 after the response).
    """
    m = groups.responses.shape[1]
    prompt_tokens = np.repeat(groups.prompt_tokens, n, axis=0)
    prompt_mask = np.repeat(groups.prompt_mask, n, axis=0)
    resp_mask = np.arange(m)[None, :] < groups.lengths[:, None]
    adv = np.repeat(grpo_advantages(groups.rewards).reshape(-1), m).reshape(-1, m)
    return {
        "tokens": np.concatenate([prompt_tokens, groups.responses], axis=1).astype(np.int32),
        "mask": np.concatenate([prompt_mask, resp_mask], axis=1),
        "resp_mask": resp_mask.astype(np.float32),
        "adv": (adv * resp_mask).astype(np.float32),
    }


def _device(batch: dict, mesh) -> dict:
    return {k: place(v, mesh) for k, v in batch.items()}


def _masked_stats(x: np.ndarray, mask: np.ndarray, prefix: str) -> dict[str, float]:
    v = x[mask > 0]
    if v.size == 0:
        return {}
    q = np.percentile(v, [1, 5, 50, 95, 99])
    return {
        f"{prefix}_mean": float(v.mean()),
        **{f"{prefix}_p{p}": float(x) for p, x in zip((1, 5, 50, 95, 99), q)},
    }


# Exit status of `dlogp-train` stopped by SIGTERM or SIGINT after saving (EX_TEMPFAIL of
# sysexits.h): unfinished, so a scheduler retries; a re-run resumes.
EXIT_INTERRUPTED = 75


class _Preempted:
    """SIGTERM (TPU preemption) and SIGINT (Ctrl-C) set a flag; the loop saves and stops after the
    current step. A second SIGINT interrupts at once (KeyboardInterrupt, no save)."""

    def __init__(self):
        self.flag = False
        self.signal_name = ""
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def _handle(self, signum, _frame):
        if self.flag and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.flag = True
        self.signal_name = signal.Signals(signum).name

    def restore(self):
        for s, old in self._old.items():
            signal.signal(s, old)


@dataclasses.dataclass(frozen=True)
class _Run:
    """The static settings one training step needs."""

    ctx: RunContext
    cfg: TrainerConfig
    rollout: RolloutConfig
    step_cfg: train_step.StepConfig
    spec: DecodeSpec
    log: Callable[[str], None] = print


@dataclasses.dataclass(frozen=True)
class _MetricsLog:
    """Where step metrics go: metrics.jsonl, TensorBoard and the progress log (writer only)."""

    path: Path
    writer: Any  # tensorboardX SummaryWriter, None on processes that do not write
    sink: Any  # RunContext.scalar_sink or None
    is_writer: bool
    log: Callable[[str], None]
    cfg: TrainerConfig
    start_time: float
    start_step: int
    first_step_done: dict = dataclasses.field(default_factory=dict)  # ETA clock: (time, step)


def train(
    ctx: RunContext,
    init_params,
    *,
    cfg: TrainerConfig,
    rollout: RolloutConfig,
    loss: dapo_loss.LossConfig,
    opt: OptimizerConfig,
    log: Callable[[str], None] = print,
    on_step: Callable[[int], None] | None = None,
) -> TrainState:
    """Runs (or resumes) training in `ctx.workdir` up to `cfg.total_steps`.

    Args:
      ctx: the run's host objects. init_params: the policy at step 0 (ignored when resuming; its
        shardings are the restore target).
      cfg, rollout, loss, opt: loop, rollout, loss and optimizer settings.
      log: progress lines (one per `cfg.log_every` steps, resume and preemption notes).
      on_step: called with the number of finished steps after each step (progress bars).
    Returns:
      The final TrainState (step `cfg.total_steps`, or the last saved step after SIGTERM).
    Raises:
      ValueError: when train_prompts * n sequences do not split into mini x micro batches.
      rollout.NotEnoughGroups: when dynamic sampling cannot fill a step's batch.
    """
    _check_batch_split(cfg, rollout)
    step_cfg = train_step.StepConfig(
        model=ctx.model,
        loss=loss,
        prompt_len=ctx.prompt_len,
        vocab_limit=len(ctx.tokenizer),
        chunk_tokens=cfg.chunk_tokens,
        micro_batches=cfg.micro_batches,
        remat=cfg.remat,
        optimizer=opt,
        updates_per_step=cfg.mini_batches,
        temperature=rollout.temperature,
    )
    run = _Run(ctx, cfg, rollout, step_cfg, _rollout_spec(ctx.tokenizer, rollout), log)
    lr_at = schedule(opt, cfg.mini_batches)
    with jax.set_mesh(ctx.mesh):
        state = _create(init_params, opt, cfg.mini_batches, cfg.seed)
    data = prompt_batches(len(ctx.prompts), rollout.gen_prompts, cfg.seed)
    ckpt = Checkpointer(str(ctx.workdir / "checkpoints"), cfg.keep_checkpoints)
    if (restored := ckpt.restore_newest(state, log=log)) is not None:
        last, state, data_state, _ = restored
        data.set_state(data_state[str(jax.process_index())])
        log(f"resumed from step {last} in {ckpt.directory}")
    if ctx.on_start is not None:
        ctx.on_start(int(state.step))
    metrics_file = ctx.workdir / "metrics.jsonl"
    _truncate_metrics(metrics_file, int(state.step), ctx.is_writer)
    writer = _tensorboard(ctx.workdir / "tb") if ctx.is_writer else None
    sink = ctx.scalar_sink if ctx.is_writer else None
    out = _MetricsLog(
        metrics_file, writer, sink, ctx.is_writer, log, cfg, time.perf_counter(), int(state.step)
    )
    preempt = _Preempted()
    try:
        with Grader(workers=cfg.grader_workers) as grader:
            evaluating = ctx.eval_fn is not None and cfg.eval_every > 0
            if evaluating and int(state.step) == 0:
                _log_eval(out, 0, ctx.eval_fn(state.params, grader))
            while int(state.step) < cfg.total_steps and not preempt.flag:
                step = int(state.step)
                state, metrics = _one_step(state, step, run, data, grader)
                if evaluating and (step + 1) % cfg.eval_every == 0:
                    metrics.update(ctx.eval_fn(state.params, grader))
                metrics["lr"] = float(lr_at(step * cfg.mini_batches))
                _log_step(metrics, out)
                done = int(state.step)
                if on_step is not None:
                    on_step(done)
                if done % cfg.save_every == 0 or done == cfg.total_steps or preempt.flag:
                    data_state = {str(jax.process_index()): data.get_state()}
                    ckpt.save(done, state, _all_hosts(data_state), {"step": done})
                if ctx.export_fn and cfg.export_every and done % cfg.export_every == 0:
                    ctx.export_fn(ctx.workdir / "hf" / f"step_{done}", state.params)
        if preempt.flag:
            log(
                f"{preempt.signal_name}: saved step {int(state.step)}; re-run with the same "
                "workdir to resume"
            )
        elif ctx.export_fn:
            ctx.export_fn(ctx.workdir / "hf" / "final", state.params)
    finally:
        preempt.restore()
        ckpt.close()
        if writer is not None:
            writer.close()
    return state


def _check_batch_split(cfg: TrainerConfig, rollout: RolloutConfig) -> None:
    per_mini = rollout.train_prompts * rollout.n // cfg.mini_batches
    if rollout.train_prompts * rollout.n % cfg.mini_batches or per_mini % cfg.micro_batches:
        raise ValueError(
            f"train_prompts*n = {rollout.train_prompts * rollout.n} sequences must split into "
            f"mini_batches={cfg.mini_batches} x micro_batches={cfg.micro_batches} equal parts."
        )


def _rollout_spec(tokenizer, rollout: RolloutConfig) -> DecodeSpec:
    """Plain sampling of n responses per prompt over the tokenizer's vocabulary."""
    return DecodeSpec(
        mode="single",
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        max_new_tokens=rollout.max_response_len,
        stop_ids=stop_token_ids(tokenizer),
        pad_id=tokenizer.pad_token_id or 0,
        vocab_limit=len(tokenizer),
        n=rollout.n,
    )


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _create(params, opt: OptimizerConfig, updates_per_step: int, seed: int) -> TrainState:
    return create(params, make_optimizer(opt, updates_per_step), seed)


def _one_step(state, step: int, run: _Run, data, grader):
    ctx, cfg, step_cfg = run.ctx, run.cfg, run.step_cfg
    t0 = time.perf_counter()
    key = jax.random.wrap_key_data(state.rng)

    def seeds(round_: int) -> int:  # a function of (seed, step, round): resumes reproduce it
        round_key = jax.random.fold_in(jax.random.fold_in(key, step), round_)
        return int(jax.random.randint(round_key, (), 0, 2**31 - 1))

    groups, stats = collect(
        run.rollout,
        next_prompts=lambda: next(data),
        params=state.params,
        model=ctx.model,
        prompts=ctx.prompts,
        spec=run.spec,
        seeds=seeds,
        tp=ctx.prompt_len,
        tokenizer=ctx.tokenizer,
        grader=grader,
        mesh=ctx.mesh,
    )
    t1 = time.perf_counter()
    if groups is None:  # rollout.unfilled=train and not one informative group: no update
        logging.warning(
            "step %d: dynamic sampling found no informative group in %d rounds; the step makes "
            "no update (rollout.unfilled=train).",
            step + 1,
            run.rollout.max_gen_rounds,
        )
        return state.replace(step=state.step + 1), {"step": step + 1, **stats, "skipped": 1}
    if stats.get("groups_missing"):
        logging.warning(
            "step %d: dynamic sampling filled %d of %d groups; training on those (rollout."
            "unfilled=train).",
            step + 1,
            len(groups.prompt_index),
            run.rollout.train_prompts,
        )
    host = batch_arrays(groups.pad_to(run.rollout.train_prompts), run.rollout.n)
    if not np.any(host["adv"]):
        logging.warning(
            "step %d: ZERO SIGNAL: every group's rewards are equal, so every advantage is 0 and "
            "this step learns nothing; check the rewards/answers of the data, or set "
            "rollout.dynamic_sampling=true.",
            step + 1,
        )
    chunks = cfg.mini_batches * cfg.micro_batches  # old/ref passes run at micro-batch size
    with jax.set_mesh(ctx.mesh):
        logp_old, entropy = _forward_in_chunks(state.params, host, chunks, step_cfg, ctx.mesh)
        weights = dapo_loss.advantage_weights(  # focal: recomputed from π_θ in every update
            step_cfg.loss.weight_method,
            logp_old,
            host["resp_mask"],
            run.rollout.n,
            step_cfg.loss.weight_c,
        )
        host["weights"], host["logp_old"] = np.asarray(weights, np.float32), logp_old
        if ctx.ref_params is not None:
            host["logp_ref"], _ = _forward_in_chunks(
                ctx.ref_params, host, chunks, step_cfg, ctx.mesh
            )
        t2 = time.perf_counter()
        per = host["tokens"].shape[0] // cfg.mini_batches
        updates = []
        for i in range(cfg.mini_batches):
            mb = _device({k: v[i * per : (i + 1) * per] for k, v in host.items()}, ctx.mesh)
            state, m = train_step.update(state, mb, step_cfg)
            updates.append(gather_to_host(m))
    t3 = time.perf_counter()
    state = state.replace(step=state.step + 1)
    real = len(groups.prompt_index) * run.rollout.n  # the rows after them are padding
    mask = host["resp_mask"][:real]
    entropy = entropy[:real]
    num_tokens = max(mask.sum(), 1)
    metrics = {"step": step + 1, **stats}
    metrics.update({k: float(np.mean([u[k] for u in updates])) for k in updates[0]})
    metrics["update_skipped"] = int(sum(u["update_skipped"] for u in updates))
    if metrics["update_skipped"]:
        run.log(
            f"step {step + 1}: {metrics['update_skipped']} of {cfg.mini_batches} updates skipped "
            "(non-finite gradient norm); params and optimizer state kept"
        )
    metrics.update(
        groups_kept_fraction=stats["groups_kept"] / max(stats["groups_generated"], 1),
        response_length_mean=float(groups.lengths.mean()),
        response_length_max=int(groups.lengths.max()),
        entropy=float((entropy * mask).sum() / num_tokens),
        weight_mean=float((host["weights"][:real] * mask).sum() / num_tokens),
        zero_signal=int(not np.any(host["adv"])),
        batch_accuracy=float(groups.accuracy.mean()),
        batch_reward_mean=float(groups.rewards.mean()),
        time_step=t3 - t0,
        time_rollout=t1 - t0,
        time_old_logp=t2 - t1,
        time_update=t3 - t2,
        tokens_per_second=float(groups.lengths.sum()) / max(t3 - t0, 1e-9),
    )
    if "logp_ref" in host:
        dlogp = (host["logp_old"] - host["logp_ref"])[:real]
        metrics.update(_masked_stats(dlogp, mask, "dlogp_vs_init"))
    return state, metrics


def _forward_in_chunks(params, host: dict, chunks: int, step_cfg, mesh):
    """Response log-probs and entropies [B, M] (host), computed `chunks` rows-blocks at a time.

    A whole step batch at once (e.g. 8192 sequences of 10k tokens) would need terabytes of
    activations; micro-batch-sized passes need what one update's forward needs.
    """
    per = host["tokens"].shape[0] // chunks
    outs = []
    for i in range(chunks):
        part = _device({k: host[k][i * per : (i + 1) * per] for k in ("tokens", "mask")}, mesh)
        out = train_step.forward_logprobs(params, part["tokens"], part["mask"], step_cfg)
        outs.append(gather_to_host(out))
    return tuple(np.concatenate([o[j] for o in outs]) for j in range(2))


def _log_eval(out: _MetricsLog, step: int, metrics: dict) -> None:
    if not out.is_writer:
        return
    with out.path.open("a") as f:
        f.write(json.dumps({"step": step, **metrics}) + "\n")
    _scalars(out, metrics, step)


def _all_hosts(data_state: dict) -> dict:
    """Every process's iterator state in one JSON dict (each restores its own entry)."""
    if jax.process_count() == 1:
        return data_state
    blob = np.frombuffer(json.dumps(data_state).ljust(4096).encode(), np.uint8)
    merged = {}
    for row in multihost_utils.process_allgather(blob):
        merged.update(json.loads(bytes(row).decode()))
    return merged


def _truncate_metrics(path: Path, step: int, is_writer: bool) -> None:
    """Drops metric lines beyond the restored step (they are recomputed identically)."""
    if not is_writer or not path.exists():
        return
    keep = [
        ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step
    ]
    write_text(path, "".join(ln + "\n" for ln in keep))


def _tensorboard(path: Path):
    from tensorboardX import SummaryWriter

    return SummaryWriter(str(path))


def _scalars(out: _MetricsLog, metrics: dict, step: int) -> None:
    """One step's numeric metrics under their namespaced tags to TensorBoard and the sink."""
    tagged = metric_tags.tagged_scalars(metrics)
    for k, v in tagged.items():
        out.writer.add_scalar(k, v, step)
    out.writer.flush()
    if out.sink is not None:
        out.sink(tagged, step)


def _log_step(metrics: dict, out: _MetricsLog) -> None:
    """Appends one step's metrics (jsonl, TensorBoard, sink); a progress line every log_every."""
    if not out.is_writer:
        return
    with out.path.open("a") as f:
        f.write(json.dumps(metrics) + "\n")
    step = metrics["step"]
    _scalars(out, metrics, step)
    total = out.cfg.total_steps
    eta = eta_seconds(out.first_step_done, step, total, time.perf_counter())
    if metrics.get("skipped"):
        out.log(f"step {step}/{total} skipped: no informative group (no update)")
    elif step % out.cfg.log_every == 0 or step == total:
        out.log(
            f"step {step}/{total} loss {metrics['loss']:+.4f} "
            f"reward {metrics['reward_mean']:+.3f} acc {metrics['accuracy']:.3f} "
            f"kept {metrics['groups_kept_fraction']:.2f} len {metrics['response_length_mean']:.0f} "
            f"w {metrics['weight_mean']:.3f} gnorm {metrics['grad_norm']:.3f} "
            + ("ETA after the next step" if eta is None else f"ETA {eta:.0f}s")
        )


def eta_seconds(first_done: dict, step: int, total: int, now: float) -> float | None:
    """Seconds left, from the steps after this process's first one (which compiles the rollout
    and update programs: counted, it made a 28 s run announce 363 s). None until one later step
    has been timed. `first_done` holds (time, step) of the first step, set on the first call.
    """
    if "time" not in first_done:
        first_done.update(time=now, step=step)
        return None
    timed = step - first_done["step"]
    return (now - first_done["time"]) / timed * (total - step) if timed > 0 else None
