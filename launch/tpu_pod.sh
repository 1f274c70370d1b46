#!/usr/bin/env bash
# shellcheck disable=SC2016 # remote commands are single-quoted on purpose: they expand on the workers
# Creates (or reuses) a Cloud TPU VM slice, ships this working tree to every worker, installs the
# package with the `tpu` extra, and starts the same dlogp command on all workers. See usage() below.
set -euo pipefail

# shellcheck source=launch/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_pod.sh --name NAME --zone ZONE --project PROJECT --accelerator-type TYPE \
           [options] [-- COMMAND [ARGS...]]

Steps, in order (each prints its gcloud command first):
  1. create   reuse the TPU VM NAME when it exists (state READY), else create it
              (gcloud compute tpus tpu-vm create), or with --queued request the queued resource NAME
              (gcloud compute tpus queued-resources create NAME --node-id NAME) and wait for ACTIVE
  2. sync     pack this working tree (tracked and untracked files that git does not ignore) into a
              tarball, copy it to every worker (tpu-vm scp --worker=all), unpack into ~/dlogp_jax
  3. install  on every worker: a Python venv ~/dlogp_venv (made with uv) and
              pip install -e "~/dlogp_jax[tpu]" gcsfs   (gcsfs: gs:// paths for orbax/etils)
  4. mount    with --bucket BUCKET: gcsfuse mounts gs://BUCKET at /gcs/BUCKET on every worker
              (--rename-dir-limit: orbax renames its temporary checkpoint directories)
  5. run      with a COMMAND: start it on all workers at once (tpu-vm ssh --worker=all) from
              ~/dlogp_jax with DLOGP_DISTRIBUTED=1, so jax.distributed.initialize() auto-detects the
              slice; every worker runs the same command.

COMMAND: dlogp-score | dlogp-sample | dlogp-train (run as ~/dlogp_venv/bin/python -m
         dlogp_jax.cli.NAME) followed by its flags, e.g.
         -- dlogp-train --config=configs/pods.py:dapo_qwen2p5_math_7b_v5p64 --config.init_from=...

Required:
  --name NAME               TPU VM (and queued resource) name
  --zone ZONE               e.g. us-east5-a (default: $CLOUDSDK_COMPUTE_ZONE, gcloud config compute/zone)
  --project PROJECT         (default: $CLOUDSDK_CORE_PROJECT, gcloud config core/project)
  --accelerator-type TYPE   e.g. v5p-64 (32 chips, 8 workers), v5p-128; not needed with --skip-create
Options:
  --runtime-version VER     TPU software version (default by type: v5p -> v2-alpha-tpuv5,
                            v5litepod -> v2-alpha-tpuv5-lite, v6e -> v2-alpha-tpuv6e,
                            v4 -> tpu-ubuntu2204-base)
  --queued                  create through a queued resource and wait until it is ACTIVE
  --spot                    Spot capacity (preemptible; resume by re-running the same command)
  --service-account EMAIL   the workers' service account (default: the Compute Engine default);
                            it needs read/write access to the bucket of --workdir
  --mesh SPEC               appended as --config.mesh=SPEC (e.g. fsdp:8,tensor:4)
  --workdir DIR             appended as --config.workdir=DIR (train) or --config.out=DIR
                            (score, sample); e.g. /gcs/BUCKET/runs/q7b with --bucket BUCKET
  --bucket BUCKET           mount gs://BUCKET at /gcs/BUCKET on every worker (gcsfuse)
  --env KEY=VALUE           extra environment for the command (repeatable)
  --detach                  run in the background on each worker (survives a dropped ssh);
                            output to ~/dlogp_logs/NAME.log on each worker
  --python VERSION          Python of the worker venv (default 3.11)
  --skip-create, --skip-sync, --skip-install
                            skip a step (e.g. only re-run the command on a provisioned slice)
  --dry-run                 print every command instead of running it
  -h, --help                show this text
EOF
}

DRY_RUN=0
name="" zone="" project="" accel="" runtime="" queued=0 spot=0 mesh="" workdir="" bucket=""
detach=0 python_version=3.11 skip_create=0 skip_sync=0 skip_install=0 service_account=""
extra_env=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; name="$2"; shift 2 ;;
    --zone) need_value "$@"; zone="$2"; shift 2 ;;
    --project) need_value "$@"; project="$2"; shift 2 ;;
    --accelerator-type) need_value "$@"; accel="$2"; shift 2 ;;
    --runtime-version) need_value "$@"; runtime="$2"; shift 2 ;;
    --queued) queued=1; shift ;;
    --spot) spot=1; shift ;;
    --service-account) need_value "$@"; service_account="$2"; shift 2 ;;
    --mesh) need_value "$@"; mesh="$2"; shift 2 ;;
    --workdir) need_value "$@"; workdir="$2"; shift 2 ;;
    --bucket) need_value "$@"; bucket="${2#gs://}"; bucket="${bucket%/}"; shift 2 ;;
    --env)
      need_value "$@"
      [[ $2 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env takes KEY=VALUE, got '$2'"
      extra_env+=("$2")
      shift 2
      ;;
    --detach) detach=1; shift ;;
    --python) need_value "$@"; python_version="$2"; shift 2 ;;
    --skip-create) skip_create=1; shift ;;
    --skip-sync) skip_sync=1; shift ;;
    --skip-install) skip_install=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown option '$1' (the command goes after '--')" ;;
  esac
