"""The encoding vocabulary in one place: codec names, their encoders and containers, and the
pixel format each encodes a source in. The writer and the batch join both use it."""

from __future__ import annotations

import logging
from pathlib import Path

import av

from ..errors import UsageError
from .probe import VideoInfo, bit_depth

log = logging.getLogger(__name__)

CODECS = ("auto", "h264", "h265", "ffv1", "prores")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
           "veryslow", "placebo")
PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4, "4444xq": 5}
ENCODERS = {"h264": "libx264", "h265": "libx265", "ffv1": "ffv1", "prores": "prores_ks"}
CODEC_IDS = {"h264": "h264", "h265": "hevc", "ffv1": "ffv1", "prores": "prores"}
# Muxers that take codecs FFmpeg's codec query does not list (MPEG-TS maps them itself).
ALSO_HOLDS = {"mpegts": frozenset({"h264", "hevc"})}


def muxer_for(dst: Path) -> str | None:
    """The muxer for a file name (mov and mp4 are told apart by the suffix)."""
    suffix = dst.suffix.lower()
    return {".mov": "mov", ".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska"}.get(suffix)


def containers_for(codec: str) -> str:
    """The file suffixes that hold ``codec`` (for error messages)."""
    return {"ffv1": ".mkv", "prores": ".mov or .mkv"}.get(codec, ".mp4, .mov, .mkv or .ts")


def encoder_pix_fmts(encoder: str) -> list[str]:
    """The pixel formats an encoder lists (none listed: an empty list)."""
    return [f.name for f in av.codec.Codec(encoder, "w").video_formats or ()]


def pick_pix_fmt(encoder: str, info: VideoInfo, codec: str, prores_profile: str) -> str:
    """The encoder format closest to the source: same chroma, never fewer bits if avoidable.

    H.264/H.265 cannot subsample an odd dimension, so odd sizes get 4:4:4 instead of a crop.
    FFV1 stores RGB sources (image sequences) as planar RGB, which keeps them bit-exact.
    """
    if codec == "prores":
        return "yuv444p10le" if prores_profile.startswith("4444") else "yuv422p10le"
    supported = encoder_pix_fmts(encoder)
    plain = info.pix_fmt.replace("yuvj", "yuv")
    fmt = av.VideoFormat(plain)
    depth = bit_depth(plain)
    if codec == "ffv1" and fmt.is_rgb:
        planar = "gbrp" if depth <= 8 else f"gbrp{min(16, max(10, depth))}le"
        if planar in supported:
            return planar
    if fmt.is_rgb or len(fmt.components) < 3:
        chroma = "444" if fmt.is_rgb else "420"
    else:
        cw, ch = fmt.chroma_width(64), fmt.chroma_height(64)
        chroma = "444" if cw == 64 else ("422" if ch == 64 else "420")
    odd = info.width % 2 or info.height % 2
    if odd and codec in ("h264", "h265") and chroma != "444":
        log.warning("%dx%d has an odd side; %s stores it as 4:4:4", info.width, info.height, codec)
        chroma = "444"
    elif plain in supported:
        return plain
    depths = sorted({depth, 8, 10, 12, 16}, key=lambda d: (d < depth, abs(d - depth)))
    for d in depths:
        for c in dict.fromkeys((chroma, "444", "422", "420")):
            name = f"yuv{c}p" + ("" if d == 8 else f"{d}le")
            if name in supported:
                if d < depth:
                    log.warning("%s keeps at most %d bits; the %d-bit source is reduced",
                                encoder, d, depth)
                return name
    return supported[0]


def check_pix_fmt(encoder: str, pix_fmt: str | None, dst: Path) -> None:
    supported = encoder_pix_fmts(encoder)
    if pix_fmt not in supported:
        raise UsageError(f"{dst}: {encoder} cannot encode pixel format {pix_fmt}; "
                         f"allowed: {', '.join(supported)}")
