"""`dlogp-sample` on the paged engine as two JAX processes x 4 CPU devices (jax.distributed on
localhost, gloo) equals one process decoding with the static decoder: every process runs the
same host loop over the same queue, reading back replicated arrays."""

import json

import numpy as np

from dlogp_jax.cli import sample
from tests.cli.configs import CONFIGS, get_config
from tests.cli.multiprocess import run_two_processes


def _rows(out):
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def test_two_processes_paged_equal_one_static(tmp_path):
    out = tmp_path / "multi"
    run_two_processes(
        "dlogp_jax.cli.sample",
        f"--config={CONFIGS}/sample.py:demo",
        f"--config.out={out}",
        "--config.mesh=data:2,fsdp:2,tensor:2",
        "--config.max_seqs=4",  # 8 sequences per call on 4 slots: slots are refilled
        "--config.grader_workers=0",
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"]["kind"] == "paged" and summary["engine"]["max_seqs"] == 4
    single = sample.run(
        get_config(
            "sample", "demo", out=str(tmp_path / "single"), engine="static", grader_workers=0
        )
    )
    multi, one = _rows(out), _rows(single)
    assert len(multi) == len(one) == 16
    for a, b in zip(multi, one):
        for k in ("logp_base", "logp_rl", "dlogp"):
            np.testing.assert_allclose(a.pop(k), b.pop(k), atol=2e-4, err_msg=k)
        assert a == b
