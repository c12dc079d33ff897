"""Batched CodeFormer over aligned faces, with the temporal code choice per track.

The engine sees only aligned 512x512 faces with their track id and frame index, never whole
frames. Faces arrive frame by frame; they are encoded in batches gathered across frames and
tracks, their codes are chosen by the temporal mode once the neighbours they need are encoded,
and they are decoded in batches. Memory is bounded by the batch size plus the temporal window.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from ..errors import UsageError
from ..models.codeformer import CodeFormer
from ..models.descriptor import RestorerDescriptor
from .options import RestoreOptions
from .temporal import RecurrentFilter, window_average

T = TypeVar("T")


def _staged(value: T | None) -> T:
    """A face's result of an earlier stage, which the engine's order guarantees is there."""
    if value is None:
        raise RuntimeError("a face reached a network stage before the stage it depends on")
    return value


def as_descriptor(model: RestorerDescriptor | CodeFormer, *, device: torch.device | None = None,
                  dtype: torch.dtype | None = None) -> RestorerDescriptor:
    """``model`` as a descriptor: a bare network is described, to be fed in ``device`` and
    ``dtype`` (default: its own); a descriptor is taken as it is and must agree with them."""
    if not isinstance(model, RestorerDescriptor):
        desc = RestorerDescriptor.of(model.eval())
        return dataclasses.replace(desc, device=device or desc.device, dtype=dtype or desc.dtype)
    if (device is not None and device != model.device) or (
            dtype is not None and dtype != model.dtype):
        raise UsageError(f"the loaded network runs on {model.device} in {model.dtype}, "
                         f"not {device or model.device} in {dtype or model.dtype}")
    return model


@dataclass(eq=False)
class FaceItem:
    """One aligned face on its way through the network."""

    frame_index: int
    track_id: int
    crop: np.ndarray  # 512x512x3 RGB, uint8 or uint16
    affine: np.ndarray  # 2x3, frame -> aligned face
    new_segment: bool  # first face of a track segment: windows and states do not cross it
    fidelity: float | None = None  # this face's own fidelity weight (None: the run's)
    segment: int = -1  # set by the engine
    restored: np.ndarray | None = None  # 512x512x3 float32 in [0, 1] once done
    # network state between stages
    lq_feat: torch.Tensor | None = field(default=None, repr=False)
    skips: dict[int, torch.Tensor] | None = field(default=None, repr=False)
    probs: torch.Tensor | None = field(default=None, repr=False)
    indices: torch.Tensor | None = field(default=None, repr=False)


class FaceEngine:
    """Runs CodeFormer over faces submitted frame by frame; see the module docstring.

    ``model`` is a :class:`RestorerDescriptor` (its ``prepare``/``finish`` convert the faces);
    a bare :class:`CodeFormer` is described on the spot, fed in ``device``/``dtype`` (default:
    its own).
    """

    def __init__(self, model: RestorerDescriptor | CodeFormer, options: RestoreOptions, *,
                 batch_size: int, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.model = as_descriptor(model, device=device, dtype=dtype)
        self.options = options
        self.device = self.model.device
        self.dtype = self.model.dtype
        self.batch_size = max(1, batch_size)
        self.window = options.window if options.temporal == "window" else 0
        self.recurrent = (RecurrentFilter(options.recurrent_gain)
                          if options.temporal == "recurrent" else None)
        self._to_encode: deque[FaceItem] = deque()
        self._waiting: deque[FaceItem] = deque()  # encoded, code not chosen yet
        self._to_decode: deque[FaceItem] = deque()
        # window mode: faces of each track segment still needed by a window
        self._segments: dict[int, deque[FaceItem]] = {}
        self._open_segment: dict[int, int] = {}  # track id -> its current segment
        self._segment_count = 0
        self._last_frame = -1
        self._track_last_seen: dict[int, int] = {}
        self.faces_restored: dict[int, int] = {}
        self.submitted = 0  # faces, for progress: each is encoded once and decoded once
        self.encoded = 0
        self.network_seconds = 0.0  # wall time spent in the network's passes
        #: Called after every network batch (a host's progress bar and Cancel button); set by
        #: the caller for the duration of a run, never saved with the state.
        self.on_batch: Callable[[], None] | None = None

    # -- feeding ---------------------------------------------------------------------------------
    def submit(self, frame_index: int, items: list[FaceItem],
               repeats: Iterable[int] = ()) -> None:
        """All selected faces of one frame (possibly none), in frame order. ``repeats``: the
        tracks whose faces on this frame repeat their faces of the frame before (a held
        picture, whose restored faces the caller uses again): they are not restored twice,
        and their segments (windows, recurrent states) go on through the frame."""
        self._last_frame = frame_index
        for track_id in repeats:
            if self._track_last_seen.get(track_id) == frame_index - 1:
                self._track_last_seen[track_id] = frame_index
        for it in items:
            if it.new_segment or self._track_last_seen.get(it.track_id) != frame_index - 1:
                it.new_segment = True
                self._segment_count += 1
                self._open_segment[it.track_id] = self._segment_count
                if self.recurrent is not None:
                    self.recurrent.reset(it.track_id)
            it.segment = self._open_segment[it.track_id]
            if self.window > 0:
                self._segments.setdefault(it.segment, deque()).append(it)
            self._track_last_seen[it.track_id] = frame_index
            self._to_encode.append(it)
            self.submitted += 1
        # A short batch goes when its oldest face has waited longer than a full batch takes to
        # gather: otherwise the last faces of a track would wait for the next face (maybe
        # minutes later) and every frame after them would be held back in memory.
        while len(self._to_encode) >= self.batch_size or self._stale(
                self._to_encode, self.batch_size):
            self._encode(self.batch_size)
        self._choose_codes(final=False)
        while len(self._to_decode) >= self.batch_size or self._stale(
                self._to_decode, 2 * self.batch_size + self.window):
            self._decode(self.batch_size)

    def drain(self) -> None:
        """Finish every submitted face now (end of input, or of a chunk)."""
        while self._to_encode:
            self._encode(self.batch_size)
        self._choose_codes(final=True)
        while self._to_decode:
            self._decode(self.batch_size)

    def _stale(self, queue: deque[FaceItem], delay: int) -> bool:
        """Whether the oldest face of a stage's queue has waited ``delay`` frames or more."""
        return bool(queue) and self._last_frame - queue[0].frame_index >= delay

    def _closed(self, it: FaceItem) -> bool:
        """Whether the item's track segment can get no more faces."""
        return (self._open_segment.get(it.track_id) != it.segment
                or self._track_last_seen[it.track_id] < self._last_frame)

    # -- stages ----------------------------------------------------------------------------------
    @torch.inference_mode()
    def _encode(self, n: int) -> None:
        t0 = time.perf_counter()
        batch = [self._to_encode.popleft() for _ in range(min(n, len(self._to_encode)))]
        net = self.model.model
        enc = net.encode(self.model.prepare(self._padded([it.crop for it in batch])))
        logits = net.predict(enc.lq_feat)
        probs = torch.softmax(logits.float(), dim=-1)
        for i, it in enumerate(batch):
            it.lq_feat = enc.lq_feat[i : i + 1]
            it.skips = {r: t[i : i + 1] for r, t in enc.skips.items()}
            it.probs = probs[i]
            it.crop = np.empty((0,), np.uint8)  # pixels no longer needed
            self._waiting.append(it)
        self.encoded += len(batch)
        self.network_seconds += time.perf_counter() - t0
        if self.on_batch is not None:
            self.on_batch()

    def _choose_codes(self, *, final: bool) -> None:
        """Pick codes for waiting faces whose look-ahead is complete, in submission order."""
        while self._waiting:
            it = self._waiting[0]
            if self.window > 0:
                neighbours = self._window_items(it, final)
                if neighbours is None:
                    return
                offsets = [n.frame_index - it.frame_index for n in neighbours]
                p = window_average([_staged(n.probs) for n in neighbours], offsets,
                                   self.window)
            elif self.recurrent is not None:
                p = self.recurrent.update(it.track_id, _staged(it.probs), it.affine)
            else:
                p = _staged(it.probs)
            it.indices = p.argmax(dim=-1)
            self._waiting.popleft()
            self._to_decode.append(it)
        # segments whose track has ended and whose faces all have codes are needed no more
        for key in [k for k, seg in self._segments.items()
                    if not seg or (seg[-1].indices is not None and self._closed(seg[-1]))]:
            del self._segments[key]

    def _window_items(self, it: FaceItem, final: bool) -> list[FaceItem] | None:
        """Encoded faces of the item's segment within +-window, or None while some are unknown."""
        seg = self._segments[it.segment]
        lo, hi = it.frame_index - self.window, it.frame_index + self.window
        members = [s for s in seg if lo <= s.frame_index <= hi]
        if not final:
            if not self._closed(it) and seg[-1].frame_index < hi:
                return None  # the segment may still grow into the window
            if members[-1].probs is None:
                return None  # the last face of the window is still waiting to be encoded
        # prune what no later face of this segment can need
        while seg and seg[0].frame_index < it.frame_index + 1 - self.window:
            seg.popleft()
        return [m for m in members if m.probs is not None]

    def _fidelity(self, it: FaceItem) -> float:
        return self.options.fidelity if it.fidelity is None else it.fidelity

    def _padded(self, values: list[T]) -> list[T]:
        """Fill a short batch up to the batch size by repeating its last entry.

        Convolution kernels may be chosen per batch size, which changes results in the last few
        bits; a constant batch size makes every face's result independent of how the faces were
        grouped (chunked runs equal single runs, identical faces give identical output). A
        network that computes each face on its own (:attr:`RestorerDescriptor.per_item`) has
        that already, and the padding would only be computed for nothing.
        """
        if self.model.per_item:
            return values
        return values + [values[-1]] * (self.batch_size - len(values))

    @torch.inference_mode()
    def _decode(self, n: int) -> None:
        t0 = time.perf_counter()
        # one fidelity weight per network call: the oldest face's, with the next faces that
        # share it (per-track settings may give some tracks another)
        w = self._fidelity(self._to_decode[0])
        batch = [it for it in self._to_decode if self._fidelity(it) == w][:n]
        for it in batch:
            self._to_decode.remove(it)
        lq = torch.cat(self._padded([_staged(it.lq_feat) for it in batch]))
        idx = torch.stack(self._padded([_staged(it.indices) for it in batch]))
        skips = {r: torch.cat(self._padded([_staged(it.skips)[r] for it in batch]))
                 for r in _staged(batch[0].skips)}
        net = self.model.model
        code = net.lookup(lq, indices=idx, adain=True)
        images = self.model.finish(net.decode(code, skips, w))
        for i, it in enumerate(batch):
            it.restored = images[i]
            it.lq_feat = None
            it.skips = None
            self.faces_restored[it.track_id] = self.faces_restored.get(it.track_id, 0) + 1
        self.network_seconds += time.perf_counter() - t0
        if self.on_batch is not None:
            self.on_batch()

    @property
    def decoded(self) -> int:
        """Faces finished so far."""
        return sum(self.faces_restored.values())
