"""Writing a restored frame back to YUV: the face's boxes alone against the whole frame.

Run ``PYTHONPATH=. python -m benchmarks.bench_convert [--repeats N]`` from the repository root.
For a real clip (``shared/media/vr_face_4.mp4``, its first frame, 4:2:0) it reports, side by
side:

- ``whole``: the frame converted from RGB to YUV as a whole (what the writer did for every
  frame with a face): ms per frame at 720p and 1080p, and how many samples of an untouched
  frame come back different from the decoder's (the round trip's own error);
- ``patch``: the decoded picture with one face-sized box converted back
  (:func:`vidrestore.io.patch.patch_picture`): ms per frame, and the samples outside the box
  that differ (none).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from vidrestore.io.color import EXACT_RGB, FROM_RGB_THREADS
from vidrestore.io.frame import plane_bytes
from vidrestore.io.patch import patch_picture

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("VIDRESTORE_SHARED", REPO.parent / "shared")) / "media"
CONVERT = {"format": "yuv420p", "dst_color_range": 1, "threads": FROM_RGB_THREADS}


def _planes(picture: av.VideoFrame) -> list[np.ndarray]:
    return [plane_bytes(p)[:, :p.width] for p in picture.planes]


def _ms(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return round((time.perf_counter() - t0) / repeats * 1000, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    with av.open(str(MEDIA / "vr_face_4.mp4")) as c:
        first = next(c.decode(video=0)).reformat(format="yuv420p")
    rgb = first.reformat(format="rgb24", interpolation=EXACT_RGB).to_ndarray()
    res: dict[str, object] = {}
    for label, (w, h) in {"720p": (1280, 720), "1080p": (1920, 1080)}.items():
        pixels = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(**CONVERT)
        pixels = picture.reformat(format="rgb24", interpolation=EXACT_RGB).to_ndarray()
        side = h // 3  # a large face's box
        box = (w // 2 - side // 2, h // 2 - side // 2, w // 2 + side // 2, h // 2 + side // 2)
        whole_r, patch_r = VideoReformatter(), VideoReformatter()

        def whole(px: np.ndarray = pixels, r: VideoReformatter = whole_r) -> av.VideoFrame:
            return r.reformat(av.VideoFrame.from_ndarray(px, format="rgb24"), **CONVERT)

        def patch(pic: av.VideoFrame = picture, px: np.ndarray = pixels, b=box,
                  r: VideoReformatter = patch_r) -> av.VideoFrame:
            out = patch_picture(pic, px, [b], CONVERT, r)
            assert out is not None
            return out

        src = _planes(picture)
        changed = {name: [int((a != b).sum()) for a, b in zip(_planes(fn()), src, strict=True)]
                   for name, fn in (("whole", whole), ("patch", patch))}
        res[label] = {
            "whole": {"ms": _ms(whole, args.repeats),
                      "samples_changed_untouched_frame_y_u_v": changed["whole"]},
            "patch": {"ms": _ms(patch, args.repeats), "box": box,
                      "samples_changed_untouched_frame_y_u_v": changed["patch"]},
            "samples_y_u_v": [int(a.size) for a in src]}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
