"""The upscaled background inside ComfyUI: the host's ``UPSCALE_MODEL`` and an upscaler whose
work keeps the progress bar moving and gives way to Cancel.

ComfyUI's Load Upscale Model hands out a spandrel ``ImageModelDescriptor`` that other nodes of
the graph (Upscale Image (using Model)) use too, at float32 and under ComfyUI's own device
management. :func:`host_background` therefore wraps a private copy of it
(:meth:`BackgroundDescriptor.of` moves and casts the model it is given), so the host's model is
never moved, cast or shared between threads.

:class:`HostUpscaler` is the library's :class:`~vidrestore.upscale.Upscaler` with every model
call on its one background thread: the backgrounds started ahead (made while the faces are
restored, as in the library) and also those the restorer needs at once and the faces it
upsamples. The node's thread only waits, running the node's step every :data:`POLL_S` s, so
Cancel is honoured and the bar redrawn even when one tile of a large model takes long on the
CPU; every model call (a tile) counts on the bar.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidrestore.upscale import BackgroundDescriptor, Upscaler
from vidrestore.upscale.model import check_model

INPUT = "upscale_model"
"""The node input that takes ComfyUI's ``UPSCALE_MODEL``; also what ``RestoreOptions.background``
says while one is connected."""
POLL_S = 0.1
"""How often the node's step runs while it waits for a background (Cancel, the bar)."""


def host_background(model: Any, device: torch.device | str) -> BackgroundDescriptor:
    """A :class:`BackgroundDescriptor` of a copy of the host's upscale model, on ``device``.

    Raises :class:`~vidrestore.errors.CheckpointError` (one line naming ``upscale_model``) for a
    model that is no RGB super-resolution model (a 1x restoration model, a face restorer, an
    inpainting model)."""
    check_model(model, INPUT)
    # ComfyUI's loader adds a model patcher (its device management) that refers back to the
    # network: the copy goes without it.
    memo: dict[int, Any] = {}
    patcher = getattr(model, "patcher", None)
    if patcher is not None:
        memo[id(patcher)] = None
    own = copy.deepcopy(model, memo)
    return BackgroundDescriptor.of(own, source=INPUT, device=device)


class Stopped(Exception):
    """The run this background was made for has ended (Cancel or an error)."""


@dataclasses.dataclass(frozen=True, eq=False)
class _Counted(BackgroundDescriptor):
    """A background model whose every call (one tile, or one upsampled face) is reported to
    its :class:`HostUpscaler`."""

    owner: Any = None

    def run(self, x: Tensor) -> Tensor:
        self.owner.before_call()
        y = super().run(x)
        self.owner.after_call()
        return y


class HostUpscaler(Upscaler):
    """An :class:`Upscaler` for a node: the model runs on a background thread only, its calls
    are counted for the progress bar (:meth:`work`), the node's step runs while the node waits
    for it, and the thread's work stops when the upscaler is closed (after Cancel or an error
    the tiles not yet begun are not computed). Between node calls (chunks) no thread is kept.
    Used by one node call at a time (:meth:`begin`, :meth:`end`)."""

    def __init__(self, scale: int = 1, model: BackgroundDescriptor | None = None, *,
                 tile: int = 0, face_upsample: bool = False) -> None:
        self.on_step: Callable[[], None] | None = None
        self.calls = 0  # model calls finished (tiles, upsampled faces)
        self.frames = 0  # backgrounds finished
        self._settled = 0  # calls when the last background was finished
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._node_thread: int | None = None
        self._base = (0, 0, 0)  # calls, frames, frames expected: see begin()
        counted = None
        if model is not None:
            counted = _Counted(**{f.name: getattr(model, f.name)
                                  for f in dataclasses.fields(model)}, owner=self)
        super().__init__(scale, counted, tile=tile, face_upsample=face_upsample)

    # -- the node's view ------------------------------------------------------------------------
    def begin(self, frames: int, step: Callable[[], None] | None) -> None:
        """A node call that will need the backgrounds of ``frames`` frames starts; ``step``
        (Cancel, the bar) is run from the node's thread while background work goes on."""
        self.on_step = step
        self._node_thread = threading.get_ident()
        self._base = (self.calls, self.frames, frames)

    def end(self) -> None:
        """The node call is over: its thread goes until the next call needs one (a chunked
        video's restorer waits between executions without it)."""
        self.on_step = None
        self._node_thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)  # work still queued is done first
            self._pool = None

    def work(self) -> tuple[int, int]:
        """``(done, known)`` model calls of this node call, for the bar: the calls made, and
        with them an estimate of those still to come (the backgrounds left times the calls a
        background has taken so far, one before the first). ``(0, 0)`` without a model
        (Lanczos is fast)."""
        if self.model is None:
            return 0, 0
        calls0, frames0, expected = self._base
        with self._lock:
            calls, frames, settled = self.calls, self.frames, self._settled
        left = max(expected - (frames - frames0), 0)
        per_frame = settled / frames if frames else 1.0
        return calls - calls0, max(calls, settled + math.ceil(left * per_frame)) - calls0

    # -- counting ------------------------------------------------------------------------------
    def before_call(self) -> None:
        if self._stop.is_set():
            raise Stopped("the node run this background was for has ended")

    def after_call(self) -> None:
        with self._lock:
            self.calls += 1

    def canvases(self, pictures: Sequence[np.ndarray], grays: Sequence[bool]) -> list[np.ndarray]:
        self.before_call()
        out = super().canvases(pictures, grays)
        with self._lock:
            self.frames += len(pictures)
            self._settled = self.calls
        return out

    # -- the model runs on the thread, the node's thread waits and watches ---------------------
    def _on_node_thread(self) -> bool:
        return self.model is not None and threading.get_ident() == self._node_thread

    def _wait(self, future: Future[Any]) -> Any:
        """The result, running the node's step every :data:`POLL_S` s meanwhile (Cancel, and
        the bar with the calls done) and once when it is there."""
        while True:
            try:
                result = future.result(timeout=POLL_S)
            except FutureTimeout:
                if self.on_step is not None:
                    self.on_step()
                continue
            if self.on_step is not None and self.model is not None:
                self.on_step()
            return result

    def canvas(self, pixels: np.ndarray, *, gray: bool = False) -> np.ndarray:
        if self._on_node_thread():  # a background not started ahead: made there too
            return self._wait(self._submit(super().canvas, pixels, gray=gray))
        return super().canvas(pixels, gray=gray)

    def upsample(self, face: np.ndarray) -> np.ndarray:
        if self._on_node_thread():
            return self._wait(self._submit(super().upsample, face))
        return super().upsample(face)

    def close(self) -> None:
        """Drop the work started ahead and let the thread go: a tile in progress finishes, the
        rest of its background is not computed (Cancel does not wait for it)."""
        self._stop.set()
        self.forget()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.end()

