"""OpenMP's idle threads set to sleep rather than spin, for the command line.

Between two parallel regions, libgomp's workers (torch's CPU thread pool) spin on a core for a
while by default, waiting for the next region. Around a network on the GPU, or the small tensor
steps around the stand-in network, those spins take the cores that the detector, the paste-back
and x264's threads need: on 2 cores the ceiling run went from 40-47 to 53-55 fps with passive
waits, and CodeFormer on the CPU kept its speed (4.4 against 4.5 s a face, within the noise).

libgomp reads ``OMP_WAIT_POLICY`` once, when it is loaded with torch; so :func:`passive_waits` is
called by the command line before anything imports torch, and leaves a user's own setting alone.
A host process (ComfyUI) has loaded torch already and keeps its own.
"""

from __future__ import annotations

import os
import sys

POLICY = "OMP_WAIT_POLICY"


def passive_waits() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless it is set or torch is loaded; whether it was."""
    if POLICY in os.environ or "torch" in sys.modules:
        return False
    os.environ[POLICY] = "PASSIVE"
    return True
