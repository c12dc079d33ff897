"""The background choices side by side: one crop of a real video frame at 2x, upscaled by
Lanczos and by each Real-ESRGAN model at hand (faces are not restored here).

Run: ``python samples/background_choices.py [--clip VIDEO] [--at SECONDS] [--crop X,Y,W,H]``
(default: a frame of ../shared/media/lp_s13.mp4 and the two Real-ESRGAN models of
../shared/weights-mirror; ``--model FILE`` adds or replaces models). Writes
``samples/output/background_choices.png``: the source crop enlarged by nearest neighbour (each
source pixel a 2x2 block), then one panel per choice, each labelled with its time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from vidrestore.io import VideoReader
from vidrestore.upscale import Upscaler, load_background

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
MODELS = (SHARED / "weights-mirror" / "realesr-animevideov3.ncnn-fp16.pth",
          SHARED / "weights-mirror" / "RealESRGAN_x4plus.ncnn-fp16.pth")


def frame_at(clip: Path, seconds: float) -> np.ndarray:
    """The RGB picture shown at ``seconds`` (upright as stored: the crop is given in it)."""
    with VideoReader(clip, start=seconds) as reader:
        frame = next(iter(reader))
        return np.ascontiguousarray(frame.pixels)


def labelled(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((28, img.shape[1], 3), 24, np.uint8)
    cv2.putText(bar, text, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (240, 240, 240), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clip", type=Path, default=SHARED / "media" / "lp_s13.mp4")
    p.add_argument("--at", type=float, default=2.0, help="time of the frame, in seconds")
    p.add_argument("--crop", default="250,60,200,200", help="X,Y,W,H in the frame")
    p.add_argument("--model", type=Path, action="append", default=None,
                   help="a super-resolution checkpoint (repeatable)")
    p.add_argument("-o", "--output", type=Path, default=HERE / "output" / "background_choices.png")
    args = p.parse_args()
    x, y, w, h = (int(v) for v in args.crop.split(","))
    crop = frame_at(args.clip, args.at)[y:y + h, x:x + w]
    panels = [labelled(cv2.resize(crop, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST),
                       "source (each pixel 2x2)")]
    choices: list[tuple[str, Upscaler]] = [("lanczos", Upscaler(2))]
    for path in args.model or [m for m in MODELS if m.is_file()]:
        model = load_background(path, device="auto")
        choices.append((f"{path.name.split('.')[0]} ({model.architecture})", Upscaler(2, model)))
    for name, up in choices:
        t0 = time.perf_counter()
        out = up.canvas(crop)
        panels.append(labelled(out, f"{name}: {time.perf_counter() - t0:.2f} s"))
        up.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet = np.concatenate(panels, axis=1)
    if not cv2.imwrite(str(args.output), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"{args.output}: cannot write the picture")
    print(f"{args.output}: {' | '.join(name for name, _ in choices)}")


if __name__ == "__main__":
    main()
