"""Face detectors behind one small interface, and the functions that look for small faces.

A detector takes a batch of RGB images (``uint8`` or ``uint16``; 16-bit pictures are scaled to
8 bits for detection) and returns, per image, the faces it finds in that image's pixels. Each
image larger than ``detect_size`` on its long side is shrunk to it first, so a 4K frame costs
about what a 640-pixel one does; coordinates are mapped back to the full frame.

Small faces: a detector finds faces down to about ``MIN_DETECT_PX`` pixels in the picture it
sees. Faces smaller than that at the working size are found by :func:`detect_tiles` (the frame at
a finer scale, cut into ``detect_size`` tiles) and then followed by :func:`detect_regions` (a
small crop around each such face at full resolution). :class:`~vidrestore.faces.stream.FaceStream`
decides when to use them; neither pays the cost of a full-resolution pass on every frame.

Backends register only when they can be imported; asking for one that is missing raises.
"""

from __future__ import annotations

import abc
import logging
import math
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import CheckpointError, UsageError, WeightsError
from .options import FaceOptions
from .records import Detection, box_iou

if TYPE_CHECKING:
    from ..weights import WeightStore

log = logging.getLogger(__name__)

MIN_DETECT_PX = 16
"""Smallest face width (pixels of the picture a detector sees) found reliably."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The 8-bit view a detector works on (16-bit pixels are scaled, rounding)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise ValueError(f"detectors take uint8 or uint16 RGB images, got {image.dtype}")


def working_scale(width: int, height: int, detect_size: int) -> float:
    """Factor a ``width`` x ``height`` picture is shrunk by before detection (1 = not shrunk)."""
    return min(1.0, detect_size / max(width, height))


def resize_by(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (area filter when shrinking)."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


DITHER_PERIOD = 32
"""Largest stride of the detectors' feature grids (pixels); shifts are taken below it."""


def dither_shift(index: int) -> tuple[int, int]:
    """A per-frame shift of the detector's sampling grid, spread evenly over the grid period.

    A CNN detector's landmark error depends on where the face sits on its stride grid (8, 16,
    32 pixels), so a slowly moving face gets a slowly changing error that no temporal filter
    can remove. Shifting the picture by a different amount on every frame (an additive
    recurrence with the plastic number, which covers the square evenly) turns that error into
    frame-to-frame noise, which the landmark smoother then averages away.
    """
    g = 1.324717957244746
    p = DITHER_PERIOD
    return int((0.5 + index / g) % 1.0 * p), int((0.5 + index / (g * g)) % 1.0 * p)


def _pad(image: np.ndarray, shift: tuple[int, int] | None) -> np.ndarray:
    """Pad by ``shift`` at the top-left and the rest of a period at the bottom-right, so every
    shifted picture has the same size (the detector keeps its input size)."""
    if shift is None:
        return image
    sx, sy = shift
    p = DITHER_PERIOD
    return cv2.copyMakeBorder(image, sy, p - sy, sx, p - sx, cv2.BORDER_REPLICATE)


def nms(detections: Sequence[Detection], iou: float) -> list[Detection]:
    """Keep the best-scoring of every group of detections overlapping by more than ``iou``."""
    if len(detections) < 2:
        return list(detections)
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    boxes = np.stack([d.box for d in detections])
    overlaps = box_iou(boxes, boxes)
    kept: list[int] = []
    for i in order:
        if all(overlaps[i, j] <= iou for j in kept):
            kept.append(i)
    return [detections[i] for i in kept]


