"""`runs.view`: the page is written, and bad inputs end with one clear line before any work."""

import json

import pytest

from dlogp_jax import outputs, runs, toy
from dlogp_jax.errors import DataError
from tests.view import pages


def _view(**kw):
    return runs.view(runs.ViewSettings(**kw))


def test_writes_one_self_contained_page(tmp_path):
    src = pages.score_dir(tmp_path / "score", big=10)
    path = _view(input=src, criterion="entropy_base", threshold=1.0, title="T <1>")
    assert path == src / "view.html"
    text = path.read_text()
    assert "<title>T &lt;1&gt;</title>" in text and "Say \\u003chello>" in text  # escaped data
    assert "http://" not in text and "https://" not in text and "<link" not in text  # no network
    data = text.split('id="dlogp-data">')[1].split("</script>")[0]
    payload = json.loads(data)
    assert payload["colourings"][0] == "entropy_base" and payload["default_tau"] == 1.0
    other = _view(input=src, out=tmp_path / "x" / "v.html", max_responses=2)
    assert other == tmp_path / "x" / "v.html" and other.is_file()
    data = other.read_text().split('id="dlogp-data">')[1].split("</script>")[0]
    assert [r["row"] for r in json.loads(data)["responses"]] == [0, 1]


def test_sample_output_with_a_tokenizer_override(tmp_path):
    base, _ = toy.build_pair(tmp_path / "pair", seed=0)
    src, _, _ = pages.sample_dir(tmp_path / "s", toy.build_tokenizer(), base=str(base))
    assert _view(input=src).is_file()
    record = json.loads((src / "run.json").read_text())
    record["base"] = "/moved"
    (src / "run.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match="set --config.tokenizer=DIR"):
        _view(input=src)
    assert _view(input=src, tokenizer=base).is_file()
    one = json.loads(
        _view(input=src, tokenizer=base, max_responses=1)
        .read_text()
        .split('id="dlogp-data">')[1]
        .split("</script>")[0]
    )
    assert len(one["responses"]) == 1
    with pytest.raises(DataError, match="criterion='kl_rl_base': .* holds dlogp only"):
        _view(input=src, tokenizer=base, criterion="kl_rl_base")


def test_bad_inputs_one_line(tmp_path):
    with pytest.raises(DataError, match="is not a directory"):
        _view(input=tmp_path / "missing")
    with pytest.raises(DataError, match="neither tokens.parquet .* nor samples.jsonl"):
        _view(input=tmp_path)
    outputs.write_parquet(tmp_path / "tokens.parquet", {"row": [0], "logp_base": [-1.0]})
    with pytest.raises(DataError, match="summary.json is missing"):
        _view(input=tmp_path)
    outputs.write_json(tmp_path / "summary.json", {})
    with pytest.raises(DataError, match="no dlogp column: score with an RL model"):
        _view(input=tmp_path)
    s = tmp_path / "s"
    outputs.write_jsonl(s / "samples.jsonl", [])
    with pytest.raises(DataError, match="run.json is missing"):
        _view(input=s)
    (s / "run.json").write_text(json.dumps({"base": "b", "rl": ""}))
    with pytest.raises(DataError, match="without an RL model"):
        _view(input=s)
    with pytest.raises(ValueError, match="input: set --config.input=DIR"):
        runs.ViewSettings()
    with pytest.raises(ValueError, match="max_responses=-1.*criterion='x'.*threshold='a': must be"):
        runs.ViewSettings(input="d", criterion="x", threshold="a", max_responses=-1)
