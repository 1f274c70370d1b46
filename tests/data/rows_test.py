"""Reading data files: jsonl line numbers, parquet rows, id validation, chat templates."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dlogp_jax import toy
from dlogp_jax.data import prompts, rows


def test_parquet_rows_and_locations(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "response": ["c", None]}), path)
    got = rows.read_rows(path)
    assert got == [{"prompt": "a", "response": "c"}, {"prompt": "b", "response": None}]
    tok = toy.build_tokenizer()
    with pytest.raises(rows.DataError, match=r"d.parquet row 2: missing field 'response'"):
        prompts.encode_rows(got, tok, path=path, vocab_limit=len(tok))


def test_jsonl_blank_lines_keep_line_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(rows.DataError, match=r"d.jsonl:3: expected a JSON object, got list"):
        rows.read_rows(path)
    with pytest.raises(rows.DataError, match="does not exist"):
        rows.read_rows(tmp_path / "missing.jsonl")
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(rows.DataError, match="unknown data format '.csv'"):
        rows.read_rows(tmp_path / "d.csv")


def test_chat_template_and_id_checks():
    tok = toy.build_tokenizer()
    text = prompts.render_prompt(tok, "2+2?", chat_template=True)
    assert text == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    ex = prompts.encode_rows(
        [{"prompt": "2+2?", "response": "4"}],
        tok,
        path="x",
        vocab_limit=len(tok),
        chat_template=True,
    )[0]
    assert tok.decode(list(ex.prompt_ids)) == text and tok.decode(list(ex.response_ids)) == "4"
    assert tok.convert_tokens_to_ids("<|im_end|>") in ex.prompt_ids  # special token kept whole
    with pytest.raises(rows.DataError, match=r"'prompt_ids'\[0\] = True"):
        rows.get_ids({"prompt_ids": [True]}, "prompt_ids", "x:1", 10)
    with pytest.raises(rows.DataError, match="the prompt is empty"):
        prompts.encode_rows(
            [{"prompt_ids": [], "response_ids": [1]}], tok, path="x", vocab_limit=len(tok)
        )