class FaceDetector(abc.ABC):
    """Finds faces with five landmarks in batches of images.

    Subclasses implement :meth:`_detect_prepared`, which receives 8-bit RGB pictures no larger
    than ``detect_size`` (plus ``DITHER_PERIOD`` when dithered) and returns detections in their
    pixels.
    """

    name: str = ""

    def __init__(self, score_threshold: float, nms_threshold: float, detect_size: int) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.detect_size = int(detect_size)

    def detect(
        self,
        images: Sequence[np.ndarray],
        shifts: Sequence[tuple[int, int]] | None = None,
    ) -> list[list[Detection]]:
        """Faces in each image, in that image's pixel coordinates.

        ``shifts`` (one per image, pixels of the picture the detector sees) move the picture
        right/down (0 to ``DITHER_PERIOD - 1``) before detection; see :func:`dither_shift`.
        """
        scales = [working_scale(im.shape[1], im.shape[0], self.detect_size) for im in images]
        offsets: list[tuple[int, int] | None] = (
            list(shifts) if shifts is not None else [None] * len(images)
        )
        if len(offsets) != len(images):
            raise ValueError(f"{len(offsets)} shifts for {len(images)} images")
        prepared = [
            _pad(resize_by(to_uint8(im), s), shift)
            for im, s, shift in zip(images, scales, offsets, strict=True)
        ]
        found = self._detect_prepared(prepared) if prepared else []
        out = []
        for dets, s, shift in zip(found, scales, offsets, strict=True):
            sx, sy = shift or (0, 0)
            out.append([d.moved(1.0, (-sx, -sy)).moved(s) for d in dets])
        return out

    @abc.abstractmethod
    def _detect_prepared(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect in 8-bit RGB pictures that need no resizing."""


class YuNetDetector(FaceDetector):
    """OpenCV's YuNet (``cv2.FaceDetectorYN``): small, fast, CPU-only."""

    name = "yunet"

    def __init__(
        self,
        model_path: Path | str,
        *,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        detect_size: int = 640,
    ) -> None:
        super().__init__(score_threshold, nms_threshold, detect_size)
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise WeightsError(f"{self.model_path}: YuNet model file not found")
        log_api = cv2.utils.logging
        level = log_api.getLogLevel()
        # OpenCV's DNN engine warns about unsupported targets on every load: not for our users.
        log_api.setLogLevel(log_api.LOG_LEVEL_ERROR)
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(self.model_path), "", (320, 320), self.score_threshold, self.nms_threshold, 5000
            )
        except cv2.error as exc:
            raise CheckpointError(f"{self.model_path}: not a YuNet ONNX model ({exc.msg})") from exc
        finally:
            log_api.setLogLevel(level)
        self._size = (320, 320)

    def _detect_prepared(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        out = []
        for image in images:
            size = (image.shape[1], image.shape[0])
            if size != self._size:
                self._net.setInputSize(size)
                self._size = size
            _, rows = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            out.append([] if rows is None else [_yunet_row(r) for r in rows])
        return out


def _yunet_row(row: np.ndarray) -> Detection:
    x, y, w, h = (float(v) for v in row[:4])
    return Detection(np.array([x, y, x + w, y + h]), float(row[14]), row[4:14].reshape(5, 2))


class RetinaFaceDetector(FaceDetector):
    """facexlib's RetinaFace with a ResNet-50 backbone, the published pipeline's detector.

    The network comes from facexlib; its weights are loaded here from a local file (facexlib
    never downloads anything). Same-sized pictures are detected in one batch.
    """

    name = "retinaface"

    def __init__(
        self,
        model_path: Path | str | None,
        *,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        detect_size: int = 640,
        device: str = "cpu",
    ) -> None:
        super().__init__(score_threshold, nms_threshold, detect_size)
        import torch
        from facexlib.detection.retinaface import RetinaFace

        self.device = resolve_device(device)
        with warnings.catch_warnings():
            # torchvision warns about facexlib's ``resnet50(pretrained=False)``; nothing is fetched.
            warnings.simplefilter("ignore", UserWarning)
            self.net = RetinaFace(network_name="resnet50", half=False, device=self.device)
        if model_path is not None:
            from ..models.loader import load_state_into

            load_state_into(self.net, model_path, "RetinaFace ResNet-50")
        self.net.eval()
        self._torch = torch

    def _detect_prepared(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        out: list[list[Detection]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(image.shape, []).append(i)
        torch = self._torch
        for indices in groups.values():
            bgr = np.stack([images[i][:, :, ::-1] for i in indices]).astype(np.float32)
            batch = torch.from_numpy(bgr).to(self.net.device)
            with torch.inference_mode():
                boxes, points = self.net.batched_detect_faces(
                    batch, conf_threshold=self.score_threshold,
                    nms_threshold=self.nms_threshold, use_origin_size=True,
                )
            for i, b, p in zip(indices, boxes, points, strict=True):
                b = np.asarray(b, dtype=np.float32).reshape(-1, 5)
                p = np.asarray(p, dtype=np.float32).reshape(-1, 10)
                out[i] = [Detection(bb[:4], bb[4], pp.reshape(5, 2))
                          for bb, pp in zip(b, p, strict=True)]
        return out


def resolve_device(device: str) -> str:
    """``'auto'`` becomes ``'cuda'`` when a GPU is usable, else ``'cpu'``; others pass through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _yunet_available() -> bool:
    return hasattr(cv2, "FaceDetectorYN")


def _retinaface_available() -> bool:
    try:
        import facexlib.detection.retinaface  # noqa: F401
    except ImportError:
        return False
    return True


def _make_yunet(options: FaceOptions, model_path: Path, device: str) -> FaceDetector:
    return YuNetDetector(
        model_path, score_threshold=options.score_threshold,
        nms_threshold=options.nms_threshold, detect_size=options.detect_size,
    )


def _make_retinaface(options: FaceOptions, model_path: Path, device: str) -> FaceDetector:
    return RetinaFaceDetector(
        model_path, score_threshold=options.score_threshold,
        nms_threshold=options.nms_threshold, detect_size=options.detect_size, device=device,
    )


_Factory = Callable[[FaceOptions, Path, str], FaceDetector]
#: name -> (importable here?, factory, what it needs, its weights-manifest entry)
_BACKENDS: dict[str, tuple[Callable[[], bool], _Factory, str, str]] = {
    "yunet": (_yunet_available, _make_yunet, "OpenCV >= 4.8 with cv2.FaceDetectorYN", "yunet"),
    "retinaface": (_retinaface_available, _make_retinaface,
                   "the facexlib package (pip install 'vidrestore[retinaface]')",
                   "retinaface_resnet50"),
}


def available_detectors() -> list[str]:
    """Names of the detectors whose backend can be imported here."""
    return [name for name, (ok, *_) in _BACKENDS.items() if ok()]


def create_detector(
    name: str,
    options: FaceOptions | None = None,
    model_path: Path | str | None = None,
    device: str = "cpu",
    *,
    store: WeightStore | None = None,
) -> FaceDetector:
    """The detector ``name`` configured by ``options``.

    Args:
        name: ``"yunet"`` or ``"retinaface"``.
        options: thresholds and working size (defaults: ``FaceOptions()``).
        model_path: a local model file; ``None`` takes the verified file from ``store``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (RetinaFace only; YuNet runs on
            the CPU).
        store: where the model file comes from when ``model_path`` is None.

    Raises:
        UsageError: unknown name, a backend that cannot be imported here, or neither
            ``model_path`` nor ``store``.
        WeightsError, CheckpointError: the model file is missing or is not that model.
    """
    if name not in _BACKENDS:
        raise UsageError(f"--detector: {name!r} is not one of {', '.join(_BACKENDS)}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", device):  # refused even where unused
        raise UsageError(f"--device: {device!r} is not a device (auto, cpu, cuda, cuda:N, mps)")
    available, factory, needs, entry = _BACKENDS[name]
    if not available():
        raise UsageError(f"--detector {name}: not available here; it needs {needs}")
    if model_path is not None:
        return factory(options or FaceOptions(), Path(model_path), device)
    if store is None:
        raise UsageError(f"create_detector({name!r}): give a model_path or a WeightStore")
    return store.load(entry, lambda path: factory(options or FaceOptions(), path, device))


def detect_tiles(
    detector: FaceDetector, image: np.ndarray, scale: float, overlap: int
) -> list[Detection]:
    """Faces in ``image`` looked for at ``scale`` in overlapping ``detect_size`` tiles.

    ``overlap`` (pixels at ``scale``) should exceed the largest face the scan is meant for, so
    each such face lies whole in at least one tile. Results are in frame pixels, merged by NMS.
    """
    scaled = resize_by(image, scale)
    h, w = scaled.shape[:2]
    tile = detector.detect_size
    step = max(1, tile - overlap)
    xs = _starts(w, tile, step)
    ys = _starts(h, tile, step)
    crops, offsets = [], []
    for y in ys:
        for x in xs:
            crops.append(scaled[y : y + tile, x : x + tile])
            offsets.append((x, y))
    found: list[Detection] = []
    for dets, (x, y) in zip(detector.detect(crops), offsets, strict=True):
        found.extend(d.moved(1.0, (x, y)).moved(scale) for d in dets)
    return nms(found, detector.nms_threshold)


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / step)
    return sorted({min(i * step, length - tile) for i in range(n + 1)})


def detect_regions(
    detector: FaceDetector,
    image: np.ndarray,
    boxes: Sequence[np.ndarray],
    *,
    context: float = 1.5,
    target: float = 96.0,
) -> list[list[Detection]]:
    """Faces near each expected ``box``, looked for in a crop around it at a fine scale.

    The crop spans ``context`` box widths on each side of the box centre and is sampled so the
    face is about ``target`` pixels wide (never enlarged). Results are in frame pixels.
    """
    h, w = image.shape[:2]
    crops, places = [], []
    for box in boxes:
        x1, y1, x2, y2 = (float(v) for v in box)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = context * max(x2 - x1, y2 - y1, 1.0)
        left, top = max(0, int(cx - half)), max(0, int(cy - half))
        right, bottom = min(w, int(math.ceil(cx + half))), min(h, int(math.ceil(cy + half)))
        if right - left < 8 or bottom - top < 8:
            crops.append(None)
            places.append((0.0, left, top))
            continue
        scale = min(1.0, target / max(x2 - x1, 1.0))
        crops.append(resize_by(image[top:bottom, left:right], scale))
        places.append((scale, left, top))
    todo = [i for i, c in enumerate(crops) if c is not None]
    found = detector.detect([crops[i] for i in todo]) if todo else []
    out: list[list[Detection]] = [[] for _ in boxes]
    for i, dets in zip(todo, found, strict=True):
        scale, left, top = places[i]
        out[i] = [d.moved(scale, (left, top)) for d in dets]
    return out
