"""End-to-end tests of `dlogp-sample` on tiny checkpoints: outputs, grading, resume, errors."""

import json

import pytest

from dlogp_jax import runs, toy
from dlogp_jax.cli import sample
from dlogp_jax.data.rows import DataError
from dlogp_jax.model.tokenizer import stop_token_ids
from tests.cli.configs import get_config


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    base, rl = toy.build_pair(root, seed=2, pad_rows=3)
    rows = [{"prompt": f"{a}+{a}=?", "answer": str(2 * a)} for a in range(5)]
    rows.append({"problem": "no answer here"})
    data = root / "p.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return base, rl, data


def _config(inputs, out, **kw):
    base, rl, data = inputs
    fields = dict(
        base=str(base),
        rl=str(rl),
        data=str(data),
        out=str(out),
        mode="extrapolate",
        criterion="dlogp",
        threshold=-0.5,
        gamma=0.2,
        max_new_tokens=12,
        n=3,
        batch_prompts=2,
        grader_workers=0,
    )
    fields.update(kw)
    return get_config("sample", **fields)


def _rows(out):
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def test_outputs_and_summary(tmp_path, inputs):
    out = sample.run(_config(inputs, tmp_path / "o"))
    rows = _rows(out)
    assert sorted((r["prompt_index"], r["sample_index"]) for r in rows) == [
        (p, j) for p in range(6) for j in range(3)
    ]
    for r in rows:
        n = r["length"]
        assert 1 <= n <= 12 and len(r["token_ids"]) == n == len(r["dlogp"]) == len(r["selected"])
        assert r["finish_reason"] in ("stop", "length")
        assert abs(r["replacement_rate"] - sum(r["selected"]) / n) < 1e-6
        assert all(t < 99 for t in r["token_ids"])  # the RL model's 3 padded rows never sampled
        assert ("correct" in r) == (r["prompt_index"] < 5)
        if r["finish_reason"] == "stop":
            assert r["token_ids"][-1] in stop_token_ids(toy.build_tokenizer(), "")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_samples"] == 18 and summary["samples_per_prompt"] == 3
    assert 0 <= summary["accuracy"] <= 1 and 0 < summary["replacement_rate"] <= 1
    assert summary["mean_length"] == pytest.approx(sum(r["length"] for r in rows) / 18)
    assert list(summary["pass_at_k"]) == list(summary["maj_at_k"]) == ["1", "2", "3"]
    assert summary["pass_at_k"]["1"] == pytest.approx(summary["accuracy"])
    assert summary["grading_timeouts"] == 0
    # dlogp-grade on the same samples (answered prompts) reports the same metrics.
    answered = tmp_path / "answered.jsonl"
    answered.write_text("".join(json.dumps(r) + "\n" for r in rows if "answer" in r))
    graded = runs.grade(
        runs.GradeSettings(
            data=answered, out=tmp_path / "g", grader="accuracy", response_field="text", workers=0
        )
    )
    regraded = json.loads((graded / "summary.json").read_text())
    for key in ("accuracy", "accuracy_ci95", "pass_at_k", "maj_at_k"):
        assert regraded[key] == pytest.approx(summary[key], nan_ok=True), key
    # Each sample names its rendered prompt (a hash) and its extracted prediction, as dlogp-grade.
    hashes = {r["prompt_index"]: r["prompt_hash"] for r in rows}
    assert all(r["prompt_hash"] == hashes[r["prompt_index"]] for r in rows)
    assert len(set(hashes.values())) == 6 and all(len(h) == 16 for h in hashes.values())
    graded_rows = [json.loads(x) for x in (graded / "graded.jsonl").read_text().splitlines()]
    assert [r["pred"] for r in rows if "answer" in r] == [g["pred"] for g in graded_rows]
    assert all(("pred" in r) == ("answer" in r) for r in rows)


def test_resume_after_interruption_equals_uninterrupted(tmp_path, inputs):
    full = _rows(sample.run(_config(inputs, tmp_path / "full")))
    out = tmp_path / "cut"
    sample.run(_config(inputs, out))
    lines = (out / "samples.jsonl").read_text().splitlines()
    # Killed mid-run: two whole prompts written, a third partly, and a torn last line.
    (out / "samples.jsonl").write_text("\n".join(lines[:8]) + "\n" + lines[8][:20])
    (out / "summary.json").unlink()
    resumed = _rows(sample.run(_config(inputs, out)))
    key = lambda r: (r["prompt_index"], r["sample_index"])
    assert sorted(resumed, key=key) == sorted(full, key=key)
    assert resumed[:6] == [json.loads(x) for x in lines[:6]]  # kept, not redone


def test_batch_size_does_not_change_samples(tmp_path, inputs):
    a = _rows(sample.run(_config(inputs, tmp_path / "a", batch_prompts=1)))
    b = _rows(sample.run(_config(inputs, tmp_path / "b", batch_prompts=4)))
    key = lambda r: (r["prompt_index"], r["sample_index"])
    assert [r["token_ids"] for r in sorted(a, key=key)] == [
        r["token_ids"] for r in sorted(b, key=key)
    ]


def test_changed_settings_refused_and_errors(tmp_path, inputs):
    out = tmp_path / "o"
    sample.run(_config(inputs, out, max_new_tokens=4))
    with pytest.raises(DataError, match=r"other settings \{'gamma': \(0.2, 0.3\)\}"):
        sample.run(_config(inputs, out, max_new_tokens=4, gamma=0.3))
    with pytest.raises(SystemExit, match="needs --config.rl"):
        sample.run(_config(inputs, tmp_path / "x", rl=""))
    with pytest.raises(DataError, match=r"stop_tokens: \['<nope>'\]"):
        sample.run(_config(inputs, tmp_path / "y", stop_tokens="<nope>"))
    with pytest.raises(SystemExit, match="mode='bogus': use one of"):  # with the settings
        sample.run(_config(inputs, tmp_path / "z", mode="bogus"))


def test_single_mode_and_demo(tmp_path, inputs):
    out = sample.run(_config(inputs, tmp_path / "s", mode="single", rl="", n=1))
    rows = _rows(out)
    assert len(rows) == 6 and all(sum(r["selected"]) == 0 for r in rows)
    demo = sample.run(get_config("sample", "demo", out=str(tmp_path / "demo"), grader_workers=0))
    assert json.loads((demo / "summary.json").read_text())["num_samples"] == 16
