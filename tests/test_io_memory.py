"""Streaming: the peak memory of a pass-through does not grow with the clip's length."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from iomedia import need_ffmpeg, run

TESTS = Path(__file__).resolve().parent
CHILD = """
import sys
from pathlib import Path
from iomedia import passthrough
passthrough(Path(sys.argv[1]), Path(sys.argv[2]), preset="ultrafast")
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) * 1024)
"""


def _peak_rss(src: Path, dst: Path) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = subprocess.run([sys.executable, "-c", CHILD, str(src), str(dst)], env=env,
                          capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_is_independent_of_length(tmp_path: Path) -> None:
    need_ffmpeg()
    peaks = []
    for seconds in (2, 20):  # 50 and 500 frames of 320x240 with audio
        src = tmp_path / f"{seconds}s.mp4"
        run("ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds}",
            "-f", "lavfi", "-i", f"sine=d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", str(src))
        peaks.append(_peak_rss(src, tmp_path / f"out_{seconds}.mp4"))
    # keeping every frame would add 450 x 230 kB = 100 MB; allow allocator noise only
    assert peaks[1] - peaks[0] < 20 * 2**20, [p / 2**20 for p in peaks]
