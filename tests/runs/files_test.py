"""Run files: the settings guard, whole groups only on resume, durable appends."""

import json

import pytest

from dlogp_jax.errors import DataError
from dlogp_jax.runs import files


def test_settings_guard(tmp_path):
    files.check_run_file(tmp_path, {"seed": 0, "n": 2}, write=False)
    assert not (tmp_path / "run.json").exists()  # only the writer records them
    files.check_run_file(tmp_path, {"seed": 0, "n": 2}, write=True)
    assert json.loads((tmp_path / "run.json").read_text()) == {"seed": 0, "n": 2}
    files.check_run_file(tmp_path, {"seed": 0, "n": 2}, write=True)  # same settings: continue
    with pytest.raises(DataError, match=r"other settings \{'seed': \(0, 1\)\} \(before, now\)"):
        files.check_run_file(tmp_path, {"seed": 1, "n": 2}, write=True)


def test_groups_torn_line_and_corrupt_line(tmp_path):
    path = tmp_path / "s.jsonl"
    assert files.read_groups(path, "p", 2) == {}
    files.append_jsonl(path, [{"p": 0, "j": 0}, {"p": 0, "j": 1}, {"p": 1, "j": 0}])
    files.append_jsonl(path, [{"p": 2, "j": 0}, {"p": 2, "j": 1}])
    path.write_text(path.read_text() + '{"p": 3, "j"')  # killed mid-write
    assert files.read_groups(path, "p", 2) == {
        0: [{"p": 0, "j": 0}, {"p": 0, "j": 1}],
        2: [{"p": 2, "j": 0}, {"p": 2, "j": 1}],
    }
    path.write_text('{"p": 0}\nnot json\n{"p": 1}\n')
    with pytest.raises(DataError, match=r"s.jsonl:2: corrupt line"):
        files.read_groups(path, "p", 1)
