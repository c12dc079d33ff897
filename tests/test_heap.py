"""The command line's heap settings reuse a freed frame's memory for the next frame."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the heap settings apply to glibc only")

# 2x frames of 854x480 made and dropped on worker threads, one after another (as the decoder,
# background and encoder threads do): the minor page faults per frame tell whether a new frame
# lands in memory the last one gave up, or is handed out by the kernel page by page again.
PROGRAM = """
import resource, sys, threading
import numpy as np
from vidrestore import heap
assert heap.steady_heap()
if len(sys.argv) > 1:  # the earlier setting: every frame mapped on its own
    heap.MMAP_THRESHOLD = 1 << 20
    assert heap.steady_heap()
def make():
    for _ in range(10):
        frame = np.ones((960, 1708, 3), np.uint8)
        del frame
make()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    t = threading.Thread(target=make)
    t.start()
    t.join()
pages = 960 * 1708 * 3 // 4096
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50 / pages)
"""


def _faults_per_page(*args: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True,
                          text=True, timeout=120, check=True)
    return float(done.stdout.split()[-1])


def test_a_new_frame_reuses_the_memory_of_a_freed_one() -> None:
    assert _faults_per_page() < 0.05


def test_frames_mapped_on_their_own_fault_many_more_pages_in() -> None:
    # the control: what the reuse saves, and why the settings above were changed. How many
    # pages a fresh mapping faults in depends on the kernel (fault-around, transparent huge
    # pages), so the control compares the two settings on this machine rather than a fixed count.
    mapped = _faults_per_page("mapped")
    reused = _faults_per_page()
    assert mapped > 0.1
    assert reused < mapped / 4
