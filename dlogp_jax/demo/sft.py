"""Supervised training of the demo world's base model on imperfect solution traces.

Legend: B batch, T sequence positions, D width, V vocabulary rows, P prompts, n samples per prompt.

Each example is one chat turn: the prompt is the problem as a user message (the tokenizer's chat
template with the generation prompt, exactly as the sampler and the RL trainer render it) and the
response is the step-by-step solution followed by `<|im_end|>`. The loss is the token-mean negative
log-likelihood of the response tokens only. With probability `slip_prob` a drawn example's solution
carries one arithmetic slip (`task.random_slip`, redrawn every time the example is drawn), so the
model learns a distribution that is sometimes right and often wrong: the *base* of the RL stage.
The slip probability can ramp up from 0 (`slip_ramp_frac`): with many slipped traces from the start,
whether a tiny model learns the arithmetic at all within a CPU budget varies from seed to seed; with
mostly clean traces first it learns the arithmetic, then the slips. The model does not learn "one
slip per trace": sampled at temperature 1 it slips at each step with some probability, and makes
other errors (copying, carries) too.

Optimizer: AdamW with linear warmup and cosine decay to 10% of the peak, global-norm clipping; the
step is jitted with its state donated. Models start from random init (no pretraining). It is the
library's `rl.train_state.make_optimizer` with a warmup-cosine schedule in place of the RL one
(constant after warmup, verl's DAPO recipe): supervised training from scratch decays the rate, and
the base models (and every cached world) depend on this schedule.

The paper starts RL from pretrained models; the demo's base is this tiny model trained on the spot,
so that the whole pipeline runs on a CPU (docs/method.md §6).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dlogp_jax.analysis.sample_summary import mean_ci
from dlogp_jax.data.prompts import render_prompt
from dlogp_jax.demo import task
from dlogp_jax.engine import choice as engines
from dlogp_jax.logprobs import token_logprobs
from dlogp_jax.model import transformer
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.model.tokenizer import stop_token_ids
from dlogp_jax.rl import train_state
from dlogp_jax.rl.train_state import OptimizerConfig, TrainState, create
from dlogp_jax.sampling import DecodeSpec, left_pad
from dlogp_jax.sampling.batches import fixed_batches
from dlogp_jax.types import Array, Bool, Int

LogFn = Callable[[int, dict[str, float]], None]


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
    """AdamW with warmup + cosine decay. `warmup_frac` of the steps warm up linearly from 0."""

    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    final_lr_frac: float = 0.1
    grad_clip: float = 1.0
    b2: float = 0.98


def make_optimizer(lr: float, steps: int, opt: OptimizerSettings) -> optax.GradientTransformation:
    """The library's optimizer (`rl.train_state.make_optimizer`: clip -> AdamW) on a warmup-cosine
    schedule: SFT decays to `final_lr_frac`, where the RL schedule stays constant after warmup."""
    warmup = max(1, int(opt.warmup_frac * steps))
    lr_schedule = optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup, max(steps, warmup + 1), end_value=lr * opt.final_lr_frac
    )
    adamw = OptimizerConfig(
        lr=lr,
        warmup_steps=warmup,
        b2=opt.b2,
        weight_decay=opt.weight_decay,
        grad_clip=opt.grad_clip,
    )
    return train_state.make_optimizer(adamw, lr_schedule=lr_schedule)


# ----------------------------------------------------------------------------- data
def prompt_ids(tokenizer, problems: Sequence[str]) -> list[list[int]]:
    """Token ids of each problem rendered as one user turn plus the assistant generation prompt."""
    texts = [render_prompt(tokenizer, p, chat_template=True) for p in problems]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def response_ids(tokenizer, solutions: Sequence[str]) -> list[list[int]]:
    """Token ids of each solution followed by `<|im_end|>`."""
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    return [
        ids + [end] for ids in tokenizer(list(solutions), add_special_tokens=False)["input_ids"]
    ]


def pack(
    prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], seq_len: int, pad_id: int
) -> dict[str, np.ndarray]:
    """Right-padded prompt+response sequences.

    Returns:
      tokens [B, T] int32, input_mask [B, T] bool (real tokens), loss_mask [B, T] bool (response
      tokens, `<|im_end|>` included).
    Raises:
      ValueError: a sequence longer than seq_len.
    """
    b = len(prompts)
    tokens = np.full((b, seq_len), pad_id, np.int32)
    input_mask = np.zeros((b, seq_len), bool)
    loss_mask = np.zeros((b, seq_len), bool)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        n = len(p) + len(r)
        if n > seq_len:
            raise ValueError(f"example {i}: {n} tokens exceed seq_len={seq_len}.")
        tokens[i, :n] = [*p, *r]
        input_mask[i, :n] = True
        loss_mask[i, len(p) : n] = True
    return {"tokens": tokens, "input_mask": input_mask, "loss_mask": loss_mask}


class TraceSampler:
    """Draws training batches: random rows, each solution slipped with probability `slip_prob`.

    Args:
      rows: dicts with `problem` (in the task's format).
      tokenizer: the chat tokenizer.
      slip_prob: probability that a drawn trace contains one slip.
      max_value: values of slipped chains stay in [0, max_value].
      seed: numpy seed of the draws.
    """

    def __init__(self, rows, tokenizer, slip_prob: float, max_value: int, seed: int):
        self.chains = [task.parse_problem(r["problem"]) for r in rows]
        self.prompts = prompt_ids(tokenizer, [r["problem"] for r in rows])
        self.tokenizer, self.slip_prob, self.max_value = tokenizer, slip_prob, max_value
        self.rng = np.random.default_rng(seed)
        longest = max(len(task.solution_text(c)) for c in self.chains)
        # A slip can lengthen a number by one digit per step; the EOS adds one token.
        self.seq_len = _round_up(max(map(len, self.prompts)) + longest + 8, 8)
        self.pad_id = tokenizer.pad_token_id or 0

    def solutions(self, idx: np.ndarray) -> list[str]:
        """Solution texts of rows idx [B], each slipped with probability slip_prob."""
        out = []
        for i in idx:
            chain = self.chains[i]
            slip = None
            if self.rng.random() < self.slip_prob:
                slip = task.random_slip(chain, self.rng, self.max_value)
            out.append(task.solution_text(chain, slip))
        return out

    def batch(self, batch_size: int) -> dict[str, np.ndarray]:
        """tokens / input_mask / loss_mask [B, T] (see `pack`)."""
        idx = self.rng.integers(len(self.chains), size=batch_size)
        responses = response_ids(self.tokenizer, self.solutions(idx))
        return pack([self.prompts[i] for i in idx], responses, self.seq_len, self.pad_id)


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


# ----------------------------------------------------------------------------- loss and step
def response_nll(
    params,
    tokens: Int[Array, "B T"],
    input_mask: Bool[Array, "B T"],
    loss_mask: Bool[Array, "B T"],
    *,
    config: ModelConfig,
    vocab_limit: int | None = None,
) -> jax.Array:
    """Token-mean NLL of the tokens where loss_mask is True (each predicted from its prefix); [] fp32."""
    b, t = tokens.shape
    positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    h, _ = transformer.hidden_states(
        params, tokens, positions, input_mask=input_mask, config=config
    )
    h = h[:, :-1].reshape(b * (t - 1), -1)
    w = transformer.unembed_matrix(params, config)
    lp = token_logprobs(
        h, w, tokens[:, 1:].reshape(-1), chunk_tokens=h.shape[0], vocab_limit=vocab_limit
    )
    weights = loss_mask[:, 1:].reshape(-1).astype(jnp.float32)
    return -jnp.sum(lp * weights) / jnp.maximum(weights.sum(), 1.0)


def train_step(state: TrainState, batch: dict, *, optimizer, config, vocab_limit):
    """One AdamW update on a batch (tokens/input_mask/loss_mask [B, T]); returns (state, metrics)."""
    loss_fn = functools.partial(response_nll, config=config, vocab_limit=vocab_limit)
    loss, grads = jax.value_and_grad(loss_fn)(
        state.params, batch["tokens"], batch["input_mask"], batch["loss_mask"]
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {
        "loss": loss,
        "grad_norm": optax.global_norm(grads),
        "update_norm": optax.global_norm(updates),
        "param_norm": optax.global_norm(params),
    }
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


def train_sft(
    train_rows: Sequence[dict[str, Any]],
    tokenizer,
    config: ModelConfig,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    log_fn: LogFn | None = None,
    slip_prob: float = 0.85,
    slip_ramp_frac: float = 0.5,
    max_value: int = 99,
    optimizer: OptimizerSettings = OptimizerSettings(),
    log_every: int = 50,
    params=None,
):
    """Trains from random init (or from `params`) on slipped solution traces.

    Args:
      train_rows: dicts with `problem` in the task's format (the solution is recomputed from it).
      tokenizer: chat tokenizer (`toy.build_tokenizer()`); `len(tokenizer)` <= config.vocab_size.
      config: model config.
      steps, batch_size, lr: optimisation budget (B = batch_size sequences per step) and peak lr.
      seed: init and data seed.
      log_fn: called as log_fn(step, metrics) every `log_every` steps and at the end, with host
        floats: loss (train NLL per response token, averaged over the steps since the last log),
        grad_norm, update_norm, param_norm (of the last step), steps_per_s.
      slip_prob: probability that a drawn trace carries one arithmetic slip.
      slip_ramp_frac: the slip probability rises linearly from 0 to slip_prob over this fraction of
        the steps (the arithmetic is learnt from mostly clean traces first; then the slip rate).
      max_value: the task's max_value (slipped chains stay in [0, max_value]).
      optimizer: AdamW/schedule settings.
      params: initial params (default: `transformer.init(key(seed), config)`); their buffers are
        donated to the first step, so do not use them afterwards.
    Returns:
      the trained params tree.
    """
    sampler = TraceSampler(train_rows, tokenizer, slip_prob, max_value, seed)
    if params is None:
        params = transformer.init(jax.random.key(seed), config)
    tx = make_optimizer(lr, steps, optimizer)
    state = create(params, tx, seed)
    step_fn = jax.jit(
        functools.partial(train_step, optimizer=tx, config=config, vocab_limit=len(tokenizer)),
        donate_argnums=0,
    )
    t0, last, loss_sum = time.perf_counter(), 0, 0.0
    for step in range(1, steps + 1):
        # Dispatch is asynchronous: the next batch is built on the host while this step runs.
        sampler.slip_prob = slip_prob * min(1.0, step / max(slip_ramp_frac * steps, 1.0))
        state, metrics = step_fn(state, sampler.batch(batch_size))
        loss_sum = loss_sum + metrics["loss"]  # stays on device until logged
        if log_fn is not None and (step % log_every == 0 or step == steps):
            host = {k: float(v) for k, v in jax.device_get(metrics).items()}
            now = time.perf_counter()
            host["loss"] = float(loss_sum) / (step - last)
            host["steps_per_s"] = (step - last) / max(now - t0, 1e-9)
            t0, last, loss_sum = now, step, 0.0
            log_fn(step, host)
    return jax.block_until_ready(state.params)


# ----------------------------------------------------------------------------- evaluation
def sample_responses(
    params,
    config: ModelConfig,
    tokenizer,
    problems: Sequence[str],
    n: int = 8,
    seed: int = 0,
    *,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    prompt_batch: int = 128,
    engine: engines.EngineChoice = engines.DEFAULT,
) -> list[list[str]]:
    """n sampled responses per problem (special tokens removed), with the library's sampler.

    Prompts are processed `prompt_batch` at a time at one padded shape (the last batch is filled with
    repeats), so the decoder compiles once. Sample j of problem i uses stream (seed, i, j): results
    do not depend on prompt_batch, nor on `engine` (paged by default: then every problem is
    queued in one call, its slots and pages bounding the memory; static: the dense batches).

    Returns:
      [len(problems)][n] response texts.
    """
    ids = prompt_ids(tokenizer, problems)
    width = _round_up(max(map(len, ids)), 32)  # coarse buckets: splits share one compilation
    prompt_batch = len(ids) if engine.paged else min(prompt_batch, len(ids))
    spec = DecodeSpec(
        mode="single",
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        stop_ids=stop_token_ids(tokenizer),
        pad_id=tokenizer.pad_token_id or 0,
        vocab_limit=len(tokenizer),
        n=n,
    )
    out: list[list[str]] = []
    for batch, real in fixed_batches(range(len(ids)), prompt_batch):
        tokens, mask = left_pad([ids[i] for i in batch], spec.pad_id, buckets=(width,))
        prompt_index = np.asarray(batch, np.int32)  # the random streams follow the problem
        res, _ = engines.decode(
            engine, params, tokens, mask, prompt_index, spec=spec, config_base=config, seed=seed
        )
        toks, lens = np.asarray(res.tokens), np.asarray(res.length)
        texts = tokenizer.batch_decode(
            [toks[r, : lens[r]].tolist() for r in range(real * n)], skip_special_tokens=True
        )
        out.extend(texts[k * n : (k + 1) * n] for k in range(real))
    return out


def evaluate_accuracy(
    params,
    config: ModelConfig,
    tokenizer,
    rows: Sequence[dict[str, Any]],
    n: int = 8,
    seed: int = 0,
    **sample_kw,
) -> tuple[float, np.ndarray]:
    """Avg@n accuracy of sampled responses, checked with `task.check`.

    Args:
      rows: dicts with `problem` and `answer`.
      n: samples per problem; sample_kw: passed to `sample_responses` (temperature, ...).
    Returns:
      (accuracy = mean over problems of the fraction correct, per-problem fractions [len(rows)]).
    """
    problems = [r["problem"] for r in rows]
    texts = sample_responses(params, config, tokenizer, problems, n, seed, **sample_kw)
    per = np.asarray(
        [np.mean([task.check(t, r["answer"]) for t in ts]) for ts, r in zip(texts, rows)]
    )
    return float(per.mean()), per


def accuracy_summary(per_prompt: np.ndarray, n: int) -> dict[str, float]:
    """{'mean', 'ci95', 'num_prompts', 'samples_per_prompt'}: Avg@n with its 95% interval."""
    return {**mean_ci(per_prompt), "samples_per_prompt": n}
