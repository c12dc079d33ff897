"""OpenCV's YuNet face detector (the default): small, fast, CPU-only.

The network runs in ONNX Runtime where it is installed (``engine="auto"``; the
``onnxruntime`` extra): the same detections as OpenCV's ``cv2.FaceDetectorYN`` (its padding,
decoding and NMS are repeated here step for step), in about two thirds of the time on the CPU,
with its threads idle between frames instead of spinning. Elsewhere OpenCV runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ... import runtimes
from ...errors import CheckpointError, WeightsError
from ..records import Detection
from .base import FaceDetector

ENGINES = ("auto", "opencv", "onnxruntime")
TOP_K = 5000
"""Candidates kept before NMS (OpenCV's setting for this detector)."""
_STRIDES = (8, 16, 32)
_HEADS = tuple(f"{head}_{s}" for head in ("cls", "obj", "bbox", "kps") for s in _STRIDES)


def available() -> bool:
    """Whether this OpenCV has ``cv2.FaceDetectorYN``."""
    return hasattr(cv2, "FaceDetectorYN")


class YuNetDetector(FaceDetector):
    """YuNet: OpenCV's ``cv2.FaceDetectorYN``, or the same network and decoding in ONNX
    Runtime (``engine``: ``auto`` takes ONNX Runtime where it is installed)."""

    name = "yunet"

    def __init__(
        self,
        model_path: Path | str,
        *,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        detect_size: int = 640,
        engine: str = "auto",
    ) -> None:
        super().__init__(score_threshold, nms_threshold, detect_size)
        if engine not in ENGINES:
            raise ValueError(f"YuNet engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise WeightsError(f"{self.model_path}: YuNet model file not found")
        if engine == "auto":
            engine = "onnxruntime" if runtimes.installed("onnxruntime") else "opencv"
        self.engine = engine
        self._net: Any = (_OnnxYuNet(self.model_path, self.score_threshold, self.nms_threshold)
                          if engine == "onnxruntime" else _opencv_yunet(
                              self.model_path, self.score_threshold, self.nms_threshold))
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


def _opencv_yunet(path: Path, score: float, nms: float) -> Any:
    log_api = cv2.utils.logging
    level = log_api.getLogLevel()
    # OpenCV's DNN engine warns about unsupported targets on every load: not for our users.
    log_api.setLogLevel(log_api.LOG_LEVEL_ERROR)
    try:
        return cv2.FaceDetectorYN.create(str(path), "", (320, 320), score, nms, TOP_K)
    except cv2.error as exc:
        raise CheckpointError(f"{path}: not a YuNet ONNX model ({exc.msg})") from exc
    finally:
        log_api.setLogLevel(level)


class _OnnxYuNet:
    """``cv2.FaceDetectorYN``'s ``setInputSize`` / ``detect`` with the network in ONNX Runtime:
    the picture padded to a multiple of 32 with zeros, each stride's anchors decoded, scores
    ``sqrt(cls * obj)``, and OpenCV's own NMS on the integer boxes, as OpenCV does."""

    def __init__(self, path: Path, score: float, nms: float) -> None:
        import onnx

        data = path.read_bytes()
        try:
            outputs = tuple(o.name for o in onnx.load_model_from_string(data).graph.output)
        except Exception as exc:  # onnx's parse errors have no common base
            raise CheckpointError(f"{path}: not a YuNet ONNX model ({exc})") from exc
        if outputs != _HEADS:
            raise CheckpointError(f"{path}: not a YuNet ONNX model (outputs {', '.join(outputs)}"
                                  f"; YuNet's are {', '.join(_HEADS)})")
        self._graph = runtimes.load("onnxruntime", data, bfloat16=False,
                                    threads=max(1, cv2.getNumThreads()))
        self.score, self.nms = score, nms
        self._size = (0, 0)

    def setInputSize(self, size: tuple[int, int]) -> None:
        self._size = size

    def detect(self, bgr: np.ndarray) -> tuple[int, np.ndarray | None]:
        h, w = bgr.shape[:2]
        if (w, h) != self._size:
            raise ValueError(f"picture {w}x{h} is not the input size {self._size}")
        pad_w, pad_h = ((w - 1) // 32 + 1) * 32, ((h - 1) // 32 + 1) * 32
        blob = np.zeros((1, 3, pad_h, pad_w), np.float32)
        blob[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        heads = dict(zip(_HEADS, self._graph.run([blob]), strict=True))
        found = [f for s in _STRIDES if (f := self._decode(heads, s, pad_w)) is not None]
        if not found:
            return 0, None
        faces = np.concatenate(found)
        if len(faces) > 1:
            boxes = [tuple(int(v) for v in box) for box in faces[:, :4]]
            keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), self.score, self.nms, 1.0,
                                    TOP_K)
            faces = faces[np.asarray(keep, np.int64).reshape(-1)]
        return 1, faces

    def _decode(self, heads: dict[str, np.ndarray], stride: int, pad_w: int
                ) -> np.ndarray | None:
        """Rows ``x, y, w, h, 5 landmarks, score`` (float32) of one stride's anchors that pass
        the score threshold."""
        cls = np.clip(heads[f"cls_{stride}"][0, :, 0], 0.0, 1.0)
        obj = np.clip(heads[f"obj_{stride}"][0, :, 0], 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= self.score)
        if not keep.size:
            return None
        cols = pad_w // stride
        c = (keep % cols).astype(np.float32)[:, None]
        r = (keep // cols).astype(np.float32)[:, None]
        box, kps = heads[f"bbox_{stride}"][0, keep], heads[f"kps_{stride}"][0, keep]
        size = np.exp(box[:, 2:4]) * stride
        centre = (np.hstack([c, r]) + box[:, 0:2]) * stride
        rows = np.empty((keep.size, 15), np.float32)
        rows[:, 0:2] = centre - size / 2
        rows[:, 2:4] = size
        rows[:, 4:14:2] = (kps[:, 0::2] + c) * stride
        rows[:, 5:14:2] = (kps[:, 1::2] + r) * stride
        rows[:, 14] = score[keep]
        return rows


def _yunet_row(row: np.ndarray) -> Detection:
    x, y, w, h = (float(v) for v in row[:4])
    return Detection(np.array([x, y, x + w, y + h]), float(row[14]), row[4:14].reshape(5, 2))
