"""The frame-iterator form of restoration: frames in, frames with restored faces out.

``Restorer`` composes the face stream (detect, track, smooth), the alignment, the network engine
and the paste-back. It keeps its state between calls, so a host that receives a video in chunks
(a node graph, a pipe) continues tracks and temporal state across them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from ..errors import UsageError
from ..faces import (
    FaceDetector,
    FaceOptions,
    FaceStream,
    FrameFaces,
    TrackedFace,
    create_detector,
)
from ..faces.align import FACE_SIZE, affine_scale, similarity_transform, warp_face
from ..io.frame import Box, Frame, Patch
from ..io.orientation import quarter_turns, upright, upright_view
from ..io.patch import MARGIN as PATCH_MARGIN
from ..io.patch import grown_box
from ..models.codeformer import CodeFormer
from ..models.descriptor import RestorerDescriptor
from ..models.placement import resolve_device, resolve_dtype
from ..upscale import BackgroundDescriptor, Upscaler, output_affine, scaled_affine
from ..upscale.model import LANCZOS, load_background
from . import snapshot
from .blend import is_gray, paste_box, paste_face, shrunk_for_paste
from .engine import FaceEngine, FaceItem, as_descriptor
from .masks import create_masker
from .options import RestoreOptions
from .tracksettings import TrackSetting, parse_track_settings

if TYPE_CHECKING:
    from ..weights import WeightStore

log = logging.getLogger(__name__)

__all__ = ["Restorer", "default_batch_size", "resolve_device", "resolve_dtype", "snapshot_types"]


def default_batch_size(device: torch.device, per_item: bool = False) -> int:
    """Faces per network call when the user leaves it automatic: one for a network that
    computes each face on its own (OpenVINO's, :attr:`RestorerDescriptor.per_item`), where a
    larger batch gains nothing and holds more faces in memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(max(4, min(32, free // (1 << 30))))  # ~1 GiB a face at 16-bit, generous
    return 1 if per_item else 2


_SAME = TrackSetting()  # a track without settings of its own


@dataclass
class _Pending:
    source: FrameFaces
    items: list[FaceItem]
    gray: bool
    # exact RGB boxes of the source the faces were cut from (Frame.region), pasted into later
    regions: list[tuple[Box, np.ndarray]] = field(default_factory=list)
    # faces of a held picture that repeat the frame before: pasted with its restored faces
    repeats: list[FaceItem] = field(default_factory=list)


def snapshot_types() -> tuple[type, ...]:
    """The classes a restorer's snapshot may hold: those of the modules that make up its state
    (tracking, smoothing, registration, the engine, the temporal filters, the options)."""
    import inspect
    import sys

    from ..faces import cuts, options, records, register, smooth, stream, track
    from . import engine, temporal, tracksettings
    from . import options as restore_options

    modules = (cuts, options, records, register, smooth, stream, track, engine, temporal,
               tracksettings, restore_options, sys.modules[__name__])
    return tuple(cls for m in modules for _, cls in inspect.getmembers(m, inspect.isclass)
                 if cls.__module__ == m.__name__ and cls is not Restorer
                 and not issubclass(cls, BaseException))


class Restorer:
    """Restores every tracked face in a stream of frames.

    Args:
        options: restore options (fidelity, temporal mode, device, ...).
        faces: face detection/tracking options.
        model: an already loaded network (a :class:`RestorerDescriptor`, or a bare CodeFormer),
            used on its own device and dtype (else loaded by :func:`load_restorer` from
            ``options.weights`` or the cache, on ``options.device`` in ``options.dtype``).
        detector: an already built face detector (else made from ``faces.detector``).
        keep_tracks: remember every tracked face, for a tracks report (only those of
            ``only_frames`` when that is set).
        store: where model files come from (default: :meth:`WeightStore.from_env`, the store
            the environment names; hosts pass their own).
        rotation: counter-clockwise display rotation of the frames given, in degrees
            (:attr:`VideoInfo.rotation`). Frames are taken as upright by default; with a
            quarter turn, faces are found, tracked, aligned and pasted in the upright picture
            and the frames come out in the orientation they came in. ``tracks`` are in upright
            coordinates.
        background: the background model for ``options.upscale`` / ``options.background``
            (an already loaded :class:`BackgroundDescriptor`, e.g. a host's upscale model;
            else loaded from ``options.background`` unless that is ``lanczos``), or a whole
            :class:`Upscaler`.

    With ``options.upscale`` S > 1 every frame comes out S times larger than it went in (its
    :attr:`Frame.size` says so; write it with :func:`~vidrestore.upscale.scaled_info` of the
    source's facts): the background by Lanczos or the model, faces pasted at the output
    resolution. Tracks stay in source coordinates.

    Example::

        restorer = Restorer(RestoreOptions(fidelity=0.7))
        for frame in restorer.process(frames):
            ...
    """

    def __init__(self, options: RestoreOptions | None = None, faces: FaceOptions | None = None,
                 *, model: RestorerDescriptor | CodeFormer | None = None,
                 detector: FaceDetector | None = None,
                 keep_tracks: bool = False, store: WeightStore | None = None,
                 rotation: int = 0,
                 background: BackgroundDescriptor | Upscaler | None = None) -> None:
        from ..models.loader import load_restorer
        from ..weights import WeightStore

        self.options = options or RestoreOptions()
        self.face_options = faces or FaceOptions()
        store = store if store is not None else WeightStore.from_env()
        if model is None:
            model = load_restorer(self.options.weights, device=self.options.device,
                                  dtype=self.options.dtype, runtime=self.options.runtime,
                                  compile=self.options.compile, store=store)
        self.model = as_descriptor(model)
        self.device = self.model.device
        self.dtype = self.model.dtype
        det = detector if detector is not None else create_detector(
            self.face_options.detector, self.face_options, device=str(self.device), store=store)
        self.face_stream = FaceStream(det, self.face_options, turns=quarter_turns(rotation))
        batch = self.options.batch_size or default_batch_size(self.device, self.model.per_item)
        self.engine = FaceEngine(self.model, self.options, batch_size=batch)
        self.masker = create_masker(self.options.mask, self.device, store)
        self.upscaler = self._upscaler(background, store)
        # the options hold the settings inline (a file was read when they were made)
        self.track_settings = (parse_track_settings(self.options.track_settings)
                               if self.options.track_settings else {})
        self.keep_tracks = keep_tracks
        self.tracks: dict[int, list[TrackedFace]] = {}
        self.frame_pts: dict[int, int] = {}  # frame index -> pts, for the tracks report
        self.frames_done = 0
        self.frames_in = 0
        self.track_ids: set[int] = set()  # every track seen, restored or not
        #: Restore only the faces of these frame indices (None: all); the others are still
        #: found and tracked (a preview needs the full run's tracks but few faces restored).
        self.only_frames: set[int] | None = None
        self._pending: deque[_Pending] = deque()
        # the last frame submitted (index, track -> affine), whose faces a held picture repeats
        self._submitted: tuple[int, dict[int, np.ndarray]] = (-2, {})
        # the last frame pasted: track -> its restored face and unblended mask
        self._pasted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._repeated: dict[int, int] = {}  # faces restored by repeating one, per track

    def _upscaler(self, background: BackgroundDescriptor | Upscaler | None,
                  store: WeightStore) -> Upscaler:
        o = self.options
        if isinstance(background, Upscaler):
            return background
        if background is None and o.background != LANCZOS:
            background = load_background(o.background, device=self.device, store=store)
        if o.face_upsample and background is None:
            raise UsageError("--face-upsample needs a --background model (with lanczos the "
                             "faces are enlarged by the paste-back's warp already)")
        return Upscaler(o.upscale, background, tile=o.bg_tile, face_upsample=o.face_upsample)

    def close(self) -> None:
        """Stop the background thread of the upscaler (idle otherwise; safe to call twice)."""
        self.upscaler.close()

    @property
    def rotation(self) -> int:
        """Display rotation the faces are restored in (degrees, counter-clockwise; 0: the
        frames as given). Set it from the source's :attr:`VideoInfo.rotation` before its first
        frame; a rotation that is not a quarter turn is warned about and taken as 0."""
        return 90 * self.face_stream.turns

    @rotation.setter
    def rotation(self, degrees: int) -> None:
        self.face_stream.turns = quarter_turns(degrees)

    def unseen_tracks(self) -> dict[str, list[int]]:
        """Track IDs named by ``faces`` or ``track_settings`` that have not appeared (so far),
        by the option that names them."""
        named = {"faces": self.options.faces or (), "track_settings": self.track_settings}
        return {k: sorted(set(ids) - self.track_ids) for k, ids in named.items()
                if set(ids) - self.track_ids}

    @property
    def faces_restored(self) -> dict[int, int]:
        """Faces restored so far, per track id (a held picture's repeated faces included)."""
        out = dict(self.engine.faces_restored)
        for track_id, n in self._repeated.items():
            out[track_id] = out.get(track_id, 0) + n
        return out

    def process(self, frames: Iterable[Frame], *, final: bool = True, complete: bool = False,
                on_step: Callable[[], None] | None = None) -> Iterator[Frame]:
        """Yield the frames, in order, with their faces restored.

        With ``final=False`` the stream is expected to continue in a later call: tracks and
        temporal state are kept, and frames whose result depends on frames not given yet (inside
        the face tracker's look-ahead, or the ``window`` mode's) come out with the next call.
        With ``faces.causal`` and a causal temporal mode (``recurrent``, ``off``) none are held
        back, so each call returns exactly its frames, equal to those of one long call.
        ``complete=True`` also finishes the ``window`` mode's frames now (their windows end at
        the chunk's end), for hosts that must return every frame of a chunk.

        ``on_step`` is called after each input frame is taken in and after each network batch,
        also while the look-ahead and the window's tail are finished (where no frame comes out
        for a while): a host moves its progress bar there (see :meth:`work`) and may raise to
        cancel the run.
        """
        for _, out in self.process_pairs(frames, final=final, complete=complete,
                                         on_step=on_step):
            yield out

    def process_pairs(self, frames: Iterable[Frame], *, final: bool = True,
                      complete: bool = False, on_step: Callable[[], None] | None = None
                      ) -> Iterator[tuple[Frame, Frame]]:
        """Like :meth:`process`, yielding ``(source, restored)`` pairs."""
        step = on_step or (lambda: None)
        self.engine.on_batch = on_step
        try:
            for frame in frames:
                for ff in self.face_stream.push(frame):
                    self._submit(ff)
                self.frames_in += 1
                step()
                yield from self._ready()
            if final:
                for ff in self.face_stream.flush():
                    self._submit(ff)
            if final or complete or self.options.temporal != "window":
                # Causal modes lose nothing by finishing now; a window still waits for its future.
                self.engine.drain()
            yield from self._ready()
        finally:
            self.engine.on_batch = None

    def work(self) -> tuple[int, int]:
        """``(done, known)`` steps of work so far, for a progress bar: a step is a frame taken
        in or a face through one of the network's two passes. ``known`` grows as faces are
        found; it equals ``done`` once every frame given is out."""
        e = self.engine
        return self.frames_in + e.encoded + e.decoded, self.frames_in + 2 * e.submitted

    # -- state snapshots -------------------------------------------------------------------------
    def get_state(self) -> bytes:
        """Everything this restorer carries between frames, without the networks, as a
        snapshot (:mod:`.snapshot`: plain data, no pickle).

        A restorer built with the same options that receives this state with :meth:`set_state`
        continues exactly where this one stopped (same tracks, same temporal state, the same
        frames still pending), so a long job can stop after any frame and resume bit for bit.
        """
        held = {(self.face_stream, "detector"), (self.engine, "model"),
                (self.engine, "on_batch")}
        kept = {(obj, name): getattr(obj, name) for obj, name in held}
        for obj, name in held:  # the networks and the host's hook are not state
            setattr(obj, name, None)
        try:
            return snapshot.dumps(self._state(), snapshot_types())
        finally:
            for (obj, name), value in kept.items():
                setattr(obj, name, value)

    def _state(self) -> dict[str, object]:
        return {
            "options": self.options, "face_options": self.face_options,
            "face_stream": self.face_stream, "engine": self.engine,
            "mask_tracks": getattr(self.masker, "_track", None),
            "pending": self._pending, "tracks": self.tracks, "frame_pts": self.frame_pts,
            "frames_done": self.frames_done, "frames_in": self.frames_in,
            "track_ids": self.track_ids, "submitted": self._submitted,
            "pasted": self._pasted, "repeated": self._repeated,
        }

    def set_state(self, data: bytes, *, what: str = "restore state") -> None:
        """Continue from a :meth:`get_state` snapshot (made with the same options).

        The snapshot is read as data (no code in it can run); one from another version, or
        damaged, is a :class:`~.snapshot.SnapshotError` naming ``what``.
        """
        state = snapshot.loads(data, snapshot_types(), device=self.device, what=what)
        if not isinstance(state, dict) or set(state) != set(self._state()):
            raise snapshot.SnapshotError(f"{what}: not a restorer's state")
        if state["options"] != self.options or state["face_options"] != self.face_options:
            raise UsageError("the saved restore state was made with other options")
        state["face_stream"].detector = self.face_stream.detector
        state["engine"].model = self.engine.model
        state["engine"].on_batch = None
        self.face_stream, self.engine = state["face_stream"], state["engine"]
        if state["mask_tracks"] is not None and hasattr(self.masker, "_track"):
            self.masker._track = state["mask_tracks"]
        self._pending, self.tracks = state["pending"], state["tracks"]
        self.frame_pts = state["frame_pts"]
        self.frames_done = state["frames_done"]
        self.frames_in = state["frames_in"]
        self.track_ids = state["track_ids"]
        self._submitted, self._pasted = state["submitted"], state["pasted"]
        self._repeated = state["repeated"]
        self.upscaler.forget()

    # -- internals -----------------------------------------------------------------------------
    def _blend(self, track_id: int) -> float:
        own = self.track_settings.get(track_id, _SAME).blend
        return self.options.blend if own is None else own

    def _submit(self, ff: FrameFaces) -> None:
        frame = ff.frame
        wanted = self.options.faces
        mode = self.options.grayscale
        gray = mode == "on" or (mode == "auto" and bool(ff.faces) and is_gray(frame.analysis))
        items: list[FaceItem] = []
        if self.keep_tracks and ff.faces:
            self.frame_pts[frame.index] = frame.pts
        self.track_ids.update(face.track_id for face in ff.faces)
        kept = self.keep_tracks and (self.only_frames is None or frame.index in self.only_frames)
        picture: np.ndarray | None = None
        regions: list[tuple[Box, np.ndarray]] = []
        repeats: list[FaceItem] = []
        before, previous = self._submitted
        by_region = self._by_region(frame)
        for face in ff.faces:
            if kept:
                self.tracks.setdefault(face.track_id, []).append(face)
            own = self.track_settings.get(face.track_id, _SAME)
            if (wanted is not None and face.track_id not in wanted) or own.skip or (
                    self._blend(face.track_id) * face.weight == 0) or (
                    self.only_frames is not None and frame.index not in self.only_frames):
                continue  # left as it is (blend 0: nothing of a restored face would show;
                # weight 0: a profile, failed landmarks, or a track that never earned it)
            affine = similarity_transform(face.landmarks)
            if ff.held and before == frame.index - 1 and face.track_id in previous \
                    and np.array_equal(previous[face.track_id], affine):
                # a held picture's face where it was: its restored face is the frame before's
                repeats.append(FaceItem(frame.index, face.track_id, np.empty((0,), np.uint8),
                                        affine, new_segment=False, fidelity=own.fidelity))
                continue
            if by_region:  # only the pixels the crop samples are converted
                w, h = frame.size
            else:
                if picture is None:  # the landmarks are the upright picture's
                    picture = upright(frame.pixels, self.face_stream.turns)
                h, w = picture.shape[:2]
            box = _sampled_box(affine, w, h)
            if box is None:
                crop = warp_face(np.zeros((1, 1, 3), frame.analysis.dtype), affine)  # all fill
            else:
                # Cut from the box in either case: OpenCV's warp rounds otherwise when the map
                # is moved, and a face must come out the same from a box or a whole picture.
                x0, y0, x1, y1 = box
                if by_region:
                    part = frame.region(box)
                    regions.append((box, part))
                else:
                    assert picture is not None
                    part = picture[y0:y1, x0:x1]
                crop = warp_face(part, _shifted(affine, box))
            items.append(FaceItem(frame.index, face.track_id, crop, affine, new_segment=ff.cut,
                                  fidelity=own.fidelity))
        self.engine.submit(frame.index, items, repeats=[it.track_id for it in repeats])
        self._pending.append(_Pending(ff, items, gray, regions, repeats))
        self._submitted = (frame.index, {it.track_id: it.affine for it in items + repeats})

    def _ready(self) -> Iterator[tuple[Frame, Frame]]:
        up = self.upscaler
        if up.active:
            self._start_canvases()
        while self._pending and all(it.restored is not None for it in self._pending[0].items):
            p = self._pending.popleft()
            if up.active:  # keep the next frames' backgrounds going while this one is pasted
                self._start_canvases()
            src = p.source.frame
            out = (self._paste_regions(p) if (p.items or p.repeats) and self._by_region(src)
                   else self._paste_whole(p))
            self.frames_done += 1
            yield src, out

    def _paste_whole(self, p: _Pending) -> Frame:
        """The frame with its restored faces pasted into its whole picture (at the output's
        size: the background upscaler's, when it runs)."""
        up = self.upscaler
        src = p.source.frame
        pixels: np.ndarray | None = None
        boxes: list[Box] | None = None  # where the source's picture changed
        if up.active and self._wanted(src.index):  # made ahead on the background thread
            pixels = (up.take(src.index) if up.started(src.index)
                      else up.canvas(src.pixels, gray=self._gray_background(src)))
        elif p.items or p.repeats:
            pixels = np.array(src.pixels, copy=True)
            boxes = [] if self.face_stream.turns == 0 else None
        if pixels is None:
            return src
        shown = upright_view(pixels, self.face_stream.turns)  # pastes write `pixels`
        for it, face, mask in self._blended(p):
            affine = it.affine
            if up.scale != 1:
                affine = output_affine(affine, up.scale)
            if up.face_upsample and affine_scale(affine) < 1.0:
                face, mask, affine = self._upsampled(face, mask, affine)
            box = paste_face(shown, face, mask, affine, gray=p.gray)
            if boxes is not None and box is not None:
                boxes.append(box)
        return src.with_pixels(pixels) if boxes is None else src.patched(pixels, tuple(boxes))

    def _blended(self, p: _Pending) -> list[tuple[FaceItem, np.ndarray, np.ndarray]]:
        """Each face item with its restored face and its mask times its blend (the track's
        ``blend`` and the face's weight, which fades restoration out and in: profiles, failed
        landmarks); the items let go of their faces."""
        faces = [it.restored for it in p.items if it.restored is not None]
        masks = self.masker.masks(faces, [it.track_id for it in p.items])
        made = list(zip(p.items, faces, masks, strict=True))
        for it in p.items:
            it.restored = None
        for it in p.repeats:  # the frame before was pasted just now: its faces are at hand
            made.append((it, *self._pasted[it.track_id]))
            self._repeated[it.track_id] = self._repeated.get(it.track_id, 0) + 1
        self._pasted = {it.track_id: (face, mask) for it, face, mask in made}
        weight = {f.track_id: f.weight for f in p.source.faces}
        out = []
        for it, face, mask in made:
            blend = self._blend(it.track_id) * weight.get(it.track_id, 1.0)
            out.append((it, face, mask if blend == 1 else mask * blend))
        return out

    def _by_region(self, frame: Frame) -> bool:
        """Whether a frame's faces are cut from and pasted into exact boxes of its picture
        alone (:meth:`Frame.region`; it is then never converted whole): at the source's size,
        stored upright, its whole pixels not converted yet."""
        return frame.regions and self.face_stream.turns == 0 and not self.upscaler.active

    def _paste_regions(self, p: _Pending) -> Frame:
        """The frame with its restored faces pasted into exact boxes of its picture (the
        faces' own, each grown as the writer converts it back; overlapping ones joined):
        the same pixels as pasting into the whole converted picture."""
        src = p.source.frame
        w, h = src.size
        pastes = []
        for it, face, mask in self._blended(p):
            face, mask, affine = shrunk_for_paste(face, mask, it.affine)
            box = paste_box(mask, affine, w, h)
            grown = None if box is None else grown_box(box, src.source)
            if grown is not None:
                pastes.append((grown, face, mask, affine))
        canvases = [(box, _exact_box(src, box, p.regions))
                    for box in _joined([g for g, *_ in pastes])]
        changed = [False] * len(canvases)
        for grown, face, mask, affine in pastes:
            k = next(i for i, (b, _) in enumerate(canvases) if _inside(grown, b))
            box, canvas = canvases[k]
            if paste_face(canvas, face, mask, affine, gray=p.gray, origin=box[:2],
                          frame_size=(w, h)) is not None:
                changed[k] = True
        patches: tuple[Patch, ...] = tuple(
            (box[0], box[1], canvas) for (box, canvas), c in zip(canvases, changed, strict=True)
            if c)
        return src.with_patches(patches) if patches else src

    def _start_canvases(self) -> None:
        """Start the output pictures of the next pending frames (up to two model batches),
        so the background is made while their faces are restored."""
        up = self.upscaler
        todo = [p.source.frame for p in list(self._pending)[:2 * up.batch]
                if not up.started(p.source.frame.index) and self._wanted(p.source.frame.index)]
        for i in range(0, len(todo), up.batch):
            group = todo[i:i + up.batch]
            up.start([f.index for f in group], [f.pixels for f in group],
                     [self._gray_background(f) for f in group])

    def _wanted(self, index: int) -> bool:
        """Whether frame ``index`` is restored (a preview restores a few, see
        :attr:`only_frames`; the others pass through at the source's size)."""
        return self.only_frames is None or index in self.only_frames

    def _gray_background(self, frame: Frame) -> bool:
        """Whether a model's background should be made gray (a black-and-white source)."""
        mode = self.options.grayscale
        if self.upscaler.model is None or mode == "off":
            return False  # Lanczos keeps gray pictures gray by itself
        return mode == "on" or is_gray(frame.pixels)

    def _upsampled(self, face: np.ndarray, mask: np.ndarray, affine: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A face larger than 512 px in the output, upsampled by the background model, with
        its mask and map at that size."""
        up = self.upscaler
        assert up.model is not None
        big = up.upsample(face)
        side = big.shape[0]
        return (big, cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR),
                scaled_affine(affine, side / face.shape[0]))


def _sampled_box(affine: np.ndarray, width: int, height: int) -> Box | None:
    """The box of a ``width`` x ``height`` frame that the aligned crop of ``affine`` samples,
    grown to hold the box its paste-back may change as the writer converts it back (the mask's
    support with the paste's and the writer's margins), so one exact conversion serves both;
    None when it samples none of the frame."""
    inv = cv2.invertAffineTransform(np.asarray(affine, np.float64))
    side = FACE_SIZE
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], np.float64)
    pts = corners @ inv.T
    # the paste's margin is 16 mask pixels, a frame pixel or more each (a face shrunk a lot
    # is first shrunk by area averaging, to at most two face pixels a frame pixel)
    reach = int(np.ceil(16 / min(affine_scale(affine), 1.0))) + PATCH_MARGIN + 2
    x0 = max(int(np.floor(pts[:, 0].min())) - reach, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - reach, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + reach, width)
    y1 = min(int(np.ceil(pts[:, 1].max())) + reach, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _shifted(affine: np.ndarray, box: Box) -> np.ndarray:
    """``affine`` (frame -> face) for the pixels of ``box`` of the frame."""
    out = np.asarray(affine, np.float64).copy()
    out[:, 2] += out[:, :2] @ np.array([box[0], box[1]], np.float64)
    return out


def _inside(a: Box, b: Box) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


def _joined(boxes: list[Box]) -> list[Box]:
    """``boxes`` with each set of overlapping ones replaced by their bounding box."""
    out: list[Box] = []  # never overlapping
    for box in boxes:
        while (k := next((i for i, o in enumerate(out) if _overlap(o, box)), None)) is not None:
            o = out.pop(k)
            box = (min(o[0], box[0]), min(o[1], box[1]), max(o[2], box[2]), max(o[3], box[3]))
        out.append(box)
    return out


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _exact_box(frame: Frame, box: Box, cut: list[tuple[Box, np.ndarray]]) -> np.ndarray:
    """A new array of the exact RGB of ``box`` of ``frame``: from a box already converted for
    the crops where one holds it, else converted now."""
    for (x0, y0, x1, y1), part in cut:
        if _inside(box, (x0, y0, x1, y1)):
            return np.array(part[box[1] - y0:box[3] - y0, box[0] - x0:box[2] - x0])
    return frame.region(box)
