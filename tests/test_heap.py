"""The command line's heap settings give frame-sized buffers back when they are freed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the heap settings apply to glibc only")

# Frames made on worker threads (as the decoder, background and encoder threads do), a few
# held at a time, then all dropped: what the process still holds afterwards is what a long run
# would keep adding to its peak.
PROGRAM = """
import sys, threading
import numpy as np
from vidrestore.heap import steady_heap
if sys.argv[1] == "steady":
    assert steady_heap()
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) >> 10
base = rss()
held = []
def make():
    for _ in range(40):
        held.append(np.ones((720, 1280, 3), np.uint8))
        if len(held) > 4:
            held.pop(0)
for _ in range(3):
    t = threading.Thread(target=make)
    t.start()
    t.join()
held.clear()
print(rss() - base)
"""


def _kept(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True,
                          timeout=120, check=True)
    return int(done.stdout.split()[-1])


def test_freed_frames_go_back_to_the_system() -> None:
    assert _kept("steady") <= 2  # MiB
