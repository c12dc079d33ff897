"""The ceiling of the restore pipeline: everything around the network, against the ffmpeg CLI.

Used by ``python -m benchmarks.bench_restore ceiling``. For each clip (720p and 1080p, one and
four real faces), in one run:

- ``ffmpeg -i clip -c:v libx264 -crf 18 -preset medium -c:a copy`` (the writer's default
  encoder settings), timed;
- ``restore_video`` with the zero-cost stand-in network (:mod:`benchmarks.standin`), timed,
  and again with the detector on every ``detect_every``-th frame only (when above 1);
- these runs take turns ``repeats`` times and each keeps its fastest, so a machine whose speed
  wanders (a shared host) slows both sides of a ratio alike;
- each stage alone over the same frames: decode (to RGB), detection, tracking + smoothing +
  registration (the face stream less its detector), warp (aligned crops), the stand-in network
  (the engine's batching), paste-back, the RGB -> YUV conversion of the pasted boxes (the rest
  of each picture is the decoder's own), encoding. Their sum against the wall time says how
  much overlaps.
"""

from __future__ import annotations

import subprocess
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from benchmarks.bench_restore import encode_clip

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def make_faces_clip(path: Path, photo: Path, size: tuple[int, int], frames: int, faces: int,
                    rate: int = 25) -> Path:
    """``frames`` of ``size`` H.264 + AAC holding ``faces`` (1 or 4) copies of a real photo's
    left face, each drifting slowly."""
    img = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    half = img[:, : img.shape[1] // 2]
    w, h = size
    grid = 1 if faces == 1 else 2
    cell_w, cell_h = w // grid, h // grid
    scale = cell_h / half.shape[0] * 0.9

    def pictures() -> Iterator[np.ndarray]:
        for i in range(frames):
            pic = np.full((h, w, 3), 96, np.uint8)
            for k in range(grid * grid):
                x0, y0 = (k % grid) * cell_w, (k // grid) * cell_h
                m = np.array([[scale, 0, x0 + cell_w / 2 - scale * half.shape[1] / 2
                               + 0.3 * (i % 100)],
                              [0, scale, y0 + cell_h / 2 - scale * half.shape[0] / 2]])
                cell = cv2.warpAffine(half, m, (w, h), borderMode=cv2.BORDER_CONSTANT,
                                      borderValue=(96, 96, 96))
                pic[y0:y0 + cell_h, x0:x0 + cell_w] = cell[y0:y0 + cell_h, x0:x0 + cell_w]
            yield pic

    return encode_clip(path, pictures(), size, frames, rate)


def ffmpeg_seconds(clip: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-crf",
                    "18", "-preset", "medium", "-c:a", "copy", str(out)], check=True)
    return time.perf_counter() - t0


class _TimedDetector:
    """A detector proxy that adds up the time spent detecting."""

    def __init__(self, detector: Any) -> None:
        self._detector = detector
        self.seconds = 0.0

    def detect(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._detector.detect(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._detector, name)


def decoded(clip: Path) -> tuple[list[Any], Any, float]:
    """Every frame of ``clip`` with its RGB pixels (and the decoder's picture, as the reader
    gives them), the clip's facts, and the seconds it took."""
    from vidrestore.io import VideoReader

    t0 = time.perf_counter()
    with VideoReader(clip) as reader:
        frames = list(reader)
        for f in frames:
            f.pixels  # noqa: B018 - the conversion is part of decoding
        info = reader.info
    return frames, info, time.perf_counter() - t0


def stages(clip: Path, detector: Any, model: Any, tmp: Path) -> dict[str, float]:
    """Each stage alone over the clip (seconds).

    The faces go through warp, network, paste and the boxes' conversion back to YUV frame by
    frame, as in the pipeline: each frame is pasted once the engine has its faces, and its
    crops and restored faces are dropped then (kept for the whole clip, the stages would time
    the page faults of a few GB instead)."""
    from vidrestore.faces import FaceOptions, FaceStream
    from vidrestore.faces.align import similarity_transform, warp_face
    from vidrestore.io import VideoWriter, WriterOptions
    from vidrestore.io.color import from_rgb_args
    from vidrestore.io.patch import patch_picture
    from vidrestore.restore.blend import paste_face, template_mask
    from vidrestore.restore.engine import FaceEngine, FaceItem
    from vidrestore.restore.options import RestoreOptions

    out = dict.fromkeys(("decode_to_rgb", "detect", "track_smooth_register", "warp",
                         "network_stand_in", "paste", "convert_boxes_to_yuv", "encode"), 0.0)
    frames, info, out["decode_to_rgb"] = decoded(clip)
    timed = _TimedDetector(detector)
    fs = FaceStream(timed, FaceOptions())  # type: ignore[arg-type]
    t0 = time.perf_counter()
    tracked = [ff for f in frames for ff in fs.push(f)] + fs.flush()
    out["detect"] = timed.seconds
    out["track_smooth_register"] = time.perf_counter() - t0 - timed.seconds
    engine = FaceEngine(model, RestoreOptions(), batch_size=2)
    mask = template_mask()
    convert = from_rgb_args(info, "yuv420p")
    reformatter = av.video.reformatter.VideoReformatter()
    pasted: list[Any] = []
    waiting: deque[tuple[Any, list[Any]]] = deque()  # frames whose faces are in the engine

    def paste_ready() -> None:
        while waiting and all(it.restored is not None for it in waiting[0][1]):
            frame, items = waiting.popleft()
            t0 = time.perf_counter()
            canvas = np.array(frame.pixels)
            boxes = [box for it in items
                     if (box := paste_face(canvas, it.restored, mask, it.affine)) is not None]
            t1 = time.perf_counter()
            if frame.source is not None and boxes:
                patch_picture(frame.source, canvas, boxes, convert, reformatter)
            out["paste"] += t1 - t0
            out["convert_boxes_to_yuv"] += time.perf_counter() - t1
            pasted.append(frame.patched(canvas, tuple(boxes)) if boxes else frame)

    for ff in tracked:
        t0 = time.perf_counter()
        items = []
        for face in ff.faces:
            a = similarity_transform(face.landmarks)
            items.append(FaceItem(ff.frame.index, face.track_id, warp_face(ff.frame.pixels, a),
                                  a, False))
        t1 = time.perf_counter()
        engine.submit(ff.frame.index, items)  # the pipeline hands a frame's faces together
        out["warp"] += t1 - t0
        out["network_stand_in"] += time.perf_counter() - t1
        waiting.append((ff.frame, items))
        paste_ready()
    t0 = time.perf_counter()
    engine.drain()
    out["network_stand_in"] += time.perf_counter() - t0
    paste_ready()
    del tracked, frames
    t0 = time.perf_counter()
    with VideoWriter(tmp / "enc.mp4", source=info, options=WriterOptions(overwrite=True)) as w:
        for f in pasted:
            w.write(f)
    out["encode"] = time.perf_counter() - t0 - out["convert_boxes_to_yuv"]
    return out


def timed_restore(clip: Path, faces: Any, model: Any, detector: Any, tmp: Path
                  ) -> tuple[Any, float]:
    """``restore_video`` of ``clip`` with these face options and the given network and
    detector: its summary and the seconds it took."""
    from vidrestore.io import WriterOptions
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.options import RestoreOptions
    from vidrestore.restore.pipeline import Restorer

    r = Restorer(RestoreOptions(), faces, model=model, detector=detector)
    t0 = time.perf_counter()
    summary = restore_video(clip, tmp / "ours.mp4", RestoreOptions(), faces=faces, restorer=r,
                            writer=WriterOptions(overwrite=True), progress=False)
    return summary, time.perf_counter() - t0


def run(photo: Path, frames: int, tmp: Path, device: str = "cpu",
        detect_every: int = 1, repeats: int = 3) -> dict[str, Any]:
    from benchmarks.standin import standin_restorer
    from vidrestore.faces import FaceOptions, create_detector
    from vidrestore.weights import WeightStore

    model = standin_restorer(device)
    detector = create_detector("yunet", FaceOptions(), device=device,
                               store=WeightStore.from_env())
    rows: dict[str, Any] = {}
    for label, size in SIZES.items():
        for faces in (1, 4):
            clip = make_faces_clip(tmp / f"{label}_{faces}.mp4", photo, size, frames, faces)
            ffmpeg, wall, wall2 = float("inf"), float("inf"), float("inf")
            for _ in range(max(1, repeats)):
                ffmpeg = min(ffmpeg, ffmpeg_seconds(clip, tmp / "ffmpeg.mp4"))
                s, seconds = timed_restore(clip, FaceOptions(), model, detector, tmp)
                wall = min(wall, seconds)
                if detect_every > 1:
                    s2, seconds = timed_restore(clip, FaceOptions(detect_every=detect_every),
                                                model, detector, tmp)
                    wall2 = min(wall2, seconds)
            fewer: dict[str, Any] = {}
            if detect_every > 1:
                fewer = {f"detect_every_{detect_every}": {
                    "ours_fps": round(s2.frames / wall2, 2), "ratio": round(ffmpeg / wall2, 3),
                    "faces_restored": sum(s2.faces_restored.values())}}
            parts = stages(clip, detector, model, tmp)
            total = sum(parts.values())
            rows[f"{label}, {faces} face{'s' * (faces > 1)}"] = {
                "frames": s.frames, "faces_restored": sum(s.faces_restored.values()),
                "ffmpeg_fps": round(frames / ffmpeg, 2), "ours_fps": round(s.frames / wall, 2),
                "ratio": round(ffmpeg / wall, 3),
                "stages_ms_per_frame": {k: round(1000 * v / frames, 2) for k, v in parts.items()},
                "sum_of_stages_s": round(total, 2), "wall_s": round(wall, 2),
                "overlap": round(total / wall, 2), **fewer}
    return rows
