"""The README's Python snippets run as written, in order, on tiny checkpoints at `ckpt/`."""

import re
from pathlib import Path

from dlogp_jax import toy

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_python_api_snippets_run(tmp_path, monkeypatch):
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4  # score, sample, train, the library functions
    monkeypatch.chdir(tmp_path)  # the snippets use relative paths: ckpt/base, runs/...
    toy.build_pair(tmp_path / "ckpt")
    namespace: dict = {}
    for i, block in enumerate(blocks):  # a failure's traceback names the block and its line
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    assert namespace["state"].step == 2
    assert (tmp_path / "runs" / "extrapolate" / "samples.jsonl").exists()
    assert (tmp_path / "ckpt" / "copy" / "model.safetensors").exists()
