"""Memory mappings of a long process: the measurement behind tests/conftest.py's cache release.

XLA:CPU keeps a few memory mappings per compiled program while jax caches it, and a process that
reaches `vm.max_map_count` (65,530 by default) dies inside XLA. This runs a command (by default
one pytest process over tests/model) and samples /proc/PID/maps of it every `--every` seconds,
then prints the peak beside the limit. Linux only.

  python benchmarks/memory_maps.py                          # tests/model, one process
  python benchmarks/memory_maps.py -- dlogp-demo --config.workdir=/tmp/d   # any command
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path


def count_maps(pid: int) -> int:
    """Lines of /proc/PID/maps (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("command", nargs="*", help="the command (after --)")
    args = parser.parse_args()
    command = args.command or [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:xdist",
        "tests/model",
    ]
    limit = int(Path("/proc/sys/vm/max_map_count").read_text())
    start, peak = time.monotonic(), 0
    proc = subprocess.Popen(command)
    while proc.poll() is None:
        now = count_maps(proc.pid)
        peak = max(peak, now)
        print(f"{time.monotonic() - start:7.0f} s  {now:6d} mappings", file=sys.stderr, flush=True)
        time.sleep(args.every)
    print(
        f"peak {peak} mappings of vm.max_map_count {limit} ({peak / limit:.1%}); rc {proc.returncode}"
    )
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
