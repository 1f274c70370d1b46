"""Training prompts: DAPO-Math-17k and plain layouts, row validation, the resumable index pipeline."""

import itertools
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dlogp_jax import toy
from dlogp_jax.data import sources
from dlogp_jax.data.prompts import Prompt
from dlogp_jax.data.rows import DataError, read_rows
from dlogp_jax.data.sources import prepare_prompts, prompt_batches

DAPO_INSTRUCTION = "Solve the following math problem step by step.\n\n{q}\n\nAnswer: $Answer"


@pytest.fixture(scope="module")
def tok():
    return toy.build_tokenizer()


def _chat(*messages):
    return "".join(f"<|im_start|>{r}\n{c}<|im_end|>\n" for r, c in messages) + (
        "<|im_start|>assistant\n"
    )


def _write_dapo(path):
    rows = [
        {
            "data_source": "math_dapo",
            "prompt": [{"content": DAPO_INSTRUCTION.format(q="1+1?"), "role": "user"}],
            "ability": "MATH",
            "reward_model": {"ground_truth": "2", "style": "rule-lighteval/MATH_v2"},
            "extra_info": {"index": "a"},
        },
        {
            "data_source": "math_dapo",
            "prompt": [
                {"content": "Be brief.", "role": "system"},
                {"content": DAPO_INSTRUCTION.format(q="3*4?"), "role": "user"},
            ],
            "ability": "MATH",
            "reward_model": {"ground_truth": "12", "style": "rule-lighteval/MATH_v2"},
            "extra_info": {"index": "b"},
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return rows


def test_dapo_layout_from_parquet(tmp_path, tok):
    path = tmp_path / "dapo.parquet"
    _write_dapo(path)
    rows = read_rows(path)
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["2", "12"]
    assert rows[1]["prompt"][0] == {"content": "Be brief.", "role": "system"}
    got = prepare_prompts(rows, tok, path=path)
    assert all(isinstance(p, Prompt) for p in got)
    assert [(p.answer, p.data_source) for p in got] == [("2", "math_dapo"), ("12", "math_dapo")]
    q2 = DAPO_INSTRUCTION.format(q="3*4?")
    assert tok.decode(list(got[0].ids)) == _chat(("user", DAPO_INSTRUCTION.format(q="1+1?")))
    assert tok.decode(list(got[1].ids)) == _chat(("system", "Be brief."), ("user", q2))
    assert got[1].ids == tuple(tok.encode(_chat(("system", "Be brief."), ("user", q2))))
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    assert got[1].ids.count(im_start) == 3  # special tokens stay single ids
    # prompt_format applies to the last (user) message only; rows are not modified in place.
    fmt = prepare_prompts(rows, tok, path=path, prompt_format="Q: {content}")
    assert tok.decode(list(fmt[1].ids)) == _chat(("system", "Be brief."), ("user", "Q: " + q2))
    assert prepare_prompts(rows, tok, path=path) == got
    plain = prepare_prompts(rows, tok, path=path, chat_template=False)
    assert tok.decode(list(plain[1].ids)) == "Be brief.\n" + q2


def test_plain_layout_from_parquet_jsonl_and_disk(tmp_path, tok):
    import datasets

    rows = [
        {"problem": "2+3?", "answer": "5"},
        {"problem": "Say 7.", "answer": "7"},
    ]
    paths = [tmp_path / "plain.parquet", tmp_path / "plain.jsonl", tmp_path / "plain_dir"]
    pq.write_table(pa.Table.from_pylist(rows), paths[0])
    paths[1].write_text("".join(json.dumps(r) + "\n" for r in rows))
    datasets.Dataset.from_list(rows).save_to_disk(str(paths[2]))
    for path in paths:
        table = read_rows(path)
        assert table == rows, path
        got = prepare_prompts(table, tok, path=path, prompt_format="{content}\nAnswer:")
        assert [(p.answer, p.data_source) for p in got] == [("5", ""), ("7", "")]
        assert tok.decode(list(got[0].ids)) == _chat(("user", "2+3?\nAnswer:"))


def test_plain_string_prompt_and_numeric_answer(tok):
    rows = [{"prompt": "6/2?", "answer": 3, "data_source": "toy_first_digit"}]
    (got,) = prepare_prompts(rows, tok, path="x.jsonl", chat_template=False)
    assert got == Prompt(
        index=0, ids=tuple(tok.encode("6/2?")), answer="3", data_source="toy_first_digit"
    )


def test_load_table_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_rows(tmp_path / "missing.parquet")
    (tmp_path / "d.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="unknown data format '.csv'"):
        read_rows(tmp_path / "d.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="bad.parquet: cannot be read as parquet"):
        read_rows(tmp_path / "bad.parquet")


GOOD = {"prompt": "ok", "answer": "1"}


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"prompt": "q"}, r"row 3: missing field 'reward_model.ground_truth' \(or 'answer'\)"),
        (
            {"prompt": [{"role": "user", "content": "q"}], "reward_model": {"ground_truth": None}},
            r"row 3: missing field 'reward_model.ground_truth'",
        ),
        ({"prompt": 5, "answer": "1"}, r"row 3: field 'prompt' must be a string or a list"),
        ({"prompt": [], "answer": "1"}, r"row 3: field 'prompt' must be"),
        ({"prompt": [{"role": "user"}], "answer": "1"}, r"row 3: field 'prompt' must be"),
        ({"prompt": ["q"], "answer": "1"}, r"row 3: field 'prompt' must be"),
        ({"answer": "1"}, r"row 3: field 'prompt' must be"),
        ({"prompt": "x" * 100, "answer": "1"}, r"row 3: prompt has 100 tokens \(allowed 1\.\.64\)"),
        ({"prompt": "", "answer": "1"}, r"row 3: prompt has 0 tokens"),
    ],
)
def test_malformed_rows_name_index_and_field(tok, bad, match):
    rows = [GOOD, GOOD, bad, GOOD]
    with pytest.raises(DataError, match=r"^data\.jsonl " + match):
        prepare_prompts(rows, tok, path="data.jsonl", chat_template=False, max_prompt_len=64)


