"""facexlib's RetinaFace (ResNet-50), the published pipeline's detector; needs facexlib."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..records import Detection
from .base import FaceDetector


def available() -> bool:
    """Whether facexlib's RetinaFace can be imported here."""
    try:
        import facexlib.detection.retinaface  # noqa: F401
    except ImportError:
        return False
    return True


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

        self.device = _device(device)
        with warnings.catch_warnings():
            # torchvision warns about facexlib's ``resnet50(pretrained=False)``; nothing is fetched.
            warnings.simplefilter("ignore", UserWarning)
            self.net = RetinaFace(network_name="resnet50", half=False, device=self.device)
        if model_path is not None:
            from ...models.loader import load_state_into

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


def _device(device: str) -> str:
    """``'auto'`` becomes ``'cuda'`` when a GPU is usable, else ``'cpu'`` (never MPS: the
    detector stays off it); others pass through. The restorer's placement policy is
    :func:`vidrestore.models.resolve_device`; hosts hand the detector the restorer's device."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
