"""What a video's colour tags mean, and the RGB conversions that honour them.

Tag values use FFmpeg's names (the ones ``ffprobe`` prints). The reader converts YUV to RGB with
the source's matrix and range; the writer converts back with the same ones, so a frame that
passes through unchanged returns to the source's values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

if TYPE_CHECKING:
    from .probe import VideoInfo

# AVColorRange, AVColorPrimaries, AVColorTransferCharacteristic, AVColorSpace, AVFieldOrder.
COLOR_RANGES = {0: "unknown", 1: "tv", 2: "pc"}
COLOR_PRIMARIES = {
    1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}
COLOR_TRANSFERS = {
    1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m",
    8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e",
    13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428",
    18: "arib-std-b67",
}
COLOR_MATRICES = {
    0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
    13: "chroma-derived-c", 14: "ictcp",
}
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


def code_of(table: dict[int, str], name: str) -> int:
    """The FFmpeg enum value for a name from one of the tables above (unknown -> unspecified)."""
    for code, known in table.items():
        if known == name:
            return code
    return next(code for code, known in table.items() if known == "unknown")


# swscale's names for the YUV matrices it can convert with (others use its default, BT.601).
SWS_MATRICES = {"bt709": "itu709", "fcc": "fcc", "bt470bg": "itu601", "smpte170m": "smpte170m",
                "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}

# 8-bit YUV -> RGB with exact rounding and full chroma interpolation: swscale's fast default
# darkens luma by about 0.7 code values, which a pass-through would bake into every frame. Deep
# sources keep the default path: full chroma interpolation into 16-bit RGB is wrong in swscale.
EXACT_RGB = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
FAST_RGB = Interpolation.BILINEAR


def to_rgb(reformatter: VideoReformatter, frame: Any, *, deep: bool, exact: bool = True
           ) -> np.ndarray:
    """A decoded frame as HxWx3 RGB: ``uint16`` (full 16-bit scale) when ``deep``, else uint8."""
    if deep:
        return reformatter.reformat(frame, format="rgb48le", interpolation=FAST_RGB).to_ndarray()
    flags = EXACT_RGB if exact else FAST_RGB
    return reformatter.reformat(frame, format="rgb24", interpolation=flags).to_ndarray()


FROM_RGB_THREADS = 1
"""swscale threads for RGB -> YUV: its sliced conversion is not deterministic (the same 8-bit
picture to yuv420p gave 7 different results in 150 runs, differing at a slice's first row),
and the pipeline's own threads already keep the cores busy."""


def rgb_frame(pixels: np.ndarray) -> Any:
    """HxWx3 RGB pixels (uint8, or uint16 full scale) as a PyAV frame for swscale."""
    fmt = "rgb48le" if pixels.dtype == np.uint16 else "rgb24"
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=fmt)


def is_rgb(pix_fmt: str) -> bool:
    """True for packed or planar RGB formats (rgb24, bgr0, gbrp10le, ...)."""
    return pix_fmt.startswith(("rgb", "bgr", "gbr"))


def output_range(info: VideoInfo, pix_fmt: str) -> str:
    """Full range for RGB output and full-range sources, else the usual limited range."""
    if is_rgb(pix_fmt) or info.pix_fmt.startswith("yuvj") or info.color_range == "pc":
        return "pc"
    return "tv"


def output_matrix(info: VideoInfo, pix_fmt: str) -> str:
    """The output's YUV matrix: the source's, BT.709 for an RGB source, none for RGB output."""
    if is_rgb(pix_fmt):
        return "gbr"
    if is_rgb(info.pix_fmt) and info.color_matrix in ("unknown", "gbr"):
        return "bt709"
    return info.color_matrix


def from_rgb_args(info: VideoInfo, pix_fmt: str) -> dict[str, Any]:
    """Arguments of ``VideoFrame.reformat`` from RGB back to the output's YUV format.

    The matrix and range are the ones the reader used for the opposite conversion, so a frame
    that passes through unchanged comes back with the source's values.
    """
    if is_rgb(pix_fmt):
        return {"format": pix_fmt, "threads": FROM_RGB_THREADS}
    matrix = output_matrix(info, pix_fmt)
    conv: dict[str, Any] = {"format": pix_fmt, "threads": FROM_RGB_THREADS,
                            "dst_color_range": 2 if output_range(info, pix_fmt) == "pc" else 1}
    if matrix in SWS_MATRICES:
        conv["dst_colorspace"] = SWS_MATRICES[matrix]
    return conv
