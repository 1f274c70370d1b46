"""`dlogp-view` end to end: a real dlogp-score output (with alternatives) to one HTML page."""

import json
import subprocess
import sys

from dlogp_jax.cli import score, view
from tests.cli.configs import get_config


def test_score_demo_to_page(tmp_path):
    config = get_config("score", "demo", out=str(tmp_path / "s"), top_alternatives=5)
    out = score.run(config)
    page = view.run(get_config("view", input=str(out), out=str(tmp_path / "v.html")))
    text = page.read_text()
    payload = json.loads(text.split('id="dlogp-data">')[1].split("</script>")[0])
    assert payload["alternatives"] == 5 and len(payload["responses"]) == 24
    r = payload["responses"][0]
    assert len(r["alt_base"]) == len(r["alt_rl"]) == r["length"] == len(r["tok"])
    assert set(r["m"]) == {
        "logp_base",
        "logp_rl",
        "dlogp",
        "entropy_base",
        "entropy_rl",
        "kl_rl_base",
        "kl_base_rl",
    }


def test_command_line_error_is_one_line_and_exit_1(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dlogp_jax.cli.view", f"--config.input={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "holds neither tokens.parquet" in last
    assert "Traceback" not in proc.stderr
