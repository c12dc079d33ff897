"""The command line's OpenMP setting: torch's idle workers sleep instead of spinning on a core."""

from __future__ import annotations

import os
import subprocess
import sys

# A parallel region, then a wait (as for the next frame), fifty times: the CPU the process uses
# while it waits is what spinning workers take from the decoder, detector and encoder threads.
PROGRAM = """
import sys, time
from vidrestore.openmp import passive_waits
applied = passive_waits() if sys.argv[1] == "set" else False
import torch
torch.set_num_threads(2)
x = torch.ones(2, 3, 512, 512)
c0, t0 = time.process_time(), time.perf_counter()
for _ in range(50):
    x.mul_(1.0)
    time.sleep(0.002)
print(applied, (time.process_time() - c0) / (time.perf_counter() - t0))
"""


def _run(mode: str, **env: str) -> tuple[str, float]:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True,
                          timeout=120, check=True, env={**clean, **env})
    applied, cores = done.stdout.split()
    return applied, float(cores)


def test_idle_workers_sleep() -> None:
    applied, cores = _run("set")
    assert applied == "True"
    assert cores < 0.4, cores


def test_workers_spin_without_it() -> None:
    """The control: what the setting saves (a core busy while the process waits)."""
    _, cores = _run("leave")
    assert cores > 0.6, cores


def test_a_users_own_policy_is_kept() -> None:
    applied, cores = _run("set", OMP_WAIT_POLICY="ACTIVE")
    assert applied == "False"
    assert cores > 0.6, cores


def test_the_command_line_sets_it() -> None:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = ("import os, sys; sys.argv = ['vidrestore', '--version']\n"
            "from vidrestore.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True, env=clean)
    assert done.stdout.split()[-1] == "PASSIVE"
