"""Building the world in a work directory: layout, metrics, reuse of finished stages."""

import dataclasses
import json

from dlogp_jax.demo import build
from dlogp_jax.model import hf_weights


def test_smoke_world_builds_and_is_reused(tmp_path):
    settings = dataclasses.replace(build.WorldSettings.smoke(), steps=10, n_val=4, n_test=4)
    lines = []
    metrics = build.build_base(tmp_path, settings, log_fn=lines.append)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"data", "base", "base_metrics.json"} <= names
    assert {p.name for p in (tmp_path / "data").iterdir()} >= {"train.parquet", "test.parquet"}
    assert json.loads((tmp_path / "base_metrics.json").read_text()) == json.loads(
        json.dumps(metrics)
    )
    for split in ("val", "test"):
        acc = metrics[f"{split}_accuracy"]
        assert 0.0 <= acc["mean"] <= 1.0 and acc["num_prompts"] == 4
    assert metrics["final_loss"] > 0 and metrics["sft_seconds"] > 0
    config, _ = hf_weights.load_params(tmp_path / "base")
    assert config == settings.model_config(config.vocab_size)
    assert any("sft step 10/10" in line for line in lines)

    lines.clear()
    assert build.build_base(tmp_path, settings, log_fn=lines.append) == metrics
    assert lines == [f"world: reusing {tmp_path / 'base'}"]
