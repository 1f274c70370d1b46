"""Building the demo world in a work directory: task splits, the SFT'd base model, its accuracy.

Layout written under `workdir`:

    data/train.parquet, data/test.parquet, data/task.json   (task.write_splits)
    base/                                                   (HF checkpoint + tokenizer)
    base_metrics.json                                       (settings, SFT figures, accuracies)

`build_base` is resumable at stage granularity: finished stages (same settings) are not redone. The
validation rows, used to tune the settings, are the first `n_val` training rows, which SFT never sees;
the test split is only measured. This world and its base stand in for the paper's benchmarks and
pretrained models (docs/method.md §6).
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
from dlogp_jax.demo import sft, task
from dlogp_jax.demo.settings import WorldSettings
from dlogp_jax.demo.stages import jsonable
from dlogp_jax.model import hf_weights
from dlogp_jax.outputs import write_json

DEFAULT_WORLD = WorldSettings()


def _same(path: Path, settings: dict[str, Any]) -> bool:
    return path.is_file() and json.loads(path.read_text()).get("settings") == jsonable(settings)


def write_data(workdir: str | Path, s: WorldSettings) -> dict[str, Path]:
    """Writes (or reuses, when written with the same settings) the task splits under data/."""
    data = Path(workdir) / "data"
    meta = data / "task.json"
    want = {
        "seed": s.seed,
        "n_train": s.n_train,
        "n_test": s.n_test,
        **dataclasses.asdict(s.difficulty),
    }
    if meta.is_file() and json.loads(meta.read_text()) == jsonable(want):
        return {"train": data / "train.parquet", "test": data / "test.parquet", "meta": meta}
    return task.write_splits(data, s.seed, s.n_train, s.n_test, s.difficulty)


def build_base(
    workdir: str | Path,
    settings: WorldSettings = DEFAULT_WORLD,
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
        log_fn(
            f"sft step {step}/{settings.steps}: loss {m['loss']:.4f} "
            f"grad_norm {m['grad_norm']:.3f} ({m['steps_per_s']:.2f} steps/s)"
        )

    t0, cpu0 = time.perf_counter(), time.process_time()
    params = sft.train_sft(
        train,
        tok,
        config,
        steps=settings.steps,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=settings.seed,
        log_fn=log_step,
        slip_prob=settings.slip_prob,
        slip_ramp_frac=settings.slip_ramp_frac,
        max_value=settings.difficulty.max_value,
        log_every=max(1, settings.steps // 10),
    )
    sft_seconds, sft_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    base = hf_weights.export_params(workdir / "base", params, config, tokenizer=tok)
    out = {
        "settings": s,
        "base": str(base),
        "sft_seconds": sft_seconds,
        "sft_cpu_seconds": sft_cpu,
        "losses": losses,
        "final_loss": losses[-1],
    }
    for name, split in (("val", val), ("test", test)):
        t0 = time.perf_counter()
        _, per = sft.evaluate_accuracy(
            params,
            config,
            tok,
            split,
            n=settings.eval_n,
            seed=settings.seed + 1,
            max_new_tokens=settings.max_new_tokens,
        )
        out[f"{name}_accuracy"] = sft.accuracy_summary(per, settings.eval_n)
        out[f"{name}_eval_seconds"] = time.perf_counter() - t0
        acc = out[f"{name}_accuracy"]
        log_fn(f"base {name} Avg@{settings.eval_n}: {acc['mean']:.3f} ± {acc['ci95']:.3f}")
    write_json(metrics_path, out)
    return jsonable(out)
