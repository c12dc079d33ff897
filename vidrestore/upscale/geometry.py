"""Where things land in a picture ``s`` times larger (pixel centres kept: output pixel ``u``
shows source position ``(u + 0.5) / s - 0.5``, as OpenCV's resize and the upscaling networks'
pixel shuffle place them)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsageError
from ..io.probe import MAX_PIXELS, VideoInfo


def output_affine(affine: np.ndarray, scale: float) -> np.ndarray:
    """A 2x3 map from source pixels (to an aligned face) as a map from the pixels of the
    picture ``scale`` times larger."""
    out = affine.astype(np.float64).copy()
    out[:, :2] /= scale
    out[:, 2] -= out[:, :2] @ np.full(2, (scale - 1) / 2.0)
    return out


def scaled_affine(affine: np.ndarray, scale: float) -> np.ndarray:
    """A 2x3 map into an aligned face as a map into that face enlarged ``scale`` times (a
    face the background model upsampled)."""
    out = affine.astype(np.float64) * scale
    out[:, 2] += (scale - 1) / 2.0
    return out


def scaled_info(info: VideoInfo, scale: int) -> VideoInfo:
    """The facts of the same video ``scale`` times larger (what its writer is given): the
    sample aspect ratio, timing, colour and everything else stay."""
    if scale == 1:
        return info
    return dataclasses.replace(info, width=info.width * scale, height=info.height * scale)


def check_output_size(width: int, height: int, scale: int) -> None:
    """Refuse an output larger than the pictures vidrestore handles, before any work."""
    if scale > 1 and width * height * scale * scale > MAX_PIXELS:
        raise UsageError(f"--upscale {scale}: the output would be {width * scale}x"
                         f"{height * scale}, more pixels than vidrestore handles "
                         f"({MAX_PIXELS} a picture); use a smaller --upscale")
