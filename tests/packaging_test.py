"""The wheel ships the config files: `pip install .` (not editable) gives working CLIs.

Builds the wheel from a copy of the packaging inputs (no build/ or egg-info in the checkout), with
the venv's setuptools (no network), and checks its listing; .ci/run installs it in a fresh venv and
runs every CLI's embedded default from an empty directory.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "dlogp_jax", "configs")


def test_wheel_holds_every_config_and_package(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in PACKAGING:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, src / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run(
        [*cmd, "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("dlogp_jax-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = sorted(p.name for p in (ROOT / "configs").glob("*.py"))
    assert configs and all(f"dlogp_jax/configs/{c}" in names for c in configs), sorted(names)
    packages = [p.parent.relative_to(ROOT) for p in (ROOT / "dlogp_jax").rglob("__init__.py")]
    missing = [str(p) for p in packages if f"{p.as_posix()}/__init__.py" not in names]
    assert not missing, f"packages missing from the wheel: {missing}"
    assert not any(n.startswith("configs/") for n in names)  # no top-level `configs` package
