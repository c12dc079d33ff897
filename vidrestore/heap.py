"""A steady heap for long runs: glibc's allocator set up so memory follows the frames in use.

By default glibc gives each thread that allocates its own arena (up to eight per core) and
raises its mmap threshold each time a large block is freed, so frame-sized buffers made on one
thread (decoder, background, encoder) and freed on another end up scattered across arenas that
keep what they held. Peak memory then wanders from run to run and creeps up in the first
minutes (measured: 1053 MiB after 10 s and 1226 MiB after 200 s for the same 2x run).

Two arenas bound that. Frame buffers stay inside them (a fixed 32 MiB mmap threshold, glibc's
own ceiling for its moving one: every frame up to 4K RGB), and a freed frame's memory is kept
for the next one (an 8 MiB trim threshold) instead of being given back and faulted in again
page by page: handing every frame to the kernel and back cost about 10 ms of system time per
frame at 2x on 854x480 (a 1.7x slower run). The command line calls :func:`steady_heap` once at
start; a host process (ComfyUI) keeps its own allocator settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

#: ``mallopt`` parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 8 << 20


def steady_heap() -> bool:
    """Apply the settings above on glibc; whether they were applied (elsewhere: no-op)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    mallopt = ctypes.CDLL(name).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((_M_ARENA_MAX, ARENAS), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all([bool(mallopt(key, value)) for key, value in settings])
