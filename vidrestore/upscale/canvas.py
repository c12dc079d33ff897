"""The output picture a frame's faces are pasted into: the source at ``scale`` times its size.

:class:`Upscaler` makes it with Lanczos (FFmpeg's scaler, :mod:`.resample`) or a background
model (:class:`~.model.BackgroundDescriptor`, tiled where the frame would not fit), keeps the
source's bit depth (16-bit pictures stay 16-bit) and black-and-white pictures gray, and
upsamples restored faces that are larger than 512 px in the output (``face_upsample``). Work can
run ahead on a background thread (:meth:`Upscaler.start`): the background of the next frames
while the faces of this one are restored; on CUDA it gets its own stream.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from ..restore.blend import to_gray
from .model import BackgroundDescriptor
from .resample import Lanczos
from .tiling import auto_tile, context, run_tiled

SCALES = (1, 2, 3, 4)
#: Memory a background run may take on the CPU (the GPU's budget is half its free memory).
CPU_BUDGET = 2 << 30


class Upscaler:
    """Frames to output pictures ``scale`` times larger.

    Args:
        scale: output size over source size (1 to 4).
        model: the background model (None: Lanczos). With ``scale`` 1 a model still runs: the
            background is enhanced at the source's size.
        tile: tile side in source pixels for the model (0: automatic from free memory).
        face_upsample: run the model on restored faces that are larger than 512 px in the
            output, instead of enlarging them in the paste-back's warp.
        batch: frames per model call (default: 4 on CUDA, 1 elsewhere).
    """

    def __init__(self, scale: int = 1, model: BackgroundDescriptor | None = None, *,
                 tile: int = 0, face_upsample: bool = False, batch: int = 0) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        self.scale = scale
        self.model = model
        self.tile = tile
        self.face_upsample = face_upsample and model is not None
        cuda = model is not None and model.device.type == "cuda"
        self.batch = batch or (4 if cuda else 1)
        self._pad = context(model.model.architecture.id) if model is not None else 0
        self._stream: Any = (torch.cuda.Stream(model.device) if model is not None and cuda
                             else None)
        self._enlarge = Lanczos()
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: dict[int, Future[np.ndarray]] = {}

    @property
    def active(self) -> bool:
        """Whether output pictures differ from the source's (else frames pass through)."""
        return self.scale != 1 or self.model is not None

    @property
    def name(self) -> str:
        return self.model.name if self.model is not None else "lanczos"

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        return width * self.scale, height * self.scale

    # -- pictures --------------------------------------------------------------------------------
    def canvas(self, pixels: np.ndarray, *, gray: bool = False) -> np.ndarray:
        """``pixels`` (HxWx3 uint8 or uint16) at ``scale`` times the size, same dtype."""
        return self.canvases([pixels], [gray])[0]

    def canvases(self, pictures: Sequence[np.ndarray], grays: Sequence[bool]) -> list[np.ndarray]:
        """:meth:`canvas` of several pictures (of one size: one model call per ``batch``)."""
        if self.model is None:
            return [self._lanczos(p) for p in pictures]
        out: list[np.ndarray] = []
        for i in range(0, len(pictures), self.batch):
            chunk = pictures[i:i + self.batch]
            if len({p.shape for p in chunk}) > 1:
                out += [self._model_canvas([p])[0] for p in chunk]
            else:
                out += self._model_canvas(chunk)
        for k, gray in enumerate(grays):
            if gray:
                out[k] = _gray(out[k])
        return out

    def _lanczos(self, pixels: np.ndarray) -> np.ndarray:
        if self.scale == 1:
            return pixels
        h, w = pixels.shape[:2]
        return self._enlarge(pixels, w * self.scale, h * self.scale)

    def _model_canvas(self, pictures: Sequence[np.ndarray]) -> list[np.ndarray]:
        assert self.model is not None
        full = 255.0 if pictures[0].dtype == np.uint8 else 65535.0
        x = torch.from_numpy(np.stack(pictures)).to(self.model.device)
        x = x.permute(0, 3, 1, 2).to(torch.float32).div_(full).to(self.model.dtype)
        y = self._run(x)
        h, w = pictures[0].shape[:2]
        images = y.float().clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
        return [_quantize(_resize(img, w * self.scale, h * self.scale), pictures[0].dtype)
                for img in images]

    def _run(self, x: Tensor) -> Tensor:
        assert self.model is not None
        b, _, h, w = x.shape
        tile = self.tile or self._auto_tile(b, h, w)
        if self._stream is None:
            return run_tiled(self.model.run, x, self.model.scale, tile=tile, pad=self._pad)
        caller = torch.cuda.current_stream(self.model.device)
        self._stream.wait_stream(caller)  # x was copied to the device on the caller's stream
        x.record_stream(self._stream)
        with torch.cuda.stream(self._stream):
            y = run_tiled(self.model.run, x, self.model.scale, tile=tile, pad=self._pad)
        caller.wait_stream(self._stream)
        return y

    def _auto_tile(self, batch: int, height: int, width: int) -> int:
        assert self.model is not None
        dev = self.model.device
        if dev.type == "cuda":
            free, _ = torch.cuda.mem_get_info(dev)
            budget = free // 2
        else:
            budget = CPU_BUDGET
        per_value = torch.finfo(self.model.dtype).bits // 8
        return auto_tile(height, width, self.model.scale, self._pad, budget // max(batch, 1),
                         per_value)

    # -- faces ----------------------------------------------------------------------------------
    def upsample(self, face: np.ndarray) -> np.ndarray:
        """A restored face (HxWx3 float32 in [0, 1]) at the model's scale (float32)."""
        assert self.model is not None
        x = torch.from_numpy(np.ascontiguousarray(face)).to(self.model.device)
        x = x.permute(2, 0, 1)[None].to(self.model.dtype)
        y = self._run(x)
        return y[0].float().clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()

    # -- running ahead --------------------------------------------------------------------------
    def start(self, keys: Sequence[int], pictures: Sequence[np.ndarray],
              grays: Sequence[bool]) -> None:
        """Begin the canvases of ``pictures`` on the background thread, to be taken by key
        with :meth:`take`."""
        if len(keys) == 1:
            self._ahead[keys[0]] = self._submit(self.canvas, pictures[0], gray=grays[0])
            return
        group = self._submit(self.canvases, list(pictures), list(grays))
        for k, key in enumerate(keys):
            self._ahead[key] = _part(group, k)

    def started(self, key: int) -> bool:
        return key in self._ahead

    def take(self, key: int) -> np.ndarray:
        """The canvas started for ``key`` (waits for it; re-raises its error)."""
        return self._wait(self._ahead.pop(key))

    def _submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """``fn`` on the background thread (made on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="vidrestore-background")
        return self._pool.submit(fn, *args, **kwargs)

    def _wait(self, future: Future[Any]) -> Any:
        """How the caller waits for work on the background thread: here it just blocks; a host
        that must keep its interface alive meanwhile (a progress bar, Cancel) overrides it."""
        return future.result()

    def forget(self) -> None:
        """Drop work started ahead (a snapshot was restored, or the run ended)."""
        for future in self._ahead.values():
            future.cancel()
        self._ahead.clear()

    def close(self) -> None:
        self.forget()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- cost -----------------------------------------------------------------------------------
    def seconds_per_frame(self, width: int, height: int) -> float:
        """Measured estimate of one frame's background time (a 64x64 probe, timed after a
        warm-up call, times the frame's tiled area)."""
        if self.model is None:
            return 0.0
        probe = np.zeros((64, 64, 3), np.uint8)
        self.canvas(probe)
        t0 = time.perf_counter()
        self.canvas(probe)
        per_pixel = (time.perf_counter() - t0) / (64 * 64)
        tile = self.tile or self._auto_tile(1, height, width)
        if tile <= 0:
            return per_pixel * width * height
        tiles = math.ceil(height / tile) * math.ceil(width / tile)
        side = min(tile, max(width, height)) + 2 * self._pad
        return per_pixel * tiles * side * side


def _part(group: Future[list[np.ndarray]], k: int) -> Future[np.ndarray]:
    part: Future[np.ndarray] = Future()

    def done(f: Future[list[np.ndarray]]) -> None:
        if f.cancelled():
            part.cancel()
        elif f.exception() is not None:
            part.set_exception(f.exception())
        else:
            part.set_result(f.result()[k])

    group.add_done_callback(done)
    return part


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Model output (float32) to the asked size: area averaging down, Lanczos up."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    inter = cv2.INTER_AREA if w > width else cv2.INTER_LANCZOS4
    return cv2.resize(img, (width, height), interpolation=inter)


def _quantize(img: np.ndarray, dtype: np.dtype[Any] | type) -> np.ndarray:
    full = 255.0 if np.dtype(dtype) == np.uint8 else 65535.0
    return np.clip(np.rint(img * full), 0, full).astype(dtype)


def _gray(pixels: np.ndarray) -> np.ndarray:
    """Luma on all three channels (a model's faint colour on a black-and-white picture)."""
    full = 255.0 if pixels.dtype == np.uint8 else 65535.0
    return _quantize(to_gray(pixels.astype(np.float32) / full), pixels.dtype)
