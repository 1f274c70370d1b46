"""Output files (issue 12, items 6 and 9): umask permissions, whole result sets, no stray
temporary files, and run.json's sessions (issue 14)."""

import json
import os
import stat

import numpy as np
import pytest

from dlogp_jax import outputs, toy
from dlogp_jax.errors import DataError
from dlogp_jax.model import hf_weights
from dlogp_jax.runs import files


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_results_get_the_umask_permissions(tmp_path, umask_022):
    assert _mode(outputs.write_json(tmp_path / "a.json", {"x": 1})) == 0o644
    assert _mode(outputs.write_parquet(tmp_path / "t.parquet", {"x": np.arange(3)})) == 0o644
    os.umask(0o027)
    assert _mode(outputs.write_text(tmp_path / "b.txt", "x")) == 0o640


def test_exported_checkpoint_directory_is_readable(tmp_path, umask_022):
    base, _ = toy.build_pair(tmp_path / "pair", seed=0)
    config, params = hf_weights.load_params(base)
    out = hf_weights.export_params(tmp_path / "export", params, config)
    assert _mode(out) == 0o755
    assert all(_mode(f) & 0o044 == 0o044 for f in out.iterdir())


def test_failed_writer_leaves_old_file_and_no_temporary(tmp_path):
    path = outputs.write_json(tmp_path / "s.json", {"v": 1})
    with pytest.raises(TypeError):
        outputs.write_json(path, {"v": object()})

    def boom(tmp):
        open(tmp, "w").write("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        outputs._atomic(path, boom)
    assert json.loads(path.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_output_set_is_marked_until_complete(tmp_path):
    with files.output_set(tmp_path):
        outputs.write_json(tmp_path / "summary.json", {})
        with pytest.raises(DataError, match="incomplete"):
            files.check_complete(tmp_path)
    files.check_complete(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(manifest["files"]) == ["summary.json"]
    with pytest.raises(RuntimeError):  # a failure mid-set: the directory stays refused
        with files.output_set(tmp_path):
            raise RuntimeError("disk full")
    assert not (tmp_path / "manifest.json").exists()
    with pytest.raises(DataError, match="incomplete"):
        files.check_complete(tmp_path)


def test_run_json_sessions(tmp_path):
    with files.session(tmp_path, {"a": 1}, write=True):
        pass
    with pytest.raises(ValueError):
        with files.session(tmp_path, {"a": 1}, write=True):
            raise ValueError("bad row")
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["a"] == 1 and len(record["sessions"]) == 2
    first, second = record["sessions"]
    assert first["status"] == "finished" and second["status"].startswith("failed: ValueError")
    for key in ("package_version", "git_commit", "jax", "jaxlib", "devices", "started", "ended"):
        assert key in first, key
    assert first["devices"]["count"] >= 1 and first["ended"] >= first["started"]