def test_malformed_parquet_row_and_empty_table(tmp_path, tok):
    path = tmp_path / "dapo.parquet"
    rows = _write_dapo(path)
    rows.append(dict(rows[0], reward_model={"ground_truth": None, "style": "rule"}))
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=r"dapo.parquet row 3: missing field 'reward_model"):
        prepare_prompts(read_rows(path), tok, path=path)
    # The chat template counts towards the limit: "1+1?" alone is 4 characters.
    with pytest.raises(DataError, match=r"row 1: prompt has \d+ tokens \(allowed 1\.\.20\)"):
        prepare_prompts(read_rows(path), tok, path=path, max_prompt_len=20)
    with pytest.raises(DataError, match="no rows"):
        prepare_prompts([], tok, path=path)


def _take(it, n):
    return [np.asarray(b).tolist() for b in itertools.islice(it, n)]


def test_prompt_batches_deterministic_epochs():
    a = _take(prompt_batches(12, 4, seed=3), 9)  # three epochs of three batches
    assert a == _take(prompt_batches(12, 4, seed=3), 9)
    assert a != _take(prompt_batches(12, 4, seed=4), 9)
    assert all(len(b) == 4 for b in a)
    epochs = [sorted(sum(a[i : i + 3], [])) for i in (0, 3, 6)]
    assert epochs == [list(range(12))] * 3  # every prompt exactly once per epoch
    orders = [sum(a[i : i + 3], []) for i in (0, 3, 6)]
    assert orders[0] != list(range(12))  # shuffled
    assert len({tuple(o) for o in orders}) > 1  # reshuffled across epochs


def test_prompt_batches_state_resumes_exactly():
    it = prompt_batches(10, 3, seed=0)  # 10 is not a multiple of 3: batches straddle epochs
    _take(it, 4)
    state = it.get_state()
    json.loads(json.dumps(state))  # checkpointed as JSON
    want = _take(it, 6)
    fresh = prompt_batches(10, 3, seed=0)
    fresh.set_state(state)
    assert _take(fresh, 6) == want
    restarted = prompt_batches(10, 3, seed=0)
    _take(restarted, 7)  # ahead of the saved state: set_state rewinds
    restarted.set_state(state)
    assert _take(restarted, 6) == want


def test_prompt_batches_too_few_prompts():
    with pytest.raises(DataError, match="fewer than one batch of 8"):
        prompt_batches(5, 8, seed=0)


def test_prompt_batches_processes_slice_the_global_batch(monkeypatch):
    single = _take(prompt_batches(10, 4, seed=1), 5)
    monkeypatch.setattr(sources.jax, "process_count", lambda: 2)
    shares = []
    for pid in (0, 1):
        monkeypatch.setattr(sources.jax, "process_index", lambda pid=pid: pid)
        shares.append(_take(prompt_batches(10, 4, seed=1), 5))
    assert [a + b for a, b in zip(*shares)] == single  # process p: p-th half of every batch
    with pytest.raises(DataError, match="batch of 5 prompts does not split over 2 processes"):
        prompt_batches(10, 5, seed=1)
