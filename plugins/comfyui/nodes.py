"""The vidrestore nodes for ComfyUI: load CodeFormer, restore the faces of a frame batch, preview
the face tracks.

The nodes only convert ``IMAGE`` tensors to and from frames and call the library
(:class:`vidrestore.restore.pipeline.Restorer`, the face stream and its report and drawing
helpers); their inputs are generated from the library's option dataclasses. Custom link types:
``VIDRESTORE_MODEL`` (a :class:`~vidrestore.models.RestorerDescriptor`: the loaded network with
its device, precision, licence and source) and
``VIDRESTORE_FACE_OPTIONS`` (detection and tracking settings).

Long videos in chunks: see :mod:`.session` and the README. Connect the video helpers' Meta Batch
Manager to ``meta_batch`` (or give a ``session`` name) and tracks, temporal state and frame
numbers carry on from one chunk to the next.

Upscaled output: ``upscale`` S makes every frame S times larger, faces pasted at the output
resolution; the background comes from ComfyUI's own ``UPSCALE_MODEL`` (core's Load Upscale
Model) when connected, else from the ``background`` choice (see :mod:`.background`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vidrestore.errors import UsageError
from vidrestore.faces.options import FaceOptions
from vidrestore.io.frame import Frame
from vidrestore.restore.options import DEVICES, RestoreOptions
from vidrestore.upscale import LANCZOS, NAMED

from . import host
from .background import INPUT as UPSCALE_MODEL_INPUT
from .background import HostUpscaler, host_background
from .convert import ImageCollector, check_images, choose_depth, frames_from_images
from .inputs import field_input, fields_inputs, in_node_words, node_text, options_from
from .session import ChunkPlan, SessionSlot, plan_chunk

if TYPE_CHECKING:
    from vidrestore.models import RestorerDescriptor

log = logging.getLogger("vidrestore.comfyui")

CATEGORY = "vidrestore"
MODEL_TYPE = "VIDRESTORE_MODEL"
FACE_OPTIONS_TYPE = "VIDRESTORE_FACE_OPTIONS"
UPSCALE_MODEL_TYPE = "UPSCALE_MODEL"  # ComfyUI's own: a spandrel ImageModelDescriptor
CACHE_ENTRY = "codeformer.pth (vidrestore weights cache)"

# Restore options that are node widgets; weights, device, dtype, runtime and compile belong to
# the model node.
RESTORE_MAIN = ("fidelity", "temporal", "window")
RESTORE_MORE = ("blend", "track_settings", "recurrent_gain", "faces", "mask", "grayscale",
                "batch_size")
# Upscaled output: optional inputs after the older ones, so saved workflows keep their values.
RESTORE_UPSCALE = ("upscale", "background", "face_upsample", "bg_tile")
FACE_MAIN = ("min_face", "detector")


# -- models ---------------------------------------------------------------------------------------
def load_model(path: str | None, device: str = "auto", dtype: str = "auto",
               runtime: str = "auto", compile: bool = False) -> RestorerDescriptor:
    """Load CodeFormer from ``path`` (any compatible checkpoint), or the verified file of the
    vidrestore weights cache when ``path`` is None. ``device="auto"`` takes ComfyUI's device
    when running inside ComfyUI."""
    from vidrestore.models import load_restorer

    if device == "auto":
        device = host.torch_device() or "auto"
    return load_restorer(path, device=device, dtype=dtype, runtime=runtime, compile=compile,
                         store=None if path else host.weight_store())


class LoadCodeFormer:
    """Load a CodeFormer network from ComfyUI's facerestore_models folder or the vidrestore
    weights cache (downloaded and hash-checked on first use)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                # a file the user already has comes first, so it is the default
                "model_name": ([*host.model_files(), CACHE_ENTRY], {
                    "tooltip": "A file in models/facerestore_models, or the verified official "
                               "file from the vidrestore weights cache (downloaded once, "
                               "376 MB)."}),
                "device": (list(DEVICES), {"default": "auto", "tooltip": "Compute device; auto "
                                           "uses ComfyUI's device."}),
                "dtype": field_input(RestoreOptions, "dtype"),
            },
            # optional, after the older inputs: saved workflows keep their values
            "optional": {"runtime": field_input(RestoreOptions, "runtime"),
                         "compile": field_input(RestoreOptions, "compile")},
        }

    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The loaded network with its device and precision, for Restore Faces.",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = node_text(" ".join((__doc__ or "").split()))

    @in_node_words
    def load(self, model_name: str, device: str = "auto", dtype: str = "auto",
             runtime: str = "auto", compile: bool = False) -> tuple[RestorerDescriptor]:
        path = None
        if model_name != CACHE_ENTRY:
            path = host.model_path(model_name)
            if path is None:
                raise UsageError(f"model_name: {model_name!r} is not in ComfyUI's "
                                 f"{host.MODEL_FOLDER} folders")
        return (load_model(path, device, dtype, runtime, compile),)


