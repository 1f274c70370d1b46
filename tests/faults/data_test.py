"""One clear line for bad data files (issue 12, "One clear line for every user error")."""

import json

import pytest

from dlogp_jax import toy
from dlogp_jax.data.prompts import load_prompts
from dlogp_jax.data.rows import read_rows
from dlogp_jax.errors import DataError


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("latin1.jsonl", '{"prompt": "caf\xe9"}\n'.encode("latin-1"), "not UTF-8 text .*re-encode"),
        ("empty.jsonl", b"", "holds no rows"),
        ("blank.jsonl", b"\n\n", "holds no rows"),
        ("empty.json", b"[]", "holds no rows"),
        ("numbers.json", b"[1, 2]", "row 1: expected a JSON object, got int"),
        ("nested.json", b'[{"prompt": "a"}, [1]]', "row 2: expected a JSON object, got list"),
        ("bad.jsonl", b'{"prompt": "a"}\n{"prompt": \n', r"bad.jsonl:2: not valid JSON"),
        ("array.jsonl", b'{"prompt": "a"}\n[1, 2]\n', r"array.jsonl:2: expected a JSON object"),
        ("data.csv", b"a,b\n", "unknown data format '.csv'"),
    ],
)
def test_bad_files_give_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        read_rows(path)
    assert "\n" not in str(e.value) and name in str(e.value)


def test_missing_file_and_row_without_prompt(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_rows(tmp_path / "nope.jsonl")
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "1+1"}) + "\n" + json.dumps({"answer": "2"}) + "\n")
    with pytest.raises(DataError, match=r"p.jsonl:2: no 'prompt' field \(nor 'problem'\)"):
        load_prompts(path, toy.build_tokenizer(), chat_template=False)
