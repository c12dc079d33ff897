"""Choosing a detector by name: :func:`create_detector`, the public entry.

Backends register only when they can be imported; asking for one that is missing raises (no
silent fallback). A model file comes from a local path or, verified, from a weights store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import UsageError
from ..options import FaceOptions
from . import retinaface, yunet
from .base import FaceDetector

if TYPE_CHECKING:
    from ...weights import WeightStore


def _make_yunet(options: FaceOptions, model_path: Path, device: str) -> FaceDetector:
    return yunet.YuNetDetector(
        model_path, score_threshold=options.score_threshold,
        nms_threshold=options.nms_threshold, detect_size=options.detect_size,
    )


def _make_retinaface(options: FaceOptions, model_path: Path, device: str) -> FaceDetector:
    return retinaface.RetinaFaceDetector(
        model_path, score_threshold=options.score_threshold,
        nms_threshold=options.nms_threshold, detect_size=options.detect_size, device=device,
    )


_Factory = Callable[[FaceOptions, Path, str], FaceDetector]
#: name -> (importable here?, factory, what it needs, its weights-manifest entry)
_BACKENDS: dict[str, tuple[Callable[[], bool], _Factory, str, str]] = {
    "yunet": (yunet.available, _make_yunet, "OpenCV >= 4.8 with cv2.FaceDetectorYN", "yunet"),
    "retinaface": (retinaface.available, _make_retinaface,
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
