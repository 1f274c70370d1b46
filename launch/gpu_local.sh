#!/usr/bin/env bash
# One host, all (or the chosen) local GPUs: GPU XLA settings, optional install of the `gpu` extra,
# then the dlogp command with a mesh over the local GPUs. See usage() below.
set -euo pipefail

# shellcheck source=launch/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: launch/gpu_local.sh [options] -- COMMAND [ARGS...]

Runs COMMAND as one process over the local GPUs (one JAX process drives all of them; no
jax.distributed needed on one host). COMMAND: dlogp-score | dlogp-sample | dlogp-train (run as
"$PYTHON -m dlogp_jax.cli.NAME") or -m MODULE, followed by its flags.

Options:
  --mesh SPEC        appended as --config.mesh=SPEC (default fsdp:-1: all GPUs on fsdp; e.g.
                     tensor:8 or fsdp:2,tensor:4 for two 32B models on 8 GPUs)
  --workdir DIR      appended as --config.workdir=DIR (train) or --config.out=DIR (score, sample)
  --gpus LIST        CUDA_VISIBLE_DEVICES=LIST (e.g. 0,1,2,3; default: all GPUs)
  --mem-fraction F   XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.90)
  --install          first run: $PYTHON -m pip install -e "<repo>[gpu]" (CUDA 12 jaxlib)
  --dry-run          print the environment and commands instead of running them
  -h, --help         show this text

Environment set for the command (an exported value of the same variable wins, except XLA_FLAGS,
to which yours are appended, so a flag you give overrides ours):
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.90  JAX preallocates this fraction of each GPU's memory at start
      (JAX's default 0.75 leaves a quarter of the GPU unused by the big KV caches and batches).
  XLA_FLAGS:
    --xla_gpu_enable_latency_hiding_scheduler=true  schedule collectives (FSDP all-gathers,
        reduce-scatters, tensor-parallel all-reduces) asynchronously to overlap with compute.
    --xla_gpu_enable_pipelined_all_gather=true, --xla_gpu_enable_pipelined_reduce_scatter=true,
    --xla_gpu_enable_pipelined_all_reduce=true  the decoder runs its layers in a lax.scan: issue
        the next layer's weight all-gather (and this layer's gradient reduce-scatter) one loop
        iteration early, so FSDP communication hides behind the previous layer's matmuls.
    --xla_gpu_all_gather_combine_threshold_bytes=134217728,
    --xla_gpu_reduce_scatter_combine_threshold_bytes=134217728  combine small per-parameter
        collectives into transfers of up to 128 MiB (fewer, larger NCCL calls).
  JAX_COMPILATION_CACHE_DIR=~/.cache/dlogp_jax/xla  persistent compilation cache: a re-run (or a
      resume after a crash) skips recompiling the decode loop and the train step.
  Every flag exists in current XLA (tests/launch checks that XLA parses them).
EOF
}

# The XLA flags, one per line (kept in sync with the usage text; tests parse them with XLA).
GPU_XLA_FLAGS=(
  --xla_gpu_enable_latency_hiding_scheduler=true
  --xla_gpu_enable_pipelined_all_gather=true
  --xla_gpu_enable_pipelined_reduce_scatter=true
  --xla_gpu_enable_pipelined_all_reduce=true
  --xla_gpu_all_gather_combine_threshold_bytes=134217728
  --xla_gpu_reduce_scatter_combine_threshold_bytes=134217728
)

DRY_RUN=0
mesh="fsdp:-1"
workdir=""
gpus=""
mem_fraction="0.90"
install=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mesh) need_value "$@"; mesh="$2"; shift 2 ;;
    --workdir) need_value "$@"; workdir="$2"; shift 2 ;;
    --gpus) need_value "$@"; gpus="$2"; shift 2 ;;
    --mem-fraction) need_value "$@"; mem_fraction="$2"; shift 2 ;;
    --install) install=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown option '$1' (the command goes after '--')" ;;
  esac
done
[[ $mem_fraction =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]] || die "--mem-fraction must be in (0, 1], got '$mem_fraction'"
[[ -z $gpus || $gpus =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--gpus takes a comma-separated list of GPU indices, got '$gpus'"
resolve_cli "$@"
add_run_flags "$mesh" "$workdir"
PYTHON="${PYTHON:-python3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ $DRY_RUN == 0 ]]; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    count="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
    [[ $count -gt 0 ]] || die "nvidia-smi lists no GPU; check the driver (nvidia-smi) or use launch/cpu_multiprocess.sh"
    echo "found $count GPU(s)${gpus:+, using $gpus}" >&2
  else
    echo "warning: nvidia-smi not found; JAX falls back to CPU if it sees no GPU" >&2
  fi
fi
if [[ $install == 1 ]]; then
  run "$PYTHON" -m pip install -e "${root}[gpu]"
fi

xla_flags="${GPU_XLA_FLAGS[*]}${XLA_FLAGS:+ $XLA_FLAGS}"
cmd=(env
  "XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-$mem_fraction}"
  "XLA_FLAGS=$xla_flags"
  "JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dlogp_jax/xla}")
if [[ -n $gpus ]]; then cmd+=("CUDA_VISIBLE_DEVICES=$gpus"); fi
if [[ -n $CLI_MODULE ]]; then cmd+=("$PYTHON" -m "$CLI_MODULE"); fi
cmd+=(${CLI_ARGS[@]+"${CLI_ARGS[@]}"})
if [[ $DRY_RUN == 1 ]]; then
  run "${cmd[@]}"
else
  note "+ $(quote_cmd "${cmd[@]}")"
  exec "${cmd[@]}"
fi
