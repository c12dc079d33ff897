"""Paste-back masks in aligned-face space: a feathered template, or face parsing.

Parsing (facexlib's ParseNet with its published weights) follows the real outline of each
restored face; its per-frame masks are averaged along each track (the faces are aligned, so the
masks correspond pixel for pixel) so that the outline does not shimmer. Without the parsing
model file, the feathered template mask is used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from ..errors import CheckpointError, UsageError, WeightsError
from .blend import template_mask

if TYPE_CHECKING:
    from ..weights import WeightStore

log = logging.getLogger(__name__)

# CelebAMask-HQ labels of ParseNet: skin, brows, eyes, glasses, nose, mouth, lips.
FACE_LABELS = (1, 2, 3, 4, 5, 6, 10, 11, 12, 13)
TRACK_EMA = 0.5  # weight of the new frame's parsing mask


class TemplateMasker:
    """The same feathered mask for every face: cheap, stable, no model needed."""

    name = "template"

    def __init__(self) -> None:
        self.mask = template_mask()

    def masks(self, faces: list[np.ndarray], track_ids: list[int]) -> list[np.ndarray]:
        return [self.mask] * len(faces)

    def reset(self) -> None:
        pass


class ParseMasker:
    """Face-parsing masks, smoothed along each track and bounded by the template mask."""

    name = "parse"

    def __init__(self, model_path: str, device: torch.device) -> None:
        from ..models.loader import load_state_into

        if not parsing_available():
            raise UsageError("--mask parse: face parsing needs the facexlib package "
                             "(pip install 'vidrestore[parse]')")
        from facexlib.parsing.parsenet import ParseNet

        net = ParseNet(in_size=512, out_size=512, parsing_ch=19)
        load_state_into(net, model_path, "ParseNet face parsing")
        self.net = net.eval().to(device)
        self.device = device
        self.outer = template_mask()
        self.outer = cv2.dilate(self.outer, np.ones((31, 31), np.uint8))
        self._track: dict[int, np.ndarray] = {}

    @torch.inference_mode()
    def masks(self, faces: list[np.ndarray], track_ids: list[int]) -> list[np.ndarray]:
        x = torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).to(self.device)
        x = (x.float() - 0.5) / 0.5
        labels = self.net(x)[0].argmax(dim=1).cpu().numpy()
        out = []
        for lab, tid in zip(labels, track_ids, strict=True):
            m: np.ndarray = np.isin(lab, FACE_LABELS).astype(np.float32)
            m = cv2.GaussianBlur(cv2.erode(m, np.ones((9, 9), np.uint8)), (41, 41), 0)
            prev = self._track.get(tid)
            if prev is not None:
                m = TRACK_EMA * m + (1.0 - TRACK_EMA) * prev
            self._track[tid] = m
            m = m * self.outer
            m[m < 1.0 / 1024] = 0.0
            out.append(m)
        return out

    def reset(self) -> None:
        self._track.clear()


def parsing_available() -> bool:
    """Whether facexlib (which holds the ParseNet network) can be imported here."""
    import importlib.util

    return importlib.util.find_spec("facexlib") is not None


def create_masker(kind: str, device: torch.device, store: WeightStore
                  ) -> TemplateMasker | ParseMasker:
    """``template``, ``parse`` (needs the parsenet file) or ``auto`` (parse if cached and
    facexlib is installed)."""
    if kind == "template":
        return TemplateMasker()
    if kind == "auto":
        status = store.status("parsenet")
        if status.state not in ("present", "unverified") or not parsing_available():
            log.info("face parsing model or facexlib not available; using the template mask")
            return TemplateMasker()
        try:
            return ParseMasker(str(status.path), device)
        except (CheckpointError, WeightsError) as exc:  # an optional file: say so, go on
            log.warning("%s; using the template mask (--mask parse would stop here)", exc)
            return TemplateMasker()
    return store.load("parsenet", lambda path: ParseMasker(str(path), device))