# -- face options ---------------------------------------------------------------------------------
class FaceSettings:
    """All face detection, tracking and smoothing settings, for the restore and track nodes
    (their own detector and min_face inputs take precedence)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": fields_inputs(FaceOptions, exclude=("causal", *FACE_MAIN))}

    RETURN_TYPES = (FACE_OPTIONS_TYPE,)
    RETURN_NAMES = ("face_options",)
    OUTPUT_TOOLTIPS = ("Detection and tracking settings, for the face_options input of Restore "
                       "Faces and Track Faces.",)
    FUNCTION = "build"
    CATEGORY = CATEGORY
    DESCRIPTION = node_text(" ".join((__doc__ or "").split()))

    @in_node_words
    def build(self, **values: Any) -> tuple[FaceOptions]:
        return (options_from(FaceOptions, values),)


def _face_options(values: Mapping[str, Any], base: FaceOptions | None, *, causal: bool
                  ) -> FaceOptions:
    picked = {k: values[k] for k in FACE_MAIN if k in values}
    return dataclasses.replace(options_from(FaceOptions, picked, base or FaceOptions()),
                               causal=causal)


def _session_inputs() -> dict[str, Any]:
    return {
        "meta_batch": ("VHS_BatchManager", {
            "tooltip": "The Meta Batch Manager that also feeds Load Video: the video arrives "
                       "in chunks and tracks and temporal state continue across them."}),
        "session": ("STRING", {
            "default": "", "tooltip": "Without a batch manager: a name for a video that "
            "arrives over several runs (chunks continue while the name stays); empty = every "
            "run is a whole video."}),
        "total_frames": ("INT", {
            "default": 0, "min": 0, "max": 2**31 - 1, "tooltip": "Frames of the whole video "
            "when known (0 = unknown): the session ends after them."}),
    }


def _run_frames(frames: Iterable[Frame], collector: ImageCollector,
                progress: host.Progress) -> None:
    for frame in frames:
        collector.add(frame)
        progress.update(1)


def _network_steps(restorer: Any, frames: int) -> Callable[[], None]:
    """What the restorer calls after every frame taken in and every network batch: ComfyUI's
    Cancel, and its progress bar over this batch's work (frames read, faces through the
    network's two passes, and a background model's calls), so both keep working while the
    look-ahead and the window's tail are computed, when no frame comes out, and while a slow
    background is made (the upscaler runs the step while the restorer waits for it)."""
    check = host.interrupt_check()
    bar = host.Progress(frames)
    done0, known0 = restorer.work()
    in0 = restorer.frames_in
    up = restorer.upscaler if isinstance(restorer.upscaler, HostUpscaler) else None

    def step() -> None:
        check()
        done, known = restorer.work()
        value, total = done - done0, known - known0 + frames - (restorer.frames_in - in0)
        if up is not None:
            bg_done, bg_known = up.work()
            value, total = value + bg_done, total + bg_known
        bar.set(value, total)

    if up is not None and up.active:
        up.begin(frames, step)
    return step


def _upscaler(options: RestoreOptions, upscale_model: Any, device: torch.device
              ) -> HostUpscaler:
    """The output picture maker of a restorer: the host's upscale model when connected, else
    the ``background`` choice (a named model from the vidrestore weights cache, or Lanczos)."""
    from vidrestore.upscale import load_background

    model = None
    if upscale_model is not None:
        model = host_background(upscale_model, device)
    elif options.background != LANCZOS:
        model = load_background(options.background, device=device, store=host.weight_store())
    return HostUpscaler(options.upscale, model, tile=options.bg_tile,
                        face_upsample=options.face_upsample)


def _upscale_inputs() -> dict[str, Any]:
    spec = dict(fields_inputs(RestoreOptions, RESTORE_UPSCALE))
    kind, opts = spec["upscale"]
    spec["upscale"] = (kind, {**opts, "tooltip": opts["tooltip"].replace(
        "upscaled by background.", "upscaled by upscale_model when connected, else by "
        "background.")})
    _, opts = spec["background"]
    spec["background"] = ([LANCZOS, *NAMED], {
        **opts, "default": LANCZOS, "tooltip": "How the frame around the faces is upscaled "
        "when no upscale_model is connected: lanczos (fast everywhere) or a model, downloaded "
        "once into the vidrestore weights cache. Any other model file: load it with Load "
        "Upscale Model and connect upscale_model, which wins over this. A model also runs at "
        "upscale 1: the background is enhanced at the source's size."})
    kind, opts = spec["face_upsample"]
    spec["face_upsample"] = (kind, {**opts, "tooltip": opts["tooltip"] + " A connected "
                                    "upscale_model is such a model."})
    return spec


# -- restore --------------------------------------------------------------------------------------
class RestoreFacesVideo:
    """Restore every face of a frame batch with CodeFormer, with tracks and temporal smoothing
    across the whole batch (and across chunks of a longer video, see ``meta_batch``). With
    ``upscale`` above 1 the frames come out that many times larger, faces pasted at the output
    resolution and the rest upscaled by a connected ``upscale_model`` (Load Upscale Model) or
    the ``background`` choice."""

    def __init__(self) -> None:
        self.slot: SessionSlot[Any] = SessionSlot(close=lambda restorer: restorer.close())

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Consecutive frames of one video."}),
                "model": (MODEL_TYPE, {"tooltip": "The network, from Load CodeFormer."}),
                **fields_inputs(RestoreOptions, RESTORE_MAIN),
                **fields_inputs(FaceOptions, FACE_MAIN),
            },
            "optional": {
                "face_options": (FACE_OPTIONS_TYPE, {
                    "tooltip": "More detection and tracking settings (Face Settings node)."}),
                UPSCALE_MODEL_INPUT: (UPSCALE_MODEL_TYPE, {
                    "tooltip": "A super-resolution model from Load Upscale Model for the "
                    "frame around the faces (with upscale, or at upscale 1 to enhance it); "
                    "takes precedence over background."}),
                **fields_inputs(RestoreOptions, RESTORE_MORE),
                **_session_inputs(),
                **_upscale_inputs(),
            },
            "hidden": {"prompt": "PROMPT"},
        }

    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "report")
    OUTPUT_TOOLTIPS = ("The frames with restored faces, upscale times the input's size.",
                       "The face tracks of this batch as JSON (the tracks.json schema).")
    FUNCTION = "restore"
    CATEGORY = CATEGORY
    DESCRIPTION = node_text(" ".join((__doc__ or "").split()))

    @in_node_words
    def restore(self, images: torch.Tensor, model: RestorerDescriptor,
                face_options: FaceOptions | None = None, upscale_model: Any = None,
                session: str = "", total_frames: int = 0, meta_batch: Any = None,
                prompt: Mapping[str, Any] | None = None, **values: Any
                ) -> tuple[torch.Tensor, str]:
        from vidrestore.models.placement import dtype_name
        from vidrestore.restore.pipeline import Restorer

        check_images(images)
        plan = plan_chunk(session, total_frames, meta_batch, prompt)
        if upscale_model is not None:  # the connected model is the background
            values = {**values, "background": UPSCALE_MODEL_INPUT}
        elif values.get("face_upsample") and values.get("background", LANCZOS) == LANCZOS:
            raise UsageError("face_upsample needs a background model: connect upscale_model "
                             "(Load Upscale Model) or choose a model in background")
        base = RestoreOptions(device=str(model.device), dtype=dtype_name(model.dtype))
        options = options_from(RestoreOptions, values, base)
        faces = _face_options(values, face_options, causal=plan.key is not None)

        def start() -> tuple[Restorer, np.dtype]:
            upscaler = _upscaler(options, upscale_model, model.device)
            restorer = Restorer(options, faces, model=model, keep_tracks=True,
                                store=host.weight_store(), background=upscaler)
            return restorer, choose_depth(images)

        # the upscale model by identity: another loaded model is another video's settings
        settings = (model, options, faces, upscale_model)
        return self.slot.run(
            plan, settings, (images.shape[1], images.shape[2]), images.shape[0], start,
            lambda restorer, depth, first, final: self._process(
                restorer, images, depth, first, final=final, whole=plan.key is None))

    @staticmethod
    def _process(restorer: Any, images: torch.Tensor, depth: np.dtype, first: int, *,
                 final: bool, whole: bool) -> tuple[torch.Tensor, str]:
        frames = frames_from_images(images, depth, first_index=first)
        collector = ImageCollector(images, restorer.upscaler.scale)
        step = _network_steps(restorer, images.shape[0])
        try:
            for frame in restorer.process(frames, final=final, complete=True, on_step=step):
                collector.add(frame)
        finally:
            if isinstance(restorer.upscaler, HostUpscaler):
                restorer.upscaler.end()
        report = tracks_report(restorer.tracks, images, first)
        restorer.tracks.clear()  # the report covers this batch; memory stays per batch
        if final:
            _check_faces_seen(restorer, whole=whole)
        return collector.result(), report


def _check_faces_seen(restorer: Any, *, whole: bool) -> None:
    """``faces`` naming a track that never appeared is a typo or another video's ID: an error
    for a whole video (nothing would be restored as asked), a warning at the end of a chunked
    one (its earlier chunks are already out); for ``track_settings`` always a warning."""
    found = ", ".join(map(str, sorted(restorer.track_ids))) or "none"
    for option, unseen in restorer.unseen_tracks().items():
        message = (f"{option}: track {', '.join(map(str, unseen))} never appeared in these "
                   f"frames (tracks found: {found}; the Track Faces node shows them)")
        if whole and option == "faces":  # nothing would be restored as asked
            raise UsageError(message)
        log.warning("%s", message)


# -- track preview --------------------------------------------------------------------------------
class TrackFacesPreview:
    """Draw the face tracks (boxes, IDs) on the frames and report them, to choose which faces
    to restore (``faces`` input of the restore node)."""

    def __init__(self) -> None:
        self.slot: SessionSlot[Any] = SessionSlot()

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Consecutive frames of one video."}),
                **fields_inputs(FaceOptions, FACE_MAIN),
            },
            "optional": {
                "face_options": (FACE_OPTIONS_TYPE, {
                    "tooltip": "More detection and tracking settings (Face Settings node)."}),
                **_session_inputs(),
            },
            "hidden": {"prompt": "PROMPT"},
        }

    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("preview", "report")
    OUTPUT_TOOLTIPS = ("The frames with each tracked face boxed and numbered.",
                       "The face tracks as JSON (the tracks.json schema).")
    FUNCTION = "track"
    CATEGORY = CATEGORY
    DESCRIPTION = node_text(" ".join((__doc__ or "").split()))

    @in_node_words
    def track(self, images: torch.Tensor, face_options: FaceOptions | None = None,
              session: str = "", total_frames: int = 0, meta_batch: Any = None,
              prompt: Mapping[str, Any] | None = None, **values: Any
              ) -> tuple[torch.Tensor, str]:
        check_images(images)
        plan: ChunkPlan = plan_chunk(session, total_frames, meta_batch, prompt)
        faces = _face_options(values, face_options, causal=plan.key is not None)

        def start() -> tuple[Any, np.dtype]:
            return _face_stream(faces, host.weight_store()), choose_depth(images)

        return self.slot.run(
            plan, faces, (images.shape[1], images.shape[2]), images.shape[0], start,
            lambda stream, depth, first, final: _preview(stream, images, depth, first,
                                                         final=final))


def _face_stream(faces: FaceOptions, store: Any) -> Any:
    from vidrestore.faces import FaceStream, create_detector

    device = host.torch_device() or "auto"  # where RetinaFace runs; YuNet is CPU-only
    return FaceStream(create_detector(faces.detector, faces, device=device, store=store), faces)


def _preview(stream: Any, images: torch.Tensor, depth: np.dtype, first: int, *, final: bool
             ) -> tuple[torch.Tensor, str]:
    from vidrestore.faces.draw import draw_faces

    frames = frames_from_images(images, depth, first_index=first,
                                before_each=host.interrupt_check())
    tracks: dict[int, list[Any]] = {}
    collector = ImageCollector(images)

    def drawn() -> Iterator[Frame]:
        for ff in _stream_frames(stream, frames, final=final):
            for face in ff.faces:
                tracks.setdefault(face.track_id, []).append(face)
            yield ff.frame.with_pixels(draw_faces(ff.frame.pixels, ff.faces))

    _run_frames(drawn(), collector, host.Progress(images.shape[0]))
    return collector.result(), tracks_report(tracks, images, first)


def _stream_frames(stream: Any, frames: Iterable[Frame], *, final: bool) -> Iterator[Any]:
    for frame in frames:
        yield from stream.push(frame)
    if final:
        yield from stream.flush()


def tracks_report(tracks: Mapping[int, list[Any]], images: torch.Tensor, first: int) -> str:
    """The tracks of one batch as JSON text in the ``tracks.json`` schema. Frame numbers count
    from the start of the video (``first`` is the batch's first frame); an ``IMAGE`` batch has
    no timestamps, so ``pts`` and ``time`` are null."""
    from vidrestore.faces.report import dumps
    from vidrestore.faces.report import tracks_report as build

    return dumps(build(tracks, width=int(images.shape[2]), height=int(images.shape[1]),
                       first_frame=first, frame_count=int(images.shape[0])))


NODE_CLASS_MAPPINGS = {
    "VidrestoreLoadCodeFormer": LoadCodeFormer,
    "VidrestoreFaceSettings": FaceSettings,
    "VidrestoreRestoreFaces": RestoreFacesVideo,
    "VidrestoreTrackFaces": TrackFacesPreview,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "VidrestoreLoadCodeFormer": "Load CodeFormer (vidrestore)",
    "VidrestoreFaceSettings": "Face Settings (vidrestore)",
    "VidrestoreRestoreFaces": "Restore Faces (video)",
    "VidrestoreTrackFaces": "Track Faces (preview)",
}
