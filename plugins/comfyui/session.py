"""Videos that reach a node in chunks, one graph execution per chunk.

The video helpers' "meta batch" feeds a long video a few hundred frames at a time and queues the
whole graph again for each chunk. ComfyUI keeps one instance of each node class per graph node
between executions, so a node keeps the video it is in the middle of in a :class:`SessionSlot`
on ``self``: the tracker, the per-track temporal state and the next frame number carry over to
the next chunk instead of starting again.

When a batch belongs to a longer video is decided by :func:`plan_chunk`:

* a ``meta_batch`` input (the video helpers' Meta Batch Manager) marks chunked work; its
  ``requeue`` count (0 on the first chunk) starts a new video, and its ``total_frames`` ends it;
* a non-empty ``session`` text marks chunked work without a manager: a new video starts when the
  text, the settings or the frame size change, or after ``total_frames`` frames (if given);
* neither: every execution is a whole video on its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

S = TypeVar("S")
R = TypeVar("R")
log = logging.getLogger("vidrestore.comfyui")


@dataclass(frozen=True)
class ChunkPlan:
    """How one execution's batch relates to the video it belongs to."""

    key: str | None  # None: the batch is a whole video
    restart: bool = False  # a new video starts with this batch
    total: int | None = None  # frames of the whole video, when known


def _requeue_count(meta_batch: Any, prompt: Mapping[str, Any] | None) -> int | None:
    """Which chunk this is (0 = first), from the count the video helpers keep in the prompt."""
    uid = getattr(meta_batch, "unique_id", None)
    if prompt is None or uid is None:
        return None
    try:
        return int(prompt[str(uid)]["inputs"].get("requeue", 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _finite_total(value: Any) -> int | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return int(v) if math.isfinite(v) and v > 0 else None


def plan_chunk(session: str = "", total_frames: int = 0, meta_batch: Any = None,
               prompt: Mapping[str, Any] | None = None) -> ChunkPlan:
    """The :class:`ChunkPlan` of an execution, from the node's session inputs."""
    total = total_frames if total_frames > 0 else None
    key = session.strip()
    if meta_batch is not None:
        if total is None:
            total = _finite_total(getattr(meta_batch, "total_frames", None))
        return ChunkPlan(key or "meta batch", _requeue_count(meta_batch, prompt) == 0, total)
    if key:
        return ChunkPlan(key, False, total)
    return ChunkPlan(None)


@dataclass(eq=False)
class VideoSession(Generic[S]):
    """State of the video a node is in the middle of."""

    key: str
    settings: Any  # compared with == to the next batch's settings
    state: S
    depth: np.dtype
    size: tuple[int, int]  # (height, width)
    total: int | None
    next_index: int = 0

    def is_last(self, frames: int) -> bool:
        """Whether a batch of ``frames`` frames completes the video."""
        return self.total is not None and self.next_index + frames >= self.total


class SessionSlot(Generic[S]):
    """The one chunked video a node instance is working on (or none).

    ``close(state)``, when given, is called once for every state let go of: a whole video's
    after its batch, a session's when it ends, is replaced or dropped (it stops the threads a
    state may hold).
    """

    def __init__(self, close: Callable[[S], None] | None = None) -> None:
        self.current: VideoSession[S] | None = None
        self._close = close

    def get(self, plan: ChunkPlan, settings: Any, size: tuple[int, int],
            start: Callable[[], tuple[S, np.dtype]]) -> VideoSession[S]:
        """The session to continue with this batch, or a new one made by ``start()``."""
        cur = self.current
        reason = None
        if cur is None:
            reason = "first chunk"
        elif plan.restart:
            reason = "the batch manager started a new video"
        elif cur.key != plan.key:
            reason = f"session changed to {plan.key!r}"
        elif cur.settings != settings:
            reason = "settings changed"
        elif cur.size != size:
            reason = f"frame size changed to {size[1]}x{size[0]}"
        if reason is not None:
            if cur is not None:
                log.info("vidrestore: new video (%s) after %d frames", reason, cur.next_index)
                self.drop()
            state, depth = start()
            cur = VideoSession(plan.key or "", settings, state, depth, size, plan.total)
            self.current = cur
        assert cur is not None  # without a current session there is always a reason
        if reason is None and plan.total is not None:
            cur.total = plan.total
        return cur

    def run(self, plan: ChunkPlan, settings: Any, size: tuple[int, int], frames: int,
            start: Callable[[], tuple[S, np.dtype]],
            step: Callable[[S, np.dtype, int, bool], R]) -> R:
        """One batch of ``frames``: a whole video, or the next chunk of the planned session.

        ``step(state, depth, first_index, final)`` does the work. An error or an interrupt
        drops the session, whose state is then half-way.
        """
        if plan.key is None:  # a whole video
            self.drop()
            state, depth = start()
            try:
                return step(state, depth, 0, True)
            finally:
                self._release(state)
        sess = self.get(plan, settings, size, start)
        try:
            result = step(sess.state, sess.depth, sess.next_index, sess.is_last(frames))
        except BaseException:
            self.drop()
            raise
        self.advance(frames)
        return result

    def advance(self, frames: int) -> None:
        """Record a finished batch; a complete video is let go."""
        cur = self.current
        if cur is None:
            return
        cur.next_index += frames
        if cur.total is not None and cur.next_index >= cur.total:
            self.drop()

    def drop(self) -> None:
        """Forget the video (after an error or an interrupt: its state is incomplete)."""
        cur, self.current = self.current, None
        if cur is not None:
            self._release(cur.state)

    def _release(self, state: S) -> None:
        if self._close is not None:
            try:
                self._close(state)
            except Exception:  # letting go must not hide the error that caused it
                log.exception("vidrestore: closing the video's state failed")
