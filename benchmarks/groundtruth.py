"""Clips with known landmark paths, made from real footage.

A sharp source video with one large face (``shared/media/vr_face_4.mp4``) is detected frame by
frame at full resolution on a fixed grid; those landmarks, lightly smoothed (Gaussian, sigma
1.5 frames), are taken as the truth of the source. Every source frame is then moved by a known
similarity about the face centre (slow roll, zoom, pan, hand-held shake), shrunk so the face is
small, laid on a canvas whose borders are filled by reflection, degraded (blur, sensor noise,
JPEG, H.264 at a high CRF) and encoded with PyAV. The truth goes through the same similarity, so
the clip's true landmarks are known on every frame: ``build_clip`` returns the clip and them.

The truth is the detector's own view of the sharp, large face; an estimate on the small,
degraded, moving copy is judged by how well it follows that view through the known motion.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidrestore.faces import FaceOptions, create_detector
from vidrestore.faces.metrics import gaussian_baseline
from vidrestore.io.color import FROM_RGB_THREADS
from vidrestore.io.reader import VideoReader

TRUTH_SIGMA = 1.5
"""Gaussian (frames) applied to the source's detections to make the truth."""


@dataclass(frozen=True)
class MotionSpec:
    """How one ground-truth clip moves and degrades the source.

    Motion (frame ``t``): zoom ``1 + zoom * sin(2 pi t / zoom_period)``, roll
    ``roll_deg * sin(2 pi t / roll_period)`` about the face centre, a pan of
    ``pan * sin(2 pi t / pan_period)`` plus ``drift * t`` canvas px, and shake: a mean-reverting
    random walk (AR(1), coefficient 0.9) with a standard deviation of ``shake_px`` canvas px.
    Size: the face box is ``face_px`` wide at zoom 1, centred on a ``canvas`` (w, h).
    Degradation, in this order: Gaussian blur ``blur`` px, Gaussian noise ``noise`` (8-bit
    levels), JPEG at quality ``jpeg`` (0 = none), H.264 at ``crf``.
    """

    name: str
    frames: int = 120
    start: int = 0
    canvas: tuple[int, int] = (640, 360)
    face_px: float = 90.0
    zoom: float = 0.0
    zoom_period: float = 90.0
    roll_deg: float = 0.0
    roll_period: float = 100.0
    pan: tuple[float, float] = (0.0, 0.0)
    pan_period: float = 120.0
    drift: tuple[float, float] = (0.0, 0.0)
    shake_px: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg: int = 0
    crf: int = 20
    seed: int = 0

    def describe(self) -> dict:
        return asdict(self)


GT_CLIPS = (
    MotionSpec("gt_roll", canvas=(480, 360), face_px=110, roll_deg=15, roll_period=100,
               zoom=0.05, zoom_period=150, shake_px=0.5, blur=0.6, noise=2, crf=24, seed=1),
    MotionSpec("gt_zoompan", face_px=90, zoom=0.2, zoom_period=90, pan=(60, 20),
               pan_period=120, roll_deg=4, roll_period=130, shake_px=1.0, blur=0.8, noise=3,
               jpeg=50, crf=20, seed=2),
    MotionSpec("gt_handheld", face_px=80, roll_deg=3, roll_period=70, drift=(0.4, 0.1),
               shake_px=2.5, blur=0.8, noise=3, crf=30, seed=3),
    MotionSpec("gt_tv", canvas=(480, 360), face_px=72, zoom=0.15, zoom_period=110,
               roll_deg=10, roll_period=140, pan=(30, 10), pan_period=90, shake_px=1.5,
               blur=1.3, noise=5, jpeg=35, crf=38, seed=4),
)
"""The benchmark's ground-truth clips (120 frames of ``vr_face_4.mp4`` each)."""


def read_frames(source: Path, start: int, count: int) -> tuple[list[np.ndarray], Fraction]:
    """RGB frames ``start`` .. ``start + count - 1`` of a video, and its frame rate."""
    out = []
    with VideoReader(source) as reader:
        rate = reader.info.avg_rate
        for frame in reader:
            if frame.index >= start + count:
                break
            if frame.index >= start:
                out.append(frame.pixels)
    if len(out) < count:
        raise ValueError(f"{source} has {start + len(out)} frames, {start + count} needed")
    return out, Fraction(rate)


