#!/usr/bin/env bash
# N local JAX processes x M simulated CPU devices joined by jax.distributed on localhost: multi-host
# behaviour (process 0 writes, every process reads its data shard, cross-process collectives) on a
# laptop. See usage() below.
set -euo pipefail

# shellcheck source=launch/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: launch/cpu_multiprocess.sh [options] -- COMMAND [ARGS...]

Runs COMMAND as N processes on this machine, each with M simulated CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=M), joined through jax.distributed on localhost
(process 0 hosts the coordinator; cross-process collectives use gloo). Every line of output is
prefixed with [pI], the process index. Waits for all processes; when one fails, the others are
stopped (SIGTERM, then SIGKILL) and the script exits with that process's status.

COMMAND: dlogp-score | dlogp-sample | dlogp-train (run as "$PYTHON -m dlogp_jax.cli.NAME"), or
         -m MODULE, followed by the command's own flags (--config=..., --config.x=...).
         The script appends --config.distributed.{enabled,coordinator_address,num_processes,
         process_id}, and --config.mesh / the work directory when given.

Options:
  --processes N   number of processes (default 2)
  --devices M     simulated CPU devices per process (default 4)
  --port P        coordinator port on localhost (default: a free port)
  --mesh SPEC     appended as --config.mesh=SPEC, e.g. data:2,fsdp:2,tensor:2 (N*M devices in all)
  --workdir DIR   appended as --config.workdir=DIR (train) or --config.out=DIR (score, sample)
  --grace S       seconds between SIGTERM and SIGKILL when stopping the others (default 10)
  --dry-run       print each process's command and environment instead of running them
  -h, --help      show this text

Environment: PYTHON, the interpreter of the processes (default: python3).

Example (2 processes x 4 devices, the same losses as one process with 8 devices):
  launch/cpu_multiprocess.sh --processes 2 --devices 4 --mesh data:2,fsdp:2,tensor:2 \
      --workdir runs/mp_tiny -- dlogp-train --config=configs/dapo.py:tiny --config.total_steps=2
EOF
}

DRY_RUN=0
processes=2
devices=4
port=""
mesh=""
workdir=""
grace=10
while [[ $# -gt 0 ]]; do
  case "$1" in
    --processes) need_value "$@"; processes="$2"; shift 2 ;;
    --devices) need_value "$@"; devices="$2"; shift 2 ;;
    --port) need_value "$@"; port="$2"; shift 2 ;;
    --mesh) need_value "$@"; mesh="$2"; shift 2 ;;
    --workdir) need_value "$@"; workdir="$2"; shift 2 ;;
    --grace) need_value "$@"; grace="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown option '$1' (the command goes after '--')" ;;
  esac
done

for pair in "processes:$processes" "devices:$devices" "grace:$grace"; do
  [[ ${pair#*:} =~ ^[0-9]+$ && ${pair#*:} -ge 1 ]] || die "--${pair%%:*} must be a positive integer, got '${pair#*:}'"
done
resolve_cli "$@"
add_run_flags "$mesh" "$workdir"
PYTHON="${PYTHON:-python3}"
if [[ -z $port ]]; then
  port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')" ||
    die "could not run PYTHON=$PYTHON to pick a free port; set PYTHON or pass --port"
fi
[[ $port =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"

# The user's XLA_FLAGS come first: for a repeated flag the last one wins, so M devices it is.
xla_flags="${XLA_FLAGS:+$XLA_FLAGS }--xla_force_host_platform_device_count=$devices"
if [[ -n $CLI_MODULE ]]; then
  base=("$PYTHON" -m "$CLI_MODULE")
else
  base=()
fi

process_cmd() { # the full command of process $1
  local i="$1"
  PROC_CMD=(env "XLA_FLAGS=$xla_flags" JAX_PLATFORMS=cpu JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo
    PYTHONUNBUFFERED=1 ${base[@]+"${base[@]}"} ${CLI_ARGS[@]+"${CLI_ARGS[@]}"}
    --config.distributed.enabled=true
    "--config.distributed.coordinator_address=localhost:$port"
    "--config.distributed.num_processes=$processes"
    "--config.distributed.process_id=$i")
}

if [[ $DRY_RUN == 1 ]]; then
  for ((i = 0; i < processes; i++)); do
    process_cmd "$i"
    note "+ $(quote_cmd "${PROC_CMD[@]}") &"
  done
  echo "+ wait  # for all $processes processes; on a failure stop the others"
  exit 0
fi

# Job control: every background job gets its own process group, so stopping a process also stops
# whatever it started (worker processes that would keep its output pipe open).
set -m
tmp="$(mktemp -d "${TMPDIR:-/tmp}/dlogp_mp.XXXXXX")"
pids=()
readers=()
finished=() # finished[i]=1 once process i has been reaped

alive() { # is process $1 (an index) still running?
  [[ -z ${finished[$1]:-} ]] && kill -0 "${pids[$1]}" 2>/dev/null
}

stop_all() { # SIGTERM to every running process group, SIGKILL after --grace seconds
  local i t any
  for ((i = 0; i < ${#pids[@]}; i++)); do
    if alive "$i"; then kill -TERM -- "-${pids[i]}" 2>/dev/null || true; fi
  done
  for ((t = 0; t < grace * 10; t++)); do
    any=0
    for ((i = 0; i < ${#pids[@]}; i++)); do
      if alive "$i"; then any=1; fi
    done
    [[ $any == 1 ]] || break
    sleep 0.1
  done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    kill -KILL -- "-${pids[i]}" 2>/dev/null || true # also leftovers of finished processes
  done
}

cleanup() {
  stop_all
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "interrupted: stopping all processes" >&2; exit 130' INT TERM

prefix() { # copies stdin to stdout with "$1" before every line
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    printf '%s %s\n' "$1" "$line"
  done
}

echo "launching $processes processes x $devices CPU devices, coordinator localhost:$port" >&2
for ((i = 0; i < processes; i++)); do
  process_cmd "$i"
  printf '[p%d] + %s\n' "$i" "$(quote_cmd "${PROC_CMD[@]}")" >&2
  mkfifo "$tmp/out$i"
  prefix "[p$i]" <"$tmp/out$i" &
  readers+=($!)
  "${PROC_CMD[@]}" >"$tmp/out$i" 2>&1 </dev/null &
  pids+=($!)
done

# Poll (portable to bash 3.2, which has no `wait -n`): the first failure stops the others, which
# would otherwise block forever in a collective waiting for the failed process.
status=0
failed=""
while :; do
  running=0
  for ((i = 0; i < processes; i++)); do
    [[ -z ${finished[i]:-} ]] || continue
    if kill -0 "${pids[i]}" 2>/dev/null; then
      running=$((running + 1))
      continue
    fi
    if wait "${pids[i]}"; then rc=0; else rc=$?; fi
    finished[i]=1
    if [[ $rc -ne 0 && -z $failed ]]; then
      failed="$i"
      status="$rc"
    fi
  done
  [[ $running -gt 0 && -z $failed ]] || break
  sleep 0.5
done

if [[ -n $failed ]]; then
  echo "process $failed exited with status $status; stopping the others" >&2
fi
stop_all
for pid in "${readers[@]}"; do
  wait "$pid" 2>/dev/null || true # the last lines of output
done
if [[ $status -ne 0 ]]; then
  echo "error: process $failed failed (exit status $status)" >&2
  exit "$status"
fi
echo "all $processes processes finished successfully" >&2
