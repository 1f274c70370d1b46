# shellcheck shell=bash
# Shared helpers of the launch/*.sh scripts (sourced, not run). Bash 3.2+ (macOS) compatible.
#
# Globals the scripts set: DRY_RUN (0/1).
# resolve_cli fills: CLI_MODULE (e.g. dlogp_jax.cli.train, empty for other commands),
# CLI_ARGS (the remaining arguments) and OUT_FLAG (--config.workdir or --config.out).

die() {
  echo "error: $*" >&2
  exit 2
}

# Prints its arguments as one copy-pasteable shell line (words quoted only where needed).
quote_cmd() {
  local out="" arg safe='^[A-Za-z0-9_./:=,@%+-]+$'
  for arg in "$@"; do
    if [[ -n $arg && $arg =~ $safe ]]; then
      out+="$arg "
    else
      out+="'${arg//\'/\'\\\'\'}' "
    fi
  done
  printf '%s\n' "${out% }"
}

# Runs a command, or with DRY_RUN=1 only prints it. The command line is echoed with "+ " first:
# to stdout in a dry run (that is the output), to stderr otherwise (a log of what ran).
run() {
  note "+ $(quote_cmd "$@")"
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    return 0
  fi
  "$@"
}

# A line for the reader: stdout in a dry run, stderr otherwise.
note() {
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    printf '%s\n' "$*"
  else
    printf '%s\n' "$*" >&2
  fi
}

# Maps `dlogp-NAME ARGS...` (NAME: score, sample, train) or `-m dlogp_jax.cli.NAME ARGS...` to the
# module name; anything else is kept as a plain command (CLI_MODULE empty).
resolve_cli() {
  [[ $# -gt 0 ]] || die "no command after '--' (e.g. -- dlogp-train --config=configs/dapo.py:tiny)"
  CLI_MODULE=""
  case "$1" in
    dlogp-score | dlogp-sample | dlogp-train)
      CLI_MODULE="dlogp_jax.cli.${1#dlogp-}"
      shift
      ;;
    -m)
      [[ $# -ge 2 ]] || die "'-m' needs a module name"
      CLI_MODULE="$2"
      shift 2
      ;;
  esac
  CLI_ARGS=("$@")
  case "$CLI_MODULE" in
    dlogp_jax.cli.train) OUT_FLAG="--config.workdir" ;;
    dlogp_jax.cli.score | dlogp_jax.cli.sample) OUT_FLAG="--config.out" ;;
    *) OUT_FLAG="" ;;
  esac
}

# Appends --config.mesh / the work-directory flag to CLI_ARGS.
add_run_flags() {
  local mesh="$1" workdir="$2"
  if [[ -n $mesh ]]; then
    [[ -n $CLI_MODULE ]] || die "--mesh needs a dlogp command (dlogp-score|dlogp-sample|dlogp-train)"
    CLI_ARGS+=("--config.mesh=$mesh")
  fi
  if [[ -n $workdir ]]; then
    [[ -n $OUT_FLAG ]] || die "--workdir needs a dlogp command (dlogp-score|dlogp-sample|dlogp-train)"
    CLI_ARGS+=("$OUT_FLAG=$workdir")
  fi
}

# The value of option "$1" given as "$2" (for `--opt VALUE`); dies when it is missing.
need_value() {
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || die "option $1 needs a value"
}
