"""Options of a batch run that the restore, face and writer options do not cover."""

from __future__ import annotations

from dataclasses import dataclass

from ..io.reader import parse_fps
from ..options import opt, validate

OUTPUT_CODECS = ("ffv1", "prores-hq", "prores-4444", "h264", "h265", "dpx", "tiff", "png")
DEINTERLACE = ("auto", "off", "bwdif", "yadif", "fields")
# codec choice -> (writer codec, ProRes profile, output suffix; "" = image-sequence folder)
CODEC_TABLE = {
    "ffv1": ("ffv1", "hq", ".mkv"),
    "prores-hq": ("prores", "hq", ".mov"),
    "prores-4444": ("prores", "4444", ".mov"),
    "h264": ("h264", "hq", ".mp4"),
    "h265": ("h265", "hq", ".mp4"),
    "dpx": ("", "", ".dpx"),
    "tiff": ("", "", ".tif"),
    "png": ("", "", ".png"),
}
INTRA_CODECS = ("ffv1", "prores")  # every packet stands alone: segments join by stream copy


@dataclass(frozen=True)
class BatchOptions:
    """How a batch stores its outputs and splits long inputs."""

    codec: str = opt(
        "ffv1", "Output format: ffv1 (lossless, .mkv), prores-hq / prores-4444 (.mov), h264 / "
        "h265 (.mp4), or dpx / tiff / png image sequences (a folder per input, 16-bit kept).",
        choices=OUTPUT_CODECS)
    deinterlace: str = opt(
        "auto", "Interlaced sources: 'fields' restores each field and weaves them back (output "
        "stays interlaced, same field order); 'bwdif'/'yadif' deinterlace first (progressive "
        "output); 'off' treats frames as progressive; 'auto' = fields when the source is "
        "interlaced, else off.", choices=DEINTERLACE)
    segment_frames: int = opt(
        0, "Frames per segment of a long input; a finished segment is never recomputed. "
        "0 = use --segment-seconds.", min=0)
    segment_seconds: float = opt(
        60.0, "Seconds per segment when --segment-frames is 0 (0 = one segment per input).",
        min=0.0)
    fps: str | None = opt(
        None, "Frame rate of image-sequence sources, e.g. 24 or 24000/1001 (required for them).")
    retries: int = opt(
        1, "Extra attempts for a job that fails; a job that failed more often is skipped until "
        "its input changes.", min=0, max=100)
    framemd5: bool = opt(
        True, "Write <output>.framemd5 (MD5 of every decoded output frame, FFmpeg framemd5 "
        "layout) beside the SHA-256 sidecar.")

    def __post_init__(self) -> None:
        validate(self)
        if self.fps is not None:
            parse_fps(self.fps)  # refused here, before any job runs

    @property
    def suffix(self) -> str:
        return CODEC_TABLE[self.codec][2]

    @property
    def is_sequence(self) -> bool:
        return CODEC_TABLE[self.codec][0] == ""
