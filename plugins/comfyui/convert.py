"""ComfyUI ``IMAGE`` tensors to and from the library's :class:`Frame` records.

An ``IMAGE`` is a float32 tensor ``[B, H, W, C]`` with values in 0..1, one row per frame. Frames
carry RGB ``uint8`` or ``uint16`` pixels. Which of the two a batch becomes is decided once per
video (:func:`choose_depth`):

* **uint8** when the pictures are exactly 8-bit values (``k / 255``), which is what video loaders
  deliver for ordinary 8-bit video. Converting back is then exact, and the result is the same,
  bit for bit, as ``vidrestore restore`` on those frames.
* **uint16** otherwise (pictures made or altered by float operations, 16-bit images): 16 bits keep
  the float values to within 1/131070, where 8 bits would round them to 1/510.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction

import cv2
import numpy as np
import torch

from vidrestore.errors import UsageError
from vidrestore.io.frame import Frame

EXACT_8BIT_TOLERANCE = 1e-3  # in 8-bit code values; float32 k/255 is off by about 1e-5
DEFAULT_TIME_BASE = Fraction(1, 25)  # IMAGE batches carry no timing; pts are frame numbers


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """Refuse anything that is not an ``IMAGE`` batch with RGB or RGBA pictures."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise UsageError(f"{name}: expected an IMAGE batch [frames, height, width, channels], "
                         f"got {got}")
    if images.shape[0] == 0:
        raise UsageError(f"{name}: the batch holds no frames")
    if images.shape[-1] not in (3, 4):
        raise UsageError(f"{name}: pictures need 3 (RGB) or 4 (RGBA) channels, got "
                         f"{images.shape[-1]}")


def is_8bit(image: torch.Tensor) -> bool:
    """Whether a picture's values are all (within float error) multiples of 1/255."""
    v = image[..., :3].detach().to("cpu", torch.float32).numpy() * 255.0
    return bool(np.abs(v - np.rint(v)).max(initial=0.0) <= EXACT_8BIT_TOLERANCE)


def choose_depth(images: torch.Tensor) -> np.dtype:
    """``uint8`` for a batch of exact 8-bit pictures (judged by its first), else ``uint16``."""
    return np.dtype(np.uint8) if is_8bit(images[0]) else np.dtype(np.uint16)


def to_pixels(image: torch.Tensor, depth: np.dtype) -> np.ndarray:
    """One ``[H, W, C]`` float picture to RGB pixels of ``depth`` (rounded, clipped)."""
    scale = 255.0 if depth == np.uint8 else 65535.0
    v = image[..., :3].detach().to("cpu", torch.float32).numpy()
    return np.rint(np.clip(v, 0.0, 1.0) * scale).astype(depth)


def to_image(pixels: np.ndarray) -> torch.Tensor:
    """RGB ``uint8``/``uint16`` pixels to an ``[H, W, 3]`` float32 picture in 0..1."""
    scale = 255.0 if pixels.dtype == np.uint8 else 65535.0
    return torch.from_numpy(pixels.astype(np.float32) / np.float32(scale))


def frames_from_images(images: torch.Tensor, depth: np.dtype, *, first_index: int = 0,
                       time_base: Fraction = DEFAULT_TIME_BASE,
                       before_each: Callable[[], None] | None = None) -> Iterator[Frame]:
    """The pictures of a batch as frames numbered from ``first_index``, converted one at a time
    (so a long batch is never held twice). ``before_each`` runs before each frame is handed on:
    the place for the host's interrupt check."""
    for i in range(images.shape[0]):
        if before_each is not None:
            before_each()
        index = first_index + i
        yield Frame(index, index, time_base, to_pixels(images[i], depth))


class ImageCollector:
    """Fills an output ``IMAGE`` batch frame by frame, keeping an input's alpha channel.

    With ``scale`` S the output pictures are S times the input's size (upscaled frames); an
    alpha channel is then enlarged with Lanczos, as the Lanczos background is.
    """

    def __init__(self, like: torch.Tensor, scale: int = 1) -> None:
        b, h, w, c = like.shape
        self.scale = scale
        self.images = torch.empty((b, h * scale, w * scale, c), dtype=torch.float32)
        self._alpha = like[..., 3:] if c == 4 else None
        self.count = 0

    def add(self, frame: Frame) -> None:
        i = self.count
        if i >= self.images.shape[0]:
            raise RuntimeError(f"more frames came back than were sent ({i + 1})")
        self.images[i, ..., :3] = to_image(frame.pixels)
        if self._alpha is not None:
            self.images[i, ..., 3:] = self._scaled_alpha(i)
        self.count += 1

    def _scaled_alpha(self, i: int) -> torch.Tensor:
        assert self._alpha is not None
        alpha = self._alpha[i].to("cpu", torch.float32)
        if self.scale == 1:
            return alpha
        h, w = self.images.shape[1:3]
        big = cv2.resize(alpha.numpy(), (w, h), interpolation=cv2.INTER_LANCZOS4)
        return torch.from_numpy(np.clip(big, 0.0, 1.0)).reshape(h, w, 1)

    def result(self) -> torch.Tensor:
        if self.count != self.images.shape[0]:
            raise RuntimeError(f"{self.count} of {self.images.shape[0]} frames came back")
        return self.images
