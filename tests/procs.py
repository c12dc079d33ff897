"""Helpers for tests that start and signal real processes."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """``preexec_fn`` giving the child Ctrl-C's default action: a shell's background job (or
    ``nohup``) starts with SIGINT ignored, which children inherit and Python then respects."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