done

# ---------------------------------------------------------------- checks (before any side effect)
have_gcloud=0
if command -v gcloud >/dev/null 2>&1; then have_gcloud=1; fi
if [[ $have_gcloud == 0 && $DRY_RUN == 0 ]]; then
  die "gcloud not found on PATH. Install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install), then run 'gcloud auth login'."
fi
gcloud_config() { # the gcloud config value of $1, or empty
  if [[ $have_gcloud == 1 ]]; then gcloud config get-value "$1" 2>/dev/null || true; fi
}
[[ -n $name ]] || die "--name is required (the TPU VM name, e.g. --name dlogp-v5p64)"
[[ -n $project ]] || project="${CLOUDSDK_CORE_PROJECT:-$(gcloud_config core/project)}"
[[ -n $project ]] || die "no project: pass --project PROJECT (or 'gcloud config set project PROJECT')"
[[ -n $zone ]] || zone="${CLOUDSDK_COMPUTE_ZONE:-$(gcloud_config compute/zone)}"
[[ -n $zone ]] || die "no zone: pass --zone ZONE, e.g. --zone us-east5-a (a zone with quota for your TPU type)"
if [[ $skip_create == 0 ]]; then
  [[ -n $accel ]] || die "--accelerator-type is required to create or check the slice (e.g. v5p-64), or pass --skip-create to use an existing one"
  if [[ -z $runtime ]]; then
    case "$accel" in
      v5p-*) runtime=v2-alpha-tpuv5 ;;
      v5litepod-*) runtime=v2-alpha-tpuv5-lite ;;
      v6e-*) runtime=v2-alpha-tpuv6e ;;
      v4-*) runtime=tpu-ubuntu2204-base ;;
      *) die "no default runtime version for accelerator type '$accel': pass --runtime-version" ;;
    esac
  fi
fi
run_cmd=()
if [[ $# -gt 0 ]]; then
  resolve_cli "$@"
  [[ -n $CLI_MODULE ]] || die "the command must be dlogp-score, dlogp-sample, dlogp-train or -m MODULE, got '$1'"
  add_run_flags "$mesh" "$workdir"
  run_cmd=("$CLI_MODULE" ${CLI_ARGS[@]+"${CLI_ARGS[@]}"})
elif [[ -n $mesh || -n $workdir ]]; then
  die "--mesh/--workdir are given but there is no command after '--'"
fi

where=(--zone="$zone" --project="$project")
ssh_all() { # runs the shell command $1 on every worker
  run gcloud compute tpus tpu-vm ssh "$name" "${where[@]}" --worker=all --command="$1"
}

# ---------------------------------------------------------------- 1. create or reuse
wait_active() {
  local state
  while :; do
    state="$(gcloud compute tpus queued-resources describe "$name" "${where[@]}" --format='value(state.state)')"
    case "$state" in
      ACTIVE) return 0 ;;
      FAILED | SUSPENDED | SUSPENDING)
        die "queued resource $name is $state; delete it (gcloud compute tpus queued-resources delete $name --zone=$zone --project=$project --force) and re-run" ;;
    esac
    echo "queued resource $name: $state; checking again in 60 s (Ctrl-C is safe: the request stays queued)" >&2
    sleep 60
  done
}

