"""``python -m benchmarks [NAME ...]`` (``make bench``): run the benchmarks, each in its own
process, in the order of :data:`BENCHMARKS` (or those named); ``--list`` says what each does.

Each writes its figures to stdout (and, where it says so, to ``benchmarks/results/``); see
``benchmarks/README.md`` for what is measured, against which baseline, and on what hardware.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS: dict[str, tuple[list[str], str]] = {
    "bench_faces": ([], "landmark jitter, accuracy on known paths, detection+tracking speed"),
    "bench_alignment": ([], "alignment on real clips and ground-truth clips, with baselines"),
    "bench_io": ([], "pass-through speed and memory against the ffmpeg program"),
    "bench_restore": (["overhead"], "pipeline cost over the network alone"),
    "bench_batch": (["--no-ray"], "batch machinery cost over a single pass"),
    "bench_upscale": (["cost", "--budget", "30"],
                      "seconds per frame of each background choice at 480p and 1080p, x2"),
    "bench_codeformer": (["--device", "cpu", "--batch-sizes", "1,2", "--dtypes", "float32"],
                         "network speed and memory per dtype and batch size"),
    "bench_runtime": ([], "the CPU runtimes against eager PyTorch: speed, differences, codes"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], metavar="NAME",
                        help=f"which to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--list", action="store_true", help="say what each measures and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, what) in BENCHMARKS.items():
            print(f"{name:18} {what}")
        return 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    for name in args.names or list(BENCHMARKS):
        extra, what = BENCHMARKS[name]
        print(f"== {name}: {what}", flush=True)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *extra], cwd=ROOT,
                              env=env, check=False)
        print(f"== {name}: exit {done.returncode} after {time.perf_counter() - t0:.0f} s",
              flush=True)
        if done.returncode:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
