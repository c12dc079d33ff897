"""Run an upscaling network over a large picture in tiles, without seams.

The picture is cut into cores that partition it; each core is run with ``pad`` pixels of real
context around it (less at the picture's edges, where the untiled run sees the network's own
zero padding too) and only the core's part of the output is kept. With enough context a core's
output equals the untiled run's (convolutions there see the same pixels), so there is no seam to
feather away; the default context is far past where a Real-ESRGAN network's response has decayed
below 1/255 (:func:`context`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: Pixels of context on each side of a tile, in input pixels: enough for a 23-block RRDB
#: (Real-ESRGAN x4plus) to give the untiled result within 1/255 on real photos (32 px left
#: differences of 12/255 at tile borders, 64 px 0.55/255).
DEFAULT_PAD = 64
#: Architectures with a smaller reach (the compact video net: 18 convolutions, exact at 24).
PADS = {"Compact": 24, "SPAN": 32}
#: Smallest tile side worth running (below it the context costs more than the tile).
MIN_TILE = 32


def context(architecture_id: str) -> int:
    """Context pixels a tile of this spandrel architecture needs (:data:`PADS`)."""
    return PADS.get(architecture_id, DEFAULT_PAD)


def auto_tile(height: int, width: int, scale: int, pad: int, budget: int,
              bytes_per_value: int = 4) -> int:
    """The largest tile side whose run fits ``budget`` bytes (0: the whole picture fits),
    taking three 64-channel feature maps at the output resolution as the peak (what an
    RRDB's upsampling tail holds)."""
    def cost(side_h: int, side_w: int) -> int:
        return side_h * side_w * scale * scale * 64 * bytes_per_value * 3

    if cost(height, width) <= budget:
        return 0
    side = int((budget / (scale * scale * 64 * bytes_per_value * 3)) ** 0.5) - 2 * pad
    return max(side, MIN_TILE)


@dataclass(frozen=True)
class Window:
    """A core (the output it owns) and the input window that is run for it, both in input
    pixels as ``(y0, y1, x0, x1)``."""

    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        y0, y1, x0, x1 = self.window
        return y1 - y0, x1 - x0


def windows(height: int, width: int, tile: int, pad: int = DEFAULT_PAD) -> list[Window]:
    """Cores of at most ``tile`` x ``tile`` covering the picture (even sizes: the last row and
    column are not slivers), each with its context window."""
    if tile <= 0 or (tile >= height and tile >= width):
        return [Window((0, height, 0, width), (0, height, 0, width))]
    tile = max(tile, MIN_TILE)

    def cuts(n: int) -> list[tuple[int, int]]:
        count = -(-n // tile)
        edges = [round(i * n / count) for i in range(count + 1)]
        return list(itertools.pairwise(edges))

    out = []
    for y0, y1 in cuts(height):
        for x0, x1 in cuts(width):
            out.append(Window((y0, y1, x0, x1), (max(y0 - pad, 0), min(y1 + pad, height),
                                                 max(x0 - pad, 0), min(x1 + pad, width))))
    return out


def run_tiled(run: Callable[[Tensor], Tensor], x: Tensor, scale: int, *, tile: int,
              pad: int = DEFAULT_PAD, per_call: int = 1) -> Tensor:
    """``run`` (``[N, C, h, w] -> [N, C, h*scale, w*scale]``) over ``x`` ``[B, C, H, W]`` in
    tiles of ``tile`` input pixels (0: whole), up to ``per_call`` windows of one shape (times
    ``B`` frames) per call. The result is on ``x``'s device, in ``run``'s dtype."""
    b, c, h, w = x.shape
    wins = windows(h, w, tile, pad)
    if len(wins) == 1:
        return run(x)
    out: Tensor | None = None
    by_shape: dict[tuple[int, int], list[Window]] = {}
    for win in wins:
        by_shape.setdefault(win.shape, []).append(win)
    s = scale
    for group in by_shape.values():
        for i in range(0, len(group), max(per_call, 1)):
            chunk = group[i: i + max(per_call, 1)]
            batch = torch.cat([x[:, :, w_.window[0]:w_.window[1], w_.window[2]:w_.window[3]]
                               for w_ in chunk])
            y = run(batch)
            if out is None:
                out = torch.empty((b, c, h * s, w * s), dtype=y.dtype, device=x.device)
            for k, w_ in enumerate(chunk):
                (cy0, cy1, cx0, cx1), (wy0, _, wx0, _) = w_.core, w_.window
                part = y[k * b:(k + 1) * b, :, (cy0 - wy0) * s:(cy1 - wy0) * s,
                         (cx0 - wx0) * s:(cx1 - wx0) * s]
                out[:, :, cy0 * s:cy1 * s, cx0 * s:cx1 * s] = part.to(x.device)
    assert out is not None
    return out
