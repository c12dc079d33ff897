"""Streaming composition of the face stage: detect, cut, track, smooth; frames out in order.

``FaceStream`` takes frames one at a time and hands back frames whose faces are final. Offline
it holds each frame back by :attr:`FaceStream.lookahead` frames so landmarks are smoothed with
what follows and short gaps are bridged; in causal mode every frame comes back from the
``push`` that brought it. Memory is bounded by the look-ahead, never by the video's length.
Gaps up to ``max_gap`` frames are interpolated when the look-ahead is at least that long.

Small faces: every frame is searched at the detector's working size. When that size cannot see
faces down to ``min_face`` (a frame much larger than ``detect_size``), the whole frame is also
searched in tiles at a finer scale on the first frame, after each cut and every ``scan_every``
frames, and each face that is small at the working size is searched every frame in a small
crop around its predicted place at full resolution. A small face that appears between scans
is picked up at the next one.

Fewer detections (``detect_every`` N > 1): while every face is followed by its registration,
the detector runs on every Nth frame only and the frames between are registered from the
smoother's prediction (the registration alone measures their pose; the detections around them
still bound it, through the smoother's offset state and the drift guard). A face the
registration loses, a scene cut or a face the detector missed last time bring the detector back
on the next frame.

Frames stored sideways (a phone video's display rotation, :mod:`vidrestore.io.orientation`):
with ``turns`` faces are found, tracked and given in the upright picture
``np.rot90(frame.analysis, turns)``; the frames themselves come back as they were pushed.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..io.frame import Frame
from ..io.orientation import upright
from .cuts import CutDetector, HeldFrames
from .detectors import (
    MIN_DETECT_PX,
    FaceDetector,
    detect_regions,
    detect_tiles,
    dither_shift,
    nms,
    working_scale,
)
from .options import FaceOptions
from .records import Detection, FrameFaces
from .smooth import SmootherTuning
from .track import Tracker


class FaceStream:
    """Faces of a video, frame by frame, with stable track IDs and smoothed landmarks.

    State (tracks, smoothers, the previous frame for cut detection) persists across calls;
    use one stream per video. ``turns``: counter-clockwise quarter turns that make the pushed
    frames upright (``quarter_turns(info.rotation)``); face coordinates are in that upright
    picture. Set it before the first frame.
    """

    def __init__(
        self,
        detector: FaceDetector,
        options: FaceOptions | None = None,
        tuning: SmootherTuning | None = None,
        *,
        turns: int = 0,
    ) -> None:
        self.detector = detector
        self.options = options or FaceOptions()
        self.turns = turns % 4
        self._tracker = Tracker(self.options, tuning)
        self._cuts = CutDetector(self.options.cut_threshold)
        self._held = HeldFrames()
        self._batch = 1 if self.options.causal else self.options.batch
        self._hold = 0 if self.options.causal else self.options.lookahead
        self._pending: list[Frame] = []
        self._ready: deque[tuple[int, Frame, bool, bool]] = deque()
        self._count = 0
        self._last_scan: int | None = None
        self._last_detected: int | None = None
        self._last_index: int | None = None

    @property
    def lookahead(self) -> int:
        """Most frames a pushed frame can be held back before ``push`` returns it."""
        return self._hold + self._batch - 1

    def push(self, frame: Frame) -> list[FrameFaces]:
        """Add the next frame; returns the frames (in order) whose faces are now final."""
        if self._last_index is not None and frame.index <= self._last_index:
            raise ValueError(
                f"frames must arrive in order: frame {frame.index} after {self._last_index}"
            )
        self._last_index = frame.index
        self._pending.append(frame)
        if len(self._pending) >= self._batch:
            self._process()
        return self._emit(self._hold)

    def flush(self) -> list[FrameFaces]:
        """End of the video: process and return everything still held."""
        if self._pending:
            self._process()
        self._tracker.finish()
        return self._emit(0)

    # -- internals -------------------------------------------------------------------------

    def _process(self) -> None:
        frames, self._pending = self._pending, []
        first = self._count
        # upright copies for this batch only: the frames are held as they came. Faces are
        # found and followed in the reader's cheaper conversion (Frame.analysis), where it
        # gave one: the exact one is made only where a face is restored.
        pictures = [upright(f.analysis, self.turns) for f in frames]
        cuts = [self._cuts.update(p) for p in pictures]
        held = [self._held.update(p, cut) for p, cut in zip(pictures, cuts, strict=True)]
        wanted, last = [], self._last_detected
        for k, cut in enumerate(cuts):
            if self._detect_due(first + k, cut, last, held[k]):
                wanted.append(k)
                last = first + k
        shifts = [dither_shift(first + k) for k in wanted] if self.options.dither else None
        coarse = dict(zip(wanted, self.detector.detect([pictures[k] for k in wanted],
                                                       shifts=shifts) if wanted else [],
                          strict=True))
        for k, (frame, pixels, cut) in enumerate(zip(frames, pictures, cuts, strict=True)):
            n = first + k
            if k not in coarse:
                self._tracker.coast(n, pixels, held[k])
            else:
                found = coarse[k] + self._small_faces(n, pixels, cut)
                kept = [d for d in nms(found, self.detector.nms_threshold)
                        if d.width >= self.options.min_face]
                self._tracker.update(n, kept, pixels, cut, held[k])
                self._last_detected = n
            self._ready.append((n, frame, cut, held[k]))
        self._count += len(frames)

    def _detect_due(self, n: int, cut: bool, last: int | None, held: bool = False) -> bool:
        """Whether frame ``n`` is detected (``--detect-every``; ``last``: the latest frame
        detected): always at 1; otherwise every Nth frame that is not ``held`` (a repeated
        picture), at a cut, and whenever a face could not be followed by its registration
        (decided from what the tracks knew when the detector's batch started)."""
        every = self.options.detect_every
        return (every <= 1 or cut or last is None or (n - last >= every and not held)
                or not self._tracker.followable)

    def _small_faces(self, n: int, pixels: np.ndarray, cut: bool) -> list[Detection]:
        """Detections of faces too small for the working size (tiled scans, tracked crops)."""
        h, w = pixels.shape[:2]
        scale = working_scale(w, h, self.detector.detect_size)
        if scale >= 1.0 or self.options.min_face * scale >= MIN_DETECT_PX:
            return []
        found: list[Detection] = []
        every = self.options.scan_every
        due = self._last_scan is None or cut or (every > 0 and n - self._last_scan >= every)
        if every > 0 and due:
            fine = min(1.0, MIN_DETECT_PX / self.options.min_face)
            # a face the working size misses is below MIN_DETECT_PX / scale frame pixels
            overlap = int(np.ceil(1.5 * MIN_DETECT_PX / scale * fine))
            found += detect_tiles(self.detector, pixels, fine, overlap)
            self._last_scan = n
        small = [b for b in self._tracker.predicted_boxes()
                 if (b[2] - b[0]) * scale < 2 * MIN_DETECT_PX]
        for dets in detect_regions(self.detector, pixels, small):
            found += dets
        return found

    def _emit(self, hold: int) -> list[FrameFaces]:
        out = []
        final = not self.options.causal
        while len(self._ready) > hold:
            n, frame, cut, held = self._ready.popleft()
            faces = self._tracker.faces(n, frame.index, final=final)
            out.append(FrameFaces(frame, faces, cut, held))
            self._tracker.forget_before(n + 1)
        return out
