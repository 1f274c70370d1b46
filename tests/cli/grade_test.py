"""`dlogp-grade` end to end: the config, the run, its outputs; and grading dlogp-sample's output."""

import json

from dlogp_jax.cli import grade
from tests.cli.configs import get_config


def test_cli_grades_responses(tmp_path):
    rows = [
        {"prompt_index": 0, "response": "so \\boxed{\\dfrac{1}{2}}", "answer": "0.5"},
        {"prompt_index": 0, "response": "\\boxed{a=1, b=3}", "answer": "3"},
        {"prompt_index": 1, "response": "Answer: 12", "answer": "12"},
    ]
    data = tmp_path / "r.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = get_config("grade", data=str(data), out=str(tmp_path / "out"), workers=0)
    config.grader = "accuracy"
    out = grade.run(config)
    graded = [json.loads(x) for x in (out / "graded.jsonl").read_text().splitlines()]
    assert [g["correct"] for g in graded] == [True, False, True]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == 0.75 and summary["num_prompts"] == 2
    assert summary["settings"]["grader"] == "accuracy"
    assert summary["timeouts"] == 0
