"""End-to-end tests of `dlogp-score` on tiny checkpoints: outputs, schema, row kinds, errors."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from dlogp_jax import logprobs, toy
from dlogp_jax.cli import score
from dlogp_jax.data.rows import DataError
from dlogp_jax.model import hf_weights
from dlogp_jax.model.pair import load_pair
from tests.cli.configs import get_config

TWO_MODEL_COLUMNS = [
    "row",
    "position",
    "token_id",
    "token",
    "token_text",
    "logp_base",
    "logp_rl",
    "dlogp",
    "entropy_base",
    "entropy_rl",
    "kl_rl_base",
    "kl_base_rl",
]


@pytest.fixture(scope="module")
def pair_dirs(tmp_path_factory):
    return toy.build_pair(tmp_path_factory.mktemp("pair"), seed=1, pad_rows=5)


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_demo_writes_all_outputs(tmp_path):
    out = score.run(get_config("score", "demo", out=str(tmp_path / "demo")))
    table = pq.read_table(out / "tokens.parquet").to_pydict()
    assert list(table) == TWO_MODEL_COLUMNS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_rows"] == 24 and summary["num_tokens"] == len(table["row"])
    assert set(summary["dlogp_sparsity"]) == {"abs_gt_0.1", "abs_gt_0.5", "abs_gt_1", "abs_gt_2"}
    assert len(summary["dlogp_extremes"]["most_negative"]) == 20
    assert (out / "histograms.png").stat().st_size > 10_000
    assert summary["metrics"]["kl_rl_base"]["min"] >= -1e-5
    metadata = pq.read_schema(out / "tokens.parquet").metadata
    assert b"nats" in metadata[b"dlogp_jax.units"]


def test_text_rows_match_direct_scoring(tmp_path, pair_dirs):
    base, rl = pair_dirs
    rows = [
        {"prompt": "What is 2+3?", "response": "2+3=5. Answer: 5"},
        {"prompt": "Hi", "response": "x"},
        {"prompt": "A longer prompt, to vary the length.", "response": "ok!"},
    ]
    for i, r in enumerate(rows):  # identifying columns travel to every token of the row
        r.update(prompt_index=i // 2, sample_index=i % 2)
    data = _write_jsonl(tmp_path / "d.jsonl", rows)
    out = score.run(
        get_config("score", base=str(base), rl=str(rl), data=str(data), out=str(tmp_path / "o"))
    )
    table = pq.read_table(out / "tokens.parquet").to_pandas()
    pair = load_pair(base, rl)
    assert pair.vocab_limit == pair.config_base.vocab_size  # rl has 5 padded rows more
    for i, r in enumerate(rows):
        ids = pair.tokenizer.encode(r["prompt"] + r["response"], add_special_tokens=False)
        n_prompt = len(pair.tokenizer.encode(r["prompt"], add_special_tokens=False))
        tokens = np.asarray([ids])
        ref = logprobs.score_tokens(
            pair.params_base,
            tokens,
            np.arange(len(ids))[None],
            tokens >= 0,
            pair.params_rl,
            config_base=pair.config_base,
            config_rl=pair.config_rl,
            vocab_limit=pair.vocab_limit,
        )
        got = table[table.row == i]
        assert list(got.token_id) == ids[n_prompt:]
        assert list(got.position) == list(range(len(ids) - n_prompt))
        assert set(got.prompt_index) == {i // 2} and set(got.sample_index) == {i % 2}
        assert "".join(got.token_text) == r["response"]  # decoded text, not byte-level pieces
        np.testing.assert_allclose(got.dlogp, np.asarray(ref["dlogp"])[0, n_prompt:], atol=2e-4)


def test_id_rows_chat_template_and_single_model(tmp_path, pair_dirs):
    base, _ = pair_dirs
    data = _write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"prompt_ids": [1, 2, 3], "response_ids": [4, 5], "group": "base"},
            {"prompt_ids": [7], "response_ids": [8, 9, 10], "group": "rl"},
        ],
    )
    out = score.run(get_config("score", base=str(base), data=str(data), out=str(tmp_path / "o")))
    table = pq.read_table(out / "tokens.parquet").to_pydict()
    assert set(table) == {
        "row",
        "position",
        "token_id",
        "token",
        "token_text",
        "logp_base",
        "entropy_base",
        "group",
    }
    assert table["token_id"] == [4, 5, 8, 9, 10] and table["group"][:2] == ["base", "base"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["groups"]) == {"base", "rl"} and "dlogp" not in summary["metrics"]
    assert all(v < 0 for v in table["logp_base"])


@pytest.mark.parametrize(
    "line, expected",
    [
        ('{"prompt": "a"}', "d.jsonl:2: missing field 'response'"),
        ('{"prompt": "a", "response": 3}', "field 'response' must be a string"),
        ("not json", "d.jsonl:2: not valid JSON"),
        ('{"prompt_ids": [1], "response_ids": [1, 99999]}', "'response_ids'[1] = 99999"),
        ('{"text": "a"}', "a row needs 'prompt' and 'response'"),
    ],
)
def test_malformed_row_names_line_and_keeps_outputs(tmp_path, pair_dirs, line, expected):
    base, rl = pair_dirs
    out = tmp_path / "o"
    out.mkdir()
    (out / "summary.json").write_text("previous results")
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "response": "b"}\n' + line + "\n")
    config = get_config("score", base=str(base), rl=str(rl), data=str(data), out=str(out))
    with pytest.raises(DataError, match=expected.replace("[", r"\[").replace("(", r"\(")):
        score.run(config)
    assert (out / "summary.json").read_text() == "previous results"


def test_too_long_row_and_missing_inputs(tmp_path, pair_dirs):
    base, _ = pair_dirs
    data = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "abc", "response": "d" * 50}])
    with pytest.raises(DataError, match="max_length=20"):
        score.run(get_config("score", base=str(base), data=str(data), max_length=20))
    with pytest.raises(hf_weights.CheckpointError, match="does not exist"):
        score.run(get_config("score", base=str(tmp_path / "nope"), data=str(data)))
    with pytest.raises(SystemExit, match="--config.base"):
        score.run(get_config("score"))


def test_different_tokenizers_refused(tmp_path, pair_dirs):
    base, _ = pair_dirs
    other = tmp_path / "other"
    tok = toy.build_tokenizer(chars="abcdefghij0123456789 ")
    config = toy.tiny_config(len(tok))
    import jax

    hf_weights.export_params(other, toy.transformer.init(jax.random.key(0), config), config, tok)
    with pytest.raises(hf_weights.CheckpointError, match="different tokenizers: sizes differ"):
        load_pair(base, other)


def test_command_line_error_is_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlogp_jax.cli.score",
            f"--config.base={tmp_path}/nope",
            "--config.data=x.jsonl",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: checkpoint directory") and "does not exist" in last
    assert "Traceback" not in proc.stderr


def test_top_alternatives_are_list_columns(tmp_path):
    out = score.run(get_config("score", "demo", out=str(tmp_path / "d"), top_alternatives=5))
    table = pq.read_table(out / "tokens.parquet").to_pydict()
    extra = [f"top_{c}_{m}" for m in ("base", "rl") for c in ("ids", "tokens", "probs")]
    assert list(table) == TWO_MODEL_COLUMNS + extra
    assert all(len(r) == 5 for c in extra for r in table[c])
    assert all(p[0] >= np.exp(lp) - 1e-5 for p, lp in zip(table["top_probs_rl"], table["logp_rl"]))
