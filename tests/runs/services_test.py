"""`dlogp-train`'s outside services on the tiny preset: Weights & Biases in offline mode (read back
from its `.wandb` file: the same namespaced scalars as metrics.jsonl, one run id across a resume),
TensorBoard's namespaced tags, and the Hub upload of hf/final (refused up front offline or without
a token; the upload itself monkeypatched: no hub is reachable here)."""

import json
import struct

import huggingface_hub
import pytest

from dlogp_jax import runs, toy
from dlogp_jax.cli import train as train_cli
from dlogp_jax.rl import metric_tags
from dlogp_jax.runs import _train, services
from tests.cli.configs import get_config


def _config(workdir, **kw):
    return get_config("dapo", "tiny", workdir=str(workdir), mesh="fsdp:1", **kw)


def _metrics(workdir) -> list[dict]:
    return [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]


def _expected(rows: list[dict]) -> dict[int, dict[str, float]]:
    """{step: {tag: value}} of metrics.jsonl rows, as the sinks should have received them."""
    return {r["step"]: metric_tags.tagged_scalars(r) for r in rows}


def _leveldb_records(path):
    """The records of a W&B `.wandb` file: a 7-byte `:W&B` header, then LevelDB log blocks of
    32 KiB, each record a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    The CRCs are not checked: wandb wrote the file a moment ago."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, out, part = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if kind == 0 and length == 0:
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        part += chunk
        if kind in (1, 4):
            out.append(part)
            part = b""
    return out


def _wandb_history(run_dir) -> tuple[tuple[str, str, str], dict[int, dict[str, float]]]:
    """((run id, project, name), {step: {key: value}}) of an offline W&B run directory."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("run-*.wandb")
    run_id, history = None, {}
    for blob in _leveldb_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(blob)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_id = (record.run.run_id, record.run.project, record.run.display_name)
        elif kind == "history":
            row = {
                i.key or "/".join(i.nested_key): json.loads(i.value_json)
                for i in record.history.item
            }
            history[row.pop("_step")] = {k: v for k, v in row.items() if not k.startswith("_")}
    return run_id, history


def _tensorboard_scalars(tb_dir) -> dict[int, dict[str, float]]:
    """{step: {tag: value}} of every TFRecord event file under `tb_dir` (tensorboardX's protos)."""
    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):  # [u64 length][u32 crc][event][u32 crc]
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 16 + length
            for v in event.summary.value:
                out.setdefault(event.step, {})[v.tag] = v.simple_value
    return out


def test_wandb_offline_and_tensorboard_get_the_namespaced_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    workdir = tmp_path / "run"
    config = _config(workdir, total_steps=1)
    config.logging.wandb = True
    config.logging.wandb_project = "dlogp_test"
    eval_data = tmp_path / "eval.jsonl"
    eval_data.write_text("".join(json.dumps(r) + "\n" for r in toy.toy_task_rows(2, seed=1)))
    config.eval.update(data=str(eval_data), every=1, n=2)  # at step 0 and after every step
    train_cli.run(config)
    config.total_steps = 2  # resume: the same W&B run continues
    train_cli.run(config)

    rows = _metrics(workdir)
    assert [r["step"] for r in rows] == [0, 1, 2]  # step 0: the evaluation before training
    expected = _expected(rows)
    assert not [t for s in expected.values() for t in s if t.startswith(metric_tags.OTHER)]
    for tag in ("actor/loss", "actor/grad_norm", "actor/lr", "actor/entropy"):
        assert tag in expected[1], tag
    for tag in ("actor/pg_clipfrac_high", "actor/token_weight_mean", "actor/dlogp_vs_init_mean"):
        assert tag in expected[1], tag
    for tag in ("rollout/reward_mean", "rollout/groups_kept", "timing/step", "timing/update"):
        assert tag in expected[1], tag
    assert {"eval/accuracy", "eval/pass_at_2", "eval/maj_at_2"} <= set(expected[0]) & set(
        expected[2]
    )

    runs = sorted((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one directory per session, one run id
    (first_id, first), (second_id, second) = map(_wandb_history, runs)
    run_id = (workdir / services.RUN_ID_FILE).read_text().strip()
    assert first_id == second_id == (run_id, "dlogp_test", "run")  # name: the workdir's
    assert sorted(first) == [0, 1] and sorted(second) == [2]
    tb = _tensorboard_scalars(workdir / "tb")
    assert sorted(tb) == [0, 1, 2]
    for step, scalars in expected.items():
        assert {**first, **second}[step] == scalars  # W&B keeps metrics.jsonl's float64 values
        assert tb[step] == pytest.approx(scalars, rel=1e-6)  # float32 in the event file
    assert "loss" not in tb[1]  # flat keys stay in metrics.jsonl only


def test_only_process_zero_opens_a_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setattr(_train.runtime, "is_writer", lambda: False)
    monkeypatch.setattr(services, "open_wandb", lambda *a, **kw: pytest.fail("opened"))
    settings = runs.TrainSettings(toy_task=True, logging=runs.LoggingSettings(wandb=True))
    with _train._wandb_run(settings, tmp_path) as run:
        assert run is None


def test_wandb_init_failure_is_one_line(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")

    def init(**kw):
        raise wandb.errors.UsageError("api_key not configured (no-tty).\ncall wandb.login")

    monkeypatch.setattr(wandb, "init", init)
    kw = dict(project="p", entity="", run_name="", mode="online", config={})
    with pytest.raises(ValueError, match=r"failed \(api_key not configured \(no-tty\)\.\); log in"):
        services.open_wandb(tmp_path, **kw)


def test_wandb_missing_is_one_line_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(services.importlib.util, "find_spec", lambda name: None)
    config = _config(tmp_path / "run")
    config.logging.wandb = True
    with pytest.raises(SystemExit, match=r"pip install 'dlogp_jax\[wandb\]'"):
        train_cli.run(config)
    assert not (tmp_path / "run").exists()


def test_hub_upload_refused_offline_and_without_token(tmp_path, monkeypatch):
    config = _config(tmp_path / "run", hub_repo="me/policy")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit, match=r"hub_repo='me/policy': HF_HUB_OFFLINE is set"):
        train_cli.run(config)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(SystemExit, match=r"no Hugging Face token; run `huggingface-cli login`"):
        train_cli.run(config)
    assert not (tmp_path / "run").exists()  # refused before any training


def test_hub_upload_of_the_final_export(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    calls = []

    def create_repo(repo_id, **kw):
        calls.append(("create_repo", repo_id, kw))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(**kw):
        calls.append(("upload_folder", kw["repo_id"], kw))
        assert (tmp_path / "run" / "hf" / "final" / "config.json").is_file()  # export complete

    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    train_cli.run(_config(tmp_path / "run", total_steps=1, hub_repo="me/policy", hub_private=False))
    (create, upload) = calls
    assert create == ("create_repo", "me/policy", dict(private=False, exist_ok=True))
    assert upload[1] == "me/policy" and upload[2]["folder_path"] == str(
        tmp_path / "run" / "hf" / "final"
    )
