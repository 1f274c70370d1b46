"""`runs.grade`: any table of responses graded with a named grader or by data source."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dlogp_jax import runs
from dlogp_jax.errors import DataError
from tests.rl import rewards_test


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _read(out):
    graded = [json.loads(x) for x in (out / "graded.jsonl").read_text().splitlines()]
    return graded, json.loads((out / "summary.json").read_text())


def test_grades_a_list_of_responses_per_row_with_a_named_grader(tmp_path):
    rows = [
        {"responses": ["\\boxed{3}", "\\boxed{x=2 \\text{ or } x=3}", "\\boxed{3}"], "answer": "3"},
        {"responses": ["\\boxed{1}", "Answer: 2", "\\boxed{2}<|im_end|>"], "answer": "2"},
    ]
    data = _jsonl(tmp_path / "r.jsonl", rows)
    settings = runs.GradeSettings(
        data=data,
        out=tmp_path / "out",
        grader="boxed_math_verify",
        response_field="responses",
        workers=0,
    )
    graded, summary = _read(runs.grade(settings))
    assert [g["correct"] for g in graded] == [True, False, True, False, False, True]
    assert [g["score"] for g in graded][:2] == [1.0, -1.0]
    assert [(g["row"], g["prompt"], g["sample"]) for g in graded][3:] == [
        (1, "row 1", 0),
        (1, "row 1", 1),
        (1, "row 1", 2),
    ]
    assert graded[5]["pred"] == "2" and graded[4]["pred"] is None  # no box: no answer read
    assert summary["accuracy"] == pytest.approx(0.5)
    assert summary["num_prompts"] == 2 and summary["num_responses"] == 6
    assert summary["pass_at_k"]["1"] == pytest.approx(0.5)
    assert summary["pass_at_k"]["3"] == 1.0
    assert set(summary["maj_at_k"]) == {"1", "2", "3"}
    assert summary["timeouts"] == 0 and summary["graders"] == {"boxed_math_verify": 6}


def test_by_source_on_a_verl_parquet_with_nested_answers(tmp_path):
    table = pa.table(
        {
            "prompt_index": [0, 0, 1, 1],
            "response": ["Answer: 7", "\\boxed{7}", "Answer: 1/2", "\\boxed{0.5}"],
            "data_source": ["math_dapo", "math_dapo", "aime24", "other"],
            "reward_model": [{"ground_truth": "7"}] * 2 + [{"ground_truth": "\\frac{1}{2}"}] * 2,
        }
    )
    pq.write_table(table, tmp_path / "v.parquet")
    settings = runs.GradeSettings(
        data=tmp_path / "v.parquet",
        out=tmp_path / "out",
        answer_field="reward_model.ground_truth",
        workers=0,
    )
    graded, summary = _read(runs.grade(settings))
    # math_dapo / aime*: DAPO's Answer: matcher (a box alone is wrong there, "1/2" is not
    # "\frac{1}{2}" after Minerva normalisation); other sources: the boxed grader.
    assert [g["grader"] for g in graded] == ["dapo_answer"] * 3 + ["boxed_math_verify"]
    assert [g["correct"] for g in graded] == [True, False, False, True]
    assert [g["prompt"] for g in graded] == [0, 0, 1, 1]
    assert summary["accuracy"] == pytest.approx(0.5)
    assert summary["graders"] == {"boxed_math_verify": 1, "dapo_answer": 3}


def test_timeouts_are_counted(tmp_path):
    assert "test_slow_first" in rewards_test.rewards.REWARDS  # 4 s on "slow"
    rows = [{"response": r, "answer": "1"} for r in ("slow", "\\boxed{1}")]
    settings = runs.GradeSettings(
        data=_jsonl(tmp_path / "r.jsonl", rows),
        out=tmp_path / "out",
        grader="test_slow_first",
        workers=1,
        timeout_s=1.0,
    )
    graded, summary = _read(runs.grade(settings))
    assert [(g["correct"], g["timed_out"]) for g in graded] == [(False, True), (True, False)]
    assert summary["timeouts"] == 1


def test_bad_inputs(tmp_path):
    data = _jsonl(tmp_path / "r.jsonl", [{"text": "x", "answer": "1"}])
    with pytest.raises(DataError, match="no 'response' field"):
        runs.grade(runs.GradeSettings(data=data, out=tmp_path / "o", workers=0))
    with pytest.raises(ValueError, match="grader='nope': use one of by_source"):  # before any work
        runs.grade(
            runs.GradeSettings(data=data, out=tmp_path / "o", grader="nope", response_field="text")
        )
    with pytest.raises(ValueError) as e:
        runs.GradeSettings(workers=-1, timeout_s=0, rewards_by_source="bad")
    for field in ("data:", "workers=-1", "timeout_s=0", "rewards_by_source"):
        assert field in str(e.value)
