"""`dlogp-train`: DAPO with probability-based token weights, sharded and preemption-safe.

Writes into `--config.workdir`: `checkpoints/` (orbax), `metrics.jsonl`, `tb/` (TensorBoard),
`hf/step_N` and `hf/final` (HF exports of the policy), `config.json`. Re-running with the same
workdir resumes from the newest checkpoint (also after SIGTERM); a larger `total_steps` continues.
"""

from __future__ import annotations

from pathlib import Path

import jax
from absl import logging

from dlogp_jax import outputs, toy
from dlogp_jax.cli import common
from dlogp_jax.data.sources import load_table, prepare_prompts
from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.pair import DTYPES
from dlogp_jax.model.tokenizer import load_tokenizer
from dlogp_jax.rl.dapo_loss import LossConfig
from dlogp_jax.rl.evaluate import evaluate
from dlogp_jax.rl.rollout import NotEnoughGroups, RolloutConfig
from dlogp_jax.rl.train_state import OptimizerConfig
from dlogp_jax.rl.trainer import RunContext, TrainerConfig, stop_ids, train
from dlogp_jax.sampling import DecodeSpec
from dlogp_jax.sharding import tree_shardings


def _policy(config, mesh):
    """(model config, params, tokenizer): from `init_from`, or a random tiny model.

    Params (and so AdamW's master weights) are kept in `param_dtype` (fp32 by default) while the
    forward pass computes in `dtype`: a bf16 master copy would round lr-1e-6 updates away.
    """
    if config.init_from:
        tokenizer = load_tokenizer(config.init_from)
        model = hf_weights.read_config(config.init_from, dtype=config.dtype)
        _, params = hf_weights.load_params(
            config.init_from, model, mesh=mesh, dtype=DTYPES[config.param_dtype]
        )
        return model, params, tokenizer
    tokenizer = toy.build_tokenizer()
    model = toy.tiny_config(len(tokenizer), dtype=config.dtype)
    init = lambda k: transformer.init(k, model, dtype=DTYPES[config.param_dtype], std=0.3)
    key = jax.random.key(config.trainer.seed)
    shardings = tree_shardings(mesh, transformer.param_axes(model), jax.eval_shape(init, key))
    return model, jax.jit(init, out_shardings=shardings)(key), tokenizer


def _prompts(config, tokenizer):
    rows = toy.toy_task_rows() if config.toy_task else None
    if rows is None:
        if not config.data:
            common.fail("set --config.data=FILE (or --config.toy_task=true).")
        rows = load_table(config.data)
    return prepare_prompts(
        rows, tokenizer, path=config.data or "toy task", chat_template=config.chat_template,
        prompt_format=config.prompt_format, max_prompt_len=config.max_prompt_len,
    )  # fmt: skip


def _prompt_bucket(prompts) -> int:
    """Tp: the smallest power-of-two bucket (>= 64) holding every prompt, so shapes stay static."""
    longest = max(len(p.ids) for p in prompts)
    return next(b for b in (64, 128, 256, 512, 1024, 2048, 4096, 8192, longest) if b >= longest)


def _eval_fn(config, model, tokenizer, rollout, mesh):
    """Held-out Avg@n (rewards.grade) of the policy on `config.eval.data`."""
    e = config.eval
    rows = load_table(e.data)[: e.max_prompts or None]
    prompts = prepare_prompts(
        rows, tokenizer, path=e.data, chat_template=config.chat_template,
        prompt_format=config.prompt_format, max_prompt_len=config.max_prompt_len,
    )  # fmt: skip
    tp = _prompt_bucket(prompts)
    spec = DecodeSpec(
        mode="single", temperature=e.temperature, top_p=rollout.top_p,
        max_new_tokens=rollout.max_response_len, stop_ids=stop_ids(tokenizer),
        pad_id=tokenizer.pad_token_id or 0, vocab_limit=len(tokenizer), n=e.n,
    )  # fmt: skip
    batch = max(1, min(16, len(prompts)))
    return lambda params, grader: evaluate(params, model, tokenizer, prompts, spec, e.seed, tp,
                                           mesh, grader, batch)  # fmt: skip


def settings(config):
    """The frozen settings objects of the library from the ConfigDict (validated there)."""
    r = config.rollout.to_dict()
    pairs = [p.split(":") for p in r.pop("rewards_by_source").split(",") if p]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("rollout.rewards_by_source: write 'source_prefix:reward,...'.")
    rollout = RolloutConfig(**r, rewards_by_source=tuple(tuple(p) for p in pairs))
    trainer = dict(config.trainer, eval_every=config.eval.every if config.eval.data else 0)
    return (TrainerConfig(total_steps=config.total_steps, **trainer), rollout,
            LossConfig(**config.loss), OptimizerConfig(**config.optimizer))  # fmt: skip


def run(config):
    """Builds everything from the config and trains; returns the final TrainState."""
    mesh = common.init_runtime(config)
    trainer_cfg, rollout, loss, opt = settings(config)
    workdir = Path(common.local_path(config.workdir, "workdir"))
    model, params, tokenizer = _policy(config, mesh)
    prompts = _prompts(config, tokenizer)
    prompt_len = _prompt_bucket(prompts)
    ref = jax.tree.map(lambda x: x.copy(), params) if config.reference or loss.kl_coef else None

    def export(path, p):  # every process gathers; process 0 writes
        hf_weights.export_params(path, p, model, tokenizer=tokenizer, write=common.is_writer())

    if common.is_writer():
        outputs.write_json(workdir / "config.json", config.to_dict())
    ctx = RunContext(
        workdir, model, tokenizer, prompts, prompt_len, mesh, ref, export, common.is_writer()
    )
    if trainer_cfg.eval_every:
        ctx.eval_fn = _eval_fn(config, model, tokenizer, rollout, mesh)
    logging.info("%d prompts (Tp=%d), model %s, %.1fM params", len(prompts), prompt_len,
                 model.model_type, model.num_params / 1e6)  # fmt: skip
    return train(ctx, params, trainer_cfg, rollout, loss, opt, log=logging.info)


def entry():
    common.run_app(run, "dapo", (NotEnoughGroups,))


if __name__ == "__main__":
    entry()
