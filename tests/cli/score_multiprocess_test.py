"""`dlogp-score` as two JAX processes x 4 CPU devices (jax.distributed on localhost, gloo) equals the
single-process result."""

import numpy as np
import pyarrow.parquet as pq

from dlogp_jax.cli import score
from tests.cli.configs import CONFIGS, get_config
from tests.cli.multiprocess import run_two_processes


def test_two_processes_equal_one(tmp_path):
    out = tmp_path / "multi"
    run_two_processes(
        "dlogp_jax.cli.score",
        f"--config={CONFIGS}/score.py:demo",
        f"--config.out={out}",
        "--config.mesh=data:2,fsdp:2,tensor:2",
    )
    single = score.run(get_config("score", "demo", out=str(tmp_path / "single")))
    a = pq.read_table(out / "tokens.parquet").to_pandas()
    b = pq.read_table(single / "tokens.parquet").to_pandas()
    assert list(a.token_id) == list(b.token_id) and len(a) == 604  # 24 demo responses
    for col in ("logp_base", "dlogp", "kl_rl_base", "kl_base_rl", "entropy_rl"):
        np.testing.assert_allclose(a[col], b[col], atol=2e-4, rtol=1e-4)
