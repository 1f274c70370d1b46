"""Building the demo world in a work directory: task splits, the SFT'd base model, its accuracy.

Layout written under `workdir`:

    data/train.parquet, data/test.parquet, data/task.json   (task.write_splits)
    base/                                                   (HF checkpoint + tokenizer)
    base_metrics.json                                       (settings, SFT figures, accuracies)

`build_base` is resumable at stage granularity: finished stages (same settings) are not redone. The
validation rows, used to tune the settings, are the first `n_val` training rows, which SFT never sees;
the test split is only measured.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlogp_jax import toy
from dlogp_jax.data.rows import read_rows
from dlogp_jax.model import hf_weights
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.outputs import write_json
from dlogp_jax.world import sft, task
from dlogp_jax.world.stages import jsonable


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

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The tiny Qwen2 config (tied embeddings, q/k/v biases) of this world."""
        return toy.tiny_config(
            vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_layers=self.num_layers, num_heads=self.num_heads, num_kv_heads=self.num_kv_heads,
            head_dim=self.hidden_size // self.num_heads,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def smoke(cls) -> WorldSettings:
        """A tiny world for CI: seconds to build, accuracy meaningless."""
        return cls(
            n_train=512, n_val=16, n_test=16, difficulty=task.Difficulty(max_steps=2),
            hidden_size=32, intermediate_size=64, steps=40, batch_size=16, lr=1e-2, eval_n=2,
            max_new_tokens=24,
        )  # fmt: skip


def _same(path: Path, settings: dict[str, Any]) -> bool:
    return path.is_file() and json.loads(path.read_text()).get("settings") == jsonable(settings)


def write_data(workdir: str | Path, s: WorldSettings) -> dict[str, Path]:
    """Writes (or reuses, when written with the same settings) the task splits under data/."""
    data = Path(workdir) / "data"
    meta = data / "task.json"
    want = {"seed": s.seed, "n_train": s.n_train, "n_test": s.n_test,
            **dataclasses.asdict(s.difficulty)}  # fmt: skip
    if meta.is_file() and json.loads(meta.read_text()) == jsonable(want):
        return {"train": data / "train.parquet", "test": data / "test.parquet", "meta": meta}
    return task.write_splits(data, s.seed, s.n_train, s.n_test, s.difficulty)


def build_base(
    workdir: str | Path,
    settings: WorldSettings = WorldSettings(),
    log_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Writes the splits, trains and exports the base model, and measures its accuracy.

    Args:
      workdir: output directory (see the module docstring for the layout).
      settings: the world.
      log_fn: receives progress lines.
    Returns:
      the metrics dict also written to base_metrics.json: settings, base path, sft_seconds (wall),
      sft_cpu_seconds (all threads: a figure less sensitive to other load on the machine),
      losses (the logged train losses), final_loss, val / test accuracy (Avg@eval_n at
      temperature 1) with 95% intervals and their evaluation seconds.
    """
    workdir = Path(workdir)
    metrics_path = workdir / "base_metrics.json"
    s = settings.to_dict()
    if _same(metrics_path, s) and (workdir / "base" / "config.json").is_file():
        log_fn(f"world: reusing {workdir / 'base'}")
        return json.loads(metrics_path.read_text())
    paths = write_data(workdir, settings)
    rows = read_rows(paths["train"])
    val, train = rows[: settings.n_val], rows[settings.n_val :]
    test = read_rows(paths["test"])
    tok = toy.build_tokenizer()
    config = settings.model_config(len(tok))
    losses: list[float] = []

    def log_step(step: int, m: dict[str, float]) -> None:
        losses.append(m["loss"])
        log_fn(f"sft step {step}/{settings.steps}: loss {m['loss']:.4f} "
               f"grad_norm {m['grad_norm']:.3f} ({m['steps_per_s']:.2f} steps/s)")  # fmt: skip

    t0, cpu0 = time.perf_counter(), time.process_time()
    params = sft.train_sft(
        train, tok, config, settings.steps, settings.batch_size, settings.lr, settings.seed,
        log_step, slip_prob=settings.slip_prob,
        slip_ramp_frac=settings.slip_ramp_frac, max_value=settings.difficulty.max_value,
        log_every=max(1, settings.steps // 10),
    )  # fmt: skip
    sft_seconds, sft_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    base = hf_weights.export_params(workdir / "base", params, config, tokenizer=tok)
    out = {
        "settings": s, "base": str(base), "sft_seconds": sft_seconds,
        "sft_cpu_seconds": sft_cpu, "losses": losses, "final_loss": losses[-1],
    }  # fmt: skip
    for name, split in (("val", val), ("test", test)):
        t0 = time.perf_counter()
        _, per = sft.evaluate_accuracy(
            params, config, tok, split, n=settings.eval_n, seed=settings.seed + 1,
            max_new_tokens=settings.max_new_tokens,
        )  # fmt: skip
        out[f"{name}_accuracy"] = sft.accuracy_summary(per, settings.eval_n)
        out[f"{name}_eval_seconds"] = time.perf_counter() - t0
        acc = out[f"{name}_accuracy"]
        log_fn(f"base {name} Avg@{settings.eval_n}: {acc['mean']:.3f} ± {acc['ci95']:.3f}")
    write_json(metrics_path, out)
    return jsonable(out)
