"""`outputs`: atomic writes (a failing writer leaves no partial file) and format round trips."""

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dlogp_jax import outputs


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_text_creates_parents_and_overwrites(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"
    assert outputs.write_text(path, "one\n") == path
    assert outputs.write_text(str(path), "two\n") == path  # str paths too
    assert path.read_text() == "two\n"
    assert _files(path.parent) == ["out.txt"]  # no temporary file left


def _fail_halfway(monkeypatch):
    """Path.write_text writes half its text, then fails (a full disk, a killed process)."""
    real = Path.write_text

    def half(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half)


@pytest.mark.parametrize(
    "write",
    [
        lambda p: outputs.write_text(p, "new content\n" * 10),
        lambda p: outputs.write_json(p, {"new": list(range(10))}),
        lambda p: outputs.write_jsonl(p, [{"new": i} for i in range(10)]),
    ],
    ids=["text", "json", "jsonl"],
)
def test_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, monkeypatch, write):
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("previous\n")
    _fail_halfway(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        write(old)
    with pytest.raises(OSError, match="disk full"):
        write(new)
    assert old.read_text() == "previous\n"
    assert _files(tmp_path) == ["old.txt"]  # neither `new.txt` nor a temporary file


def test_failed_parquet_write_leaves_no_file(tmp_path, monkeypatch):
    real = pq.write_table

    def partial(table, where, **kwargs):
        real(table.slice(0, 1), where, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", partial)
    with pytest.raises(OSError, match="disk full"):
        outputs.write_parquet(tmp_path / "t.parquet", {"x": np.arange(5)})
    assert _files(tmp_path) == []


def test_write_json_format_and_numpy_values(tmp_path):
    path = outputs.write_json(
        tmp_path / "m.json", {"n": np.int64(3), "x": np.float32(0.5), "v": np.array([1, 2])}
    )
    assert path.read_text() == ('{\n  "n": 3,\n  "x": 0.5,\n  "v": [\n    1,\n    2\n  ]\n}\n')


def test_write_json_nan_round_trips_and_bad_values_write_nothing(tmp_path):
    path = outputs.write_json(tmp_path / "nan.json", {"ci95": float("nan")})
    assert path.read_text() == '{\n  "ci95": NaN\n}\n'
    assert math.isnan(json.loads(path.read_text())["ci95"])
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        outputs.write_json(tmp_path / "bad.json", {"x": object()})
    assert _files(tmp_path) == ["nan.json"]


def test_write_jsonl_round_trip(tmp_path):
    rows = [{"i": np.int32(1), "t": "a\nb", "l": np.array([0.25])}, {"i": 2, "t": "é"}]
    path = outputs.write_jsonl(tmp_path / "r.jsonl", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == '{"i": 1, "t": "a\\nb", "l": [0.25]}'  # one line per row
    assert [json.loads(ln) for ln in lines] == [
        {"i": 1, "t": "a\nb", "l": [0.25]},
        {"i": 2, "t": "é"},
    ]
    assert outputs.write_jsonl(tmp_path / "empty.jsonl", []).read_text() == ""


def test_parquet_round_trip(tmp_path):
    columns = {
        "row": np.arange(3, dtype=np.int32),
        "logp": np.array([-0.5, -1.25, 0.0], np.float32),
        "text": ["a", "bc", ""],
        "tokens": [[1, 2], [3], []],  # ragged: a list column
    }
    path = outputs.write_parquet(tmp_path / "sub" / "t.parquet", columns)
    got = outputs.read_parquet(path)
    assert list(got) == ["row", "logp", "text", "tokens"]
    np.testing.assert_array_equal(got["row"], [0, 1, 2])
    assert got["row"].dtype == np.int32 and got["logp"].dtype == np.float32
    np.testing.assert_array_equal(got["logp"], [-0.5, -1.25, 0.0])
    assert list(got["text"]) == ["a", "bc", ""]
    assert [list(t) for t in got["tokens"]] == [[1, 2], [3], []]
    some = outputs.read_parquet(path, columns=["tokens", "row"])
    assert list(some) == ["tokens", "row"]
    np.testing.assert_array_equal(some["row"], [0, 1, 2])