if [[ $skip_create == 0 ]]; then
  create=(gcloud compute tpus tpu-vm create "$name" "${where[@]}" --accelerator-type="$accel" --version="$runtime")
  if [[ $queued == 1 ]]; then
    create=(gcloud compute tpus queued-resources create "$name" "${where[@]}" --node-id="$name"
      --accelerator-type="$accel" --runtime-version="$runtime")
  fi
  # Scopes: the cloud-platform scope lets IAM roles alone decide what the workers may access (GCS).
  create+=(--scopes=https://www.googleapis.com/auth/cloud-platform)
  if [[ -n $service_account ]]; then create+=(--service-account="$service_account"); fi
  if [[ $spot == 1 ]]; then create+=(--spot); fi
  if [[ $DRY_RUN == 1 ]]; then
    if [[ $queued == 1 ]]; then
      run gcloud compute tpus queued-resources describe "$name" "${where[@]}" --format='value(state.state)'
      note "# if the queued resource does not exist:"
      run "${create[@]}"
      note "# then poll the describe command every 60 s until the state is ACTIVE"
    else
      run gcloud compute tpus tpu-vm describe "$name" "${where[@]}" --format='value(state)'
      note "# if the TPU VM does not exist:"
      run "${create[@]}"
    fi
  elif [[ $queued == 1 ]]; then
    if ! gcloud compute tpus queued-resources describe "$name" "${where[@]}" --format='value(state.state)' >/dev/null 2>&1; then
      run "${create[@]}"
    fi
    wait_active
  else
    if state="$(gcloud compute tpus tpu-vm describe "$name" "${where[@]}" --format='value(state)' 2>/dev/null)"; then
      [[ $state == READY ]] || die "TPU VM $name exists but is $state; if preempted, delete it (gcloud compute tpus tpu-vm delete $name --zone=$zone --project=$project) and re-run"
      echo "reusing TPU VM $name (READY)" >&2
    else
      run "${create[@]}"
    fi
  fi
fi

# ---------------------------------------------------------------- 2. sync the code
if [[ $skip_sync == 0 ]]; then
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  tarball="${TMPDIR:-/tmp}/dlogp_code_$name.tgz"
  note "+ git -C $root ls-files -z --cached --others --exclude-standard | tar -C $root --null -T - -czf $tarball"
  if [[ $DRY_RUN == 0 ]]; then
    git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || die "$root is not a git checkout; the code is shipped as its git-tracked (and untracked, not ignored) files"
    while IFS= read -r -d '' f; do
      if [[ -e $root/$f ]]; then printf '%s\0' "$f"; fi # skip deleted, not yet committed files
    done < <(git -C "$root" ls-files -z --cached --others --exclude-standard) |
      tar -C "$root" --null -T - -czf "$tarball"
  fi
  run gcloud compute tpus tpu-vm scp "$tarball" "$name:dlogp_code.tgz" "${where[@]}" --worker=all
  ssh_all 'mkdir -p "$HOME/dlogp_jax" && tar -xzf "$HOME/dlogp_code.tgz" -C "$HOME/dlogp_jax" && rm "$HOME/dlogp_code.tgz"'
fi

# ---------------------------------------------------------------- 3. install
if [[ $skip_install == 0 ]]; then
  # uv fetches a standalone Python when the image's python3 is older than the package needs.
  install='set -e; export PATH="$HOME/.local/bin:$PATH"; '
  install+='python3 -m pip --version >/dev/null 2>&1 || { sudo apt-get update -q && sudo apt-get install -y -q python3-pip; }; '
  install+='command -v uv >/dev/null || python3 -m pip install --user -q uv; '
  install+="[ -x \"\$HOME/dlogp_venv/bin/python\" ] || uv venv --python $python_version \"\$HOME/dlogp_venv\"; "
  install+='uv pip install --python "$HOME/dlogp_venv/bin/python" -e "$HOME/dlogp_jax[tpu]" gcsfs'
  ssh_all "$install"
fi

# ---------------------------------------------------------------- 4. mount the bucket
if [[ -n $bucket ]]; then
  mount='set -e; if ! command -v gcsfuse >/dev/null; then '
  mount+='curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo tee /usr/share/keyrings/cloud.google.asc >/dev/null; '
  mount+='echo "deb [signed-by=/usr/share/keyrings/cloud.google.asc] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -cs) main" | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null; '
  mount+='sudo apt-get update -q && sudo apt-get install -y -q gcsfuse; fi; '
  mount+="sudo mkdir -p /gcs/$bucket && sudo chown \"\$USER\" /gcs/$bucket; "
  mount+="mountpoint -q /gcs/$bucket || gcsfuse --implicit-dirs --rename-dir-limit=1000000 $bucket /gcs/$bucket"
  ssh_all "$mount"
fi

# ---------------------------------------------------------------- 5. run on all workers
if [[ ${#run_cmd[@]} -gt 0 ]]; then
  env_words="$(quote_cmd DLOGP_DISTRIBUTED=1 ${extra_env[@]+"${extra_env[@]}"})"
  args="$(quote_cmd "${run_cmd[@]}")"
  cmd='cd "$HOME/dlogp_jax" && '
  if [[ $detach == 1 ]]; then
    cmd='mkdir -p "$HOME/dlogp_logs" && '"$cmd"
    cmd+="setsid nohup env $env_words \"\$HOME/dlogp_venv/bin/python\" -m $args"
    cmd+=" >\"\$HOME/dlogp_logs/$name.log\" 2>&1 </dev/null &"
  else
    cmd+="env $env_words \"\$HOME/dlogp_venv/bin/python\" -m $args"
  fi
  ssh_all "$cmd"
  if [[ $detach == 1 ]]; then
    note "# started; follow worker 0 with: gcloud compute tpus tpu-vm ssh $name --zone=$zone --project=$project --worker=0 --command='tail -f ~/dlogp_logs/$name.log'"
  fi
fi