@functools.lru_cache(maxsize=8)
def source_truth(source: Path, start: int, count: int, yunet: Path) -> tuple[np.ndarray, float]:
    """Truth landmarks (count, 5, 2) of the source's largest face, and its median box width.

    Each frame is detected on its own at full resolution without grid dithering; frames where
    the face is missed are interpolated; the track is smoothed with ``TRUTH_SIGMA``.
    """
    frames, _ = read_frames(source, start, count)
    h, w = frames[0].shape[:2]
    options = FaceOptions(dither=False, detect_size=max(640, ((max(w, h) + 31) // 32) * 32))
    detector = create_detector("yunet", options, model_path=yunet)
    raw = np.full((count, 5, 2), np.nan)
    widths = []
    for t, pixels in enumerate(frames):
        found = detector.detect([pixels])[0]
        if found:
            best = max(found, key=lambda d: d.width * d.score)
            raw[t] = best.landmarks
            widths.append(best.width)
    if len(widths) < count // 2:
        raise ValueError(f"{source}: the face was found on only {len(widths)} of {count} frames")
    return gaussian_baseline(raw, TRUTH_SIGMA), float(np.median(widths))


def motion(spec: MotionSpec, centre: np.ndarray, base_scale: float) -> list[np.ndarray]:
    """The 2x3 source-to-canvas similarity of every frame of ``spec``."""
    rng = np.random.default_rng(spec.seed)
    shake = np.zeros(2)
    cw, ch = spec.canvas
    out = []
    for t in range(spec.frames):
        z = base_scale * (1 + spec.zoom * np.sin(2 * np.pi * t / spec.zoom_period))
        a = np.deg2rad(spec.roll_deg * np.sin(2 * np.pi * t / spec.roll_period))
        lin = z * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        if spec.shake_px > 0:
            shake = 0.9 * shake + rng.normal(0, spec.shake_px * np.sqrt(1 - 0.81), 2)
        pan = np.asarray(spec.pan) * np.sin(2 * np.pi * t / spec.pan_period)
        place = np.array([cw / 2, ch / 2]) + pan + np.asarray(spec.drift) * t + shake
        out.append(np.hstack([lin, (place - lin @ centre)[:, None]]))
    return out


def render(image: np.ndarray, affine: np.ndarray, spec: MotionSpec,
           rng: np.random.Generator) -> np.ndarray:
    """One source frame moved, shrunk, padded by reflection and degraded (before H.264)."""
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    if scale < 1:  # anti-alias before shrinking
        image = cv2.GaussianBlur(image, (0, 0), 0.5 * np.sqrt(1 / scale**2 - 1))
    out = cv2.warpAffine(image, affine, spec.canvas, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if spec.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), spec.blur)
    if spec.noise > 0:
        out = np.clip(out + rng.normal(0, spec.noise, out.shape), 0, 255).astype(np.uint8)
    if spec.jpeg > 0:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg])
        assert ok
        out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def encode(path: Path, images: list[np.ndarray], rate: Fraction, crf: int) -> Path:
    """H.264 (libx264, yuv420p) at ``crf``, on one thread, each picture converted to YUV on
    one thread: threaded x264 and swscale do not always give the same bytes twice, and a clip
    should be the same on every run."""
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for img in images:
            yuv = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format="yuv420p", threads=FROM_RGB_THREADS)
            for pkt in stream.encode(yuv):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


def build_clip(source: Path, spec: MotionSpec, out_dir: Path,
               yunet: Path) -> tuple[Path, np.ndarray]:
    """Make the clip of ``spec`` from ``source``: ``(out_dir / <name>.mp4, truth)``.

    ``truth`` (frames, 5, 2) are the clip's true landmarks in its pixels; they are also saved
    beside it as ``<name>.truth.npy``. ``yunet`` is the YuNet model that makes the source truth.
    """
    cw, ch = spec.canvas
    if cw % 2 or ch % 2:
        raise ValueError(f"canvas {spec.canvas} must have even sides (yuv420p)")
    source, yunet = Path(source), Path(yunet)
    truth_src, width = source_truth(source, spec.start, spec.frames, yunet)
    frames, rate = read_frames(source, spec.start, spec.frames)
    centre = truth_src.reshape(-1, 2).mean(axis=0)
    affines = motion(spec, centre, spec.face_px / width)
    rng = np.random.default_rng(spec.seed + 1000)
    images = [render(img, a, spec, rng) for img, a in zip(frames, affines, strict=True)]
    truth = np.stack([p @ a[:, :2].T + a[:, 2] for p, a in zip(truth_src, affines, strict=True)])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = encode(out_dir / f"{spec.name}.mp4", images, rate, spec.crf)
    np.save(out_dir / f"{spec.name}.truth.npy", truth)
    return path, truth
