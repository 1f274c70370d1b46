"""What every CLI shares: preset names from any directory, `--help` listing every config field
with its default and comment, `--print_config`, and `--dry_run` (inputs checked, nothing written)."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlogp_jax import runs, toy
from dlogp_jax.cli import common, config_files, help_text
from dlogp_jax.errors import CheckpointError, DataError
from tests.cli.configs import get_config

ROOT = Path(__file__).resolve().parents[2]
# CLI module -> its default config (the source of its --help fields).
CLIS = {
    "score": "score",
    "sample": "sample",
    "train": "dapo",
    "demo": "demo",
    "view": "view",
    "grade": "grade",
    "pairs": "pairs",
    "plot": "plot",
}


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# ------------------------------------------------------------------------------ presets
def test_preset_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    dapo = ROOT / "configs" / "dapo.py"
    assert config_files.resolve("dapo:tiny") == f"{dapo}:tiny"
    assert config_files.resolve("dapo") == str(dapo)
    # The README's relative paths fall back to the packaged file outside a checkout.
    assert config_files.resolve("configs/dapo.py:tiny") == f"{dapo}:tiny"
    own = tmp_path / "mine.py"
    own.write_text("def get_config(arg=None):\n    return {}\n")
    assert config_files.resolve(f"{own}:x") == f"{own}:x"  # an existing file is kept
    assert config_files.load("dapo", "tiny").toy_task is True


def test_unknown_preset_is_one_line_naming_the_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"no config file 'dpao'.*dapo, demo") as e:
        config_files.resolve("dpao:tiny")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="no config file 'elsewhere/x.py'"):
        config_files.resolve("elsewhere/x.py")


def test_load_config_matches_the_file(tmp_path):
    assert common.load_config("score", "demo").to_dict() == get_config("score", "demo").to_dict()
    assert common.default_config("sample") == str(ROOT / "configs" / "sample.py")


# ------------------------------------------------------------------------------ --help
@pytest.mark.parametrize("cli", sorted(CLIS))
def test_help_lists_every_field_with_default_and_comment(cli):
    module = importlib.import_module(f"dlogp_jax.cli.{cli}")
    name = CLIS[cli]
    text = help_text.render(module.__doc__, name)
    assert text.startswith(f"`dlogp-{cli}`:")  # what the tool does
    for flag in ("--print_config", "--dry_run", "--config=FILE|NAME[:ARG]"):
        assert flag in text
    comments = config_files.field_comments(ROOT / "configs" / f"{name}.py")
    lines = text.splitlines()
    for field, default in _leaves(get_config(name).to_dict()):
        comment = comments[field]
        assert comment, f"{name}.{field}: no comment"
        head = f"  {field} = {json.dumps(default)}"
        k = next(i for i, line in enumerate(lines) if line.startswith(head))
        assert comment in lines[k] or comment in lines[k + 1], (field, lines[k : k + 2])


def test_help_of_a_preset_shows_its_values_and_names_the_presets():
    text = help_text.render("`dlogp-train`: x", "dapo:tiny")
    assert "Presets of dapo: tiny, qwen2p5_math_7b, qwen3_8b_base" in text
    assert '  workdir = "runs/dapo_tiny"' in text
    pods = help_text.render("`dlogp-train`: x", "pods:dapo_qwen2p5_math_7b_v5p64")
    assert "rollout.n = 16" in pods and "responses per prompt" in pods  # comments of dapo.py


def test_field_comments_of_a_hand_written_file(tmp_path):
    path = tmp_path / "c.py"
    path.write_text(
        "import ml_collections\n"
        "from dlogp_jax.config_args import distributed\n"
        "def get_config(arg=None):\n"
        "    c = ml_collections.ConfigDict()\n"
        "    c.a = 1  # the a\n"
        "    # the b, on the line above\n"
        "    c.b = (\n"
        "        2\n"
        "    )\n"
        "    c.s = ml_collections.ConfigDict()\n"
        "    c.s.x = 'x'  # the x\n"
        "    c.a = 3  # a later override: ignored\n"
        "    c.distributed = distributed()\n"
        "    return c\n"
    )
    comments = config_files.field_comments(path)
    assert comments["a"] == "the a" and comments["b"] == "the b, on the line above"
    assert comments["s.x"] == "the x"
    assert comments["distributed.enabled"].startswith("call jax.distributed.initialize()")


# ------------------------------------------------------------------------------ --dry_run
def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dry_run_checks_inputs_and_writes_nothing(tmp_path):
    base, rl = toy.build_pair(tmp_path / "pair", seed=0)
    data = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "1+1", "response": "2"}] * 3)
    before = sorted(tmp_path.rglob("*"))
    out = tmp_path / "out"
    text = common.dry_run(
        importlib.import_module("dlogp_jax.cli.score").settings,
        get_config("score", base=str(base), rl=str(rl), data=str(data), out=str(out)),
    )
    assert text.startswith("dry run of ScoreSettings (nothing is written):")
    assert f"base: {base} (qwen2" in text and f"rl: {rl} (qwen2" in text
    assert f"data: {data} (3 rows; columns prompt, response)" in text
    assert f"out: {out} (new)" in text
    assert sorted(tmp_path.rglob("*")) == before
    _write_jsonl(data, [{"prompt": "x", "response": "y"}]).write_text("not json\n{}\n")
    with pytest.raises(DataError, match="d.jsonl:1"):
        runs.plan(runs.ScoreSettings(base=str(base), data=str(data)))
    with pytest.raises(CheckpointError, match="does not exist"):
        runs.plan(runs.ScoreSettings(base=str(tmp_path / "nope"), data=str(data)))


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_every_cli_has_a_dry_run(cli, tmp_path):
    module = importlib.import_module(f"dlogp_jax.cli.{cli}")
    data = _write_jsonl(tmp_path / "r.jsonl", [{"response": "\\boxed{1}", "answer": "1"}])
    overrides = {
        "score": dict(demo=True),
        "sample": dict(demo=True),
        "train": {},  # its default: the tiny preset below
        "demo": dict(workdir=str(tmp_path / "w")),
        "view": dict(input=str(tmp_path)),
        "grade": dict(data=str(data)),
        "pairs": dict(samples=f"{tmp_path}:g"),
        "plot": dict(inputs=str(tmp_path)),
    }[cli]
    config = get_config(CLIS[cli], "tiny" if cli == "train" else None, **overrides)
    text = common.dry_run(module.settings, config)
    assert text.startswith("dry run of ") and '"' in text  # the settings as JSON
    if cli == "train":
        assert "the built-in toy task" in text
    if cli == "grade":
        assert "(1 rows; columns answer, response)" in text


# ------------------------------------------------------------------------------ the flags
def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "dlogp_jax.cli.score", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_help_print_config_and_dry_run_from_the_command_line(tmp_path):
    proc = _cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("`dlogp-score`: per-token log p")
    assert "top_alternatives = 0" in proc.stdout and "dlogp-view: 5" in proc.stdout
    proc = _cli("--config=score:demo", "--config.top_k=3", "--print_config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    config = json.loads(proc.stdout)
    assert config["top_k"] == 3 and config["demo"] is True and config["out"] == "runs/score_demo"
    proc = _cli(
        "--config=score", "--config.base=nope", "--config.data=x.jsonl", "--dry_run", cwd=tmp_path
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: checkpoint directory 'nope'")
    assert list(tmp_path.iterdir()) == []  # nothing written
