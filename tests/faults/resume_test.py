"""Resuming score and sample runs (issue 12, item 3; issue 14): `dlogp-score` resumes a killed run
(equal outputs), and sample resume is keyed on each prompt's content."""

import json

import pyarrow.parquet as pq
import pytest

from dlogp_jax import runs, toy
from dlogp_jax.analysis import scoring
from dlogp_jax.data.prompts import Prompt
from dlogp_jax.errors import DataError
from dlogp_jax.runs import _sample, _score


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return toy.build_pair(tmp_path_factory.mktemp("pair"), seed=1)


def _data(path, n=6):
    rows = [{"prompt": f"{i} + {i} =", "response": f" {2 * i} ok"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _settings(pair, data, out, **kw):
    base, rl = pair
    return runs.ScoreSettings(
        base=str(base), rl=str(rl), data=str(data), out=str(out), batch_size=2, **kw
    )


def test_killed_score_run_resumes_to_equal_outputs(pair, tmp_path, monkeypatch):
    data = _data(tmp_path / "d.jsonl")
    full = runs.score(_settings(pair, data, tmp_path / "full"))
    real = scoring.score_examples

    def killed_after_two_batches(*args, on_batch, **kw):
        calls = []

        def count(n):
            on_batch(n)
            calls.append(n)
            if len(calls) == 2:
                raise KeyboardInterrupt  # as a kill would, after two durable batches

        yield from real(*args, on_batch=count, **kw)

    monkeypatch.setattr(_score, "score_examples", killed_after_two_batches)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        runs.score(_settings(pair, data, out))
    partial = [json.loads(x)["row"] for x in (out / _score.PARTIAL).read_text().splitlines()]
    assert len(partial) == 4
    assert not (out / "tokens.parquet").exists()
    scored = []
    monkeypatch.setattr(
        _score,
        "score_examples",
        lambda p, todo, *a, **k: (scored.extend(todo), real(p, todo, *a, **k))[1],
    )
    runs.score(_settings(pair, data, out))
    assert sorted(e.row for e in scored) == sorted(set(range(6)) - set(partial))  # the rest only
    assert pq.read_table(out / "tokens.parquet").equals(pq.read_table(full / "tokens.parquet"))
    record = json.loads((out / "run.json").read_text())
    assert [s["status"] for s in record["sessions"]] == ["interrupted: SIGINT", "finished"]
    assert not (out / _score.PARTIAL).exists() and (out / "manifest.json").is_file()


def test_score_refuses_other_settings_and_empty_data(pair, tmp_path):
    data = _data(tmp_path / "d.jsonl", n=2)
    runs.score(_settings(pair, data, tmp_path / "o"))
    with pytest.raises(DataError, match="other settings"):
        runs.score(_settings(pair, data, tmp_path / "o", top_alternatives=3))
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(DataError, match="holds no rows"):
        runs.score(_settings(pair, tmp_path / "e.jsonl", tmp_path / "o2"))
    assert not (tmp_path / "o2" / "summary.json").exists()


def test_sample_resume_redoes_changed_prompts():
    a, b = Prompt(index=0, ids=(1, 2), answer="3"), Prompt(index=1, ids=(4,), answer="5")
    rows = lambda p: [{"prompt_index": p.index, "prompt_hash": _sample.prompt_hash(p)}]  # noqa: E731
    done = {0: rows(a), 1: rows(b)}
    assert _sample.unchanged_groups(done, [a, b]) == done
    edited = Prompt(index=1, ids=(4,), answer="6")  # the answer changed
    assert list(_sample.unchanged_groups(done, [a, edited])) == [0]
    reworded = Prompt(index=0, ids=(1, 9), answer="3")
    assert list(_sample.unchanged_groups(done, [reworded, b])) == [1]
    assert list(_sample.unchanged_groups(done, [a])) == [0]  # a row no longer in the data
