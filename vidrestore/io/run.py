"""One pass over a video with its outputs: the skeleton every file-to-file command shares.

``restore_video`` and ``track_video`` both read a video, write a main output and side outputs
(a report, a comparison, a contact sheet) and show progress. :class:`VideoPass` holds that
skeleton once: the reader, writers entered in order, side outputs staged and moved into place
only after the pass succeeded and after the main output (none of them if anything fails), a
progress bar (none when stderr is not a terminal) or a caller's progress callback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from ..concurrency import BackgroundSink
from .orientation import quarter_turns
from .paths import Staged, discard_on_error
from .probe import VideoInfo
from .reader import VideoReader
from .timecode import TimeValue
from .writer import VideoWriter, WriterOptions

ProgressCallback = Callable[[int, "int | None"], None]
T = TypeVar("T")


class VideoPass:
    """``with VideoPass(src, ...) as run:`` — ``run.reader``, ``run.info``, ``run.turns``
    (quarter turns that make the stored frames upright), :meth:`writer`, :meth:`sink`,
    :meth:`stage`, :meth:`step`. ``lazy_rgb``: the reader's (for a pass that needs the whole
    RGB picture of few frames)."""

    def __init__(self, src: str | os.PathLike[str], *, start: TimeValue | None = None,
                 end: TimeValue | None = None, fps: str | float | None = None,
                 desc: str = "", progress: bool = True,
                 progress_callback: ProgressCallback | None = None,
                 lazy_rgb: bool = False) -> None:
        self.src = src
        self.lazy_rgb = lazy_rgb
        self.start, self.end, self.fps = start, end, fps
        self.desc = desc
        self.progress = progress
        self.callback = progress_callback
        self.staged: list[Staged] = []
        self.done = 0
        self._stack = contextlib.ExitStack()
        self._bar: Any = None

    def __enter__(self) -> VideoPass:
        stack = self._stack.__enter__()
        try:
            stack.push(discard_on_error(self.staged))
            self.reader = stack.enter_context(
                VideoReader(self.src, start=self.start, end=self.end, fps=self.fps,
                            lazy_rgb=self.lazy_rgb))
        except BaseException:
            self._stack.__exit__(None, None, None)
            raise
        self.info: VideoInfo = self.reader.info
        self.turns = quarter_turns(self.info.rotation, self.info.path)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        suppress = self._stack.__exit__(exc_type, exc, tb)
        if exc_type is None:
            for target in self.staged:
                target.commit()
        return bool(suppress)

    def writer(self, dst: str | os.PathLike[str], *, options: WriterOptions,
               source: VideoInfo | None = None, side: bool = False) -> VideoWriter:
        """A writer for ``dst`` over this pass's range (``source``: the facts it writes, by
        default the input's). The main output is moved into place when the pass ends; a
        ``side`` output after it, with the staged ones."""
        out = self._stack.enter_context(VideoWriter(
            dst, source=source or self.info, options=options, start=self.start, end=self.end,
            commit=not side))
        if side:
            self.staged.append(out)
        return out

    def sink(self, put: Callable[[T], None], name: str) -> BackgroundSink[T]:
        """``put`` on a background thread (encoding overlaps the work)."""
        return self._stack.enter_context(BackgroundSink(put, size=4, name=name))

    def stage(self, target: Staged) -> None:
        """A side output to move into place after the main one (discarded if the pass fails).
        Staged at the end of the work, before the writers close: a report that cannot be
        written leaves no video behind either."""
        self.staged.append(target)

    def step(self, **postfix: object) -> None:
        """One frame done: the bar moves (``postfix`` shown beside it) or the callback runs."""
        if self._bar is None:
            from tqdm import tqdm

            self._bar = self._stack.enter_context(tqdm(
                total=self.reader.expected_frames, unit="frame", desc=self.desc,
                # None: no bar when stderr is not a terminal (a log file, a pipe)
                disable=None if self.progress and self.callback is None else True,
                dynamic_ncols=True))
        self.done += 1
        self._bar.update(1)
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        if self.callback is not None:
            self.callback(self.done, self.reader.expected_frames)

