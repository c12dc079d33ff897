"""Test material made on the fly: tiny CodeFormer checkpoints and clips with real faces.

Clips are built from the real photos in ``shared/media`` (never copied into the project): the
photo is panned on a smooth sub-pixel path, encoded with PyAV, optionally with a sine-wave audio
track, so every test runs on real faces, real encoders and real files.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from vidrestore.io.frame import Frame
from vidrestore.testing.weights import synthetic_checkpoint


def tiny_checkpoint(path: Path) -> Path:
    """A checkpoint of the tiny CodeFormer variant with synthetic weights, as published files are
    laid out (state dict under ``params_ema``)."""
    return synthetic_checkpoint(path, "codeformer_tiny")


def texture_crop(seed: int, base: np.ndarray | None = None, noise: float = 0.0) -> np.ndarray:
    """A 512x512 aligned-face-sized RGB crop: smooth random texture (16x16 values, bicubic),
    or ``base``, plus Gaussian noise of ``noise`` levels; the same for the same seed."""
    rng = np.random.default_rng(seed)
    if base is None:
        small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        base = cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC)
    img = base.astype(np.float32) + rng.normal(0, noise, base.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def load_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def pan_frames(image: np.ndarray, n: int, size: tuple[int, int], *,
               step: tuple[float, float] = (0.7, 0.3), scale: float = 1.0) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (w, h) viewing ``image`` along a straight sub-pixel path."""
    w, h = size
    out = []
    for i in range(n):
        m = np.array([[scale, 0.0, -i * step[0]], [0.0, scale, -i * step[1]]], np.float64)
        out.append(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT))
    return out


def as_frames(images: list[np.ndarray], rate: Fraction = Fraction(25)) -> list[Frame]:
    tb = 1 / rate
    return [Frame(i, i, tb, img) for i, img in enumerate(images)]


def write_clip(path: Path, images: list[np.ndarray], *, rate: int = 25, audio: bool = True,
               codec: str = "libx264", pix_fmt: str = "yuv420p") -> Path:
    """Encode RGB ``images`` (plus a 440 Hz AAC tone when ``audio``) to ``path``."""
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            vs.options = {"crf": "16", "preset": "veryfast"}
        a_s = out.add_stream("aac", rate=44100) if audio else None
        for img in images:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if a_s is not None:
            samples = int(44100 * len(images) / rate)
            t = np.arange(samples) / 44100.0
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for i in range(0, samples, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i : i + 1024]),
                                                format="fltp", layout="mono")
                af.sample_rate = 44100
                af.pts = i
                for pkt in a_s.encode(af):
                    out.mux(pkt)
            for pkt in a_s.encode():
                out.mux(pkt)
    return path


def panned_face_clip(path: Path, media_dir: Path, n: int, size: tuple[int, int], *,
                     audio: bool) -> Path:
    """``n`` frames of ``size`` panning over a shrunk real photo with one face in view."""
    photo = load_rgb(media_dir / "fr_two_people.jpg")
    photo = cv2.resize(photo, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)[:, 30:]
    return write_clip(path, pan_frames(photo, n, size, step=(0.6, 0.2)), audio=audio)
