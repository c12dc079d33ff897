"""Error hierarchy: every failure a user can cause maps to one class and a one-line message.

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; tracebacks only
with ``--verbose``. Children also subclass the matching builtin so library users can catch
``OSError``/``ValueError`` as usual.
"""

from __future__ import annotations


class VidrestoreError(Exception):
    """Base of every error vidrestore raises on purpose."""

    exit_code = 1


class UsageError(VidrestoreError, ValueError):
    """An option or argument has a value that is not allowed."""

    exit_code = 2


class SourceError(VidrestoreError, OSError):
    """The input cannot be opened or decoded (not a video, truncated, no video stream)."""

    exit_code = 3


class OutputError(VidrestoreError, OSError):
    """The destination cannot be written (exists, unwritable, same as the input)."""

    exit_code = 4


class WeightsError(VidrestoreError):
    """A model file is missing, cannot be downloaded, or fails its size/hash check."""

    exit_code = 5


class CheckpointError(VidrestoreError, ValueError):
    """A checkpoint's content does not fit the network (wrong keys or shapes, wrong layout)."""

    exit_code = 5


class StreamCopyError(VidrestoreError):
    """A non-video stream cannot be carried into the chosen output container."""

    exit_code = 4
