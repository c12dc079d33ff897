"""OpenCV's YuNet face detector (the default): small, fast, CPU-only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ...errors import CheckpointError, WeightsError
from ..records import Detection
from .base import FaceDetector


def available() -> bool:
    """Whether this OpenCV has ``cv2.FaceDetectorYN``."""
    return hasattr(cv2, "FaceDetectorYN")


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
