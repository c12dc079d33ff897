"""Upscaled output: what each background choice costs, and what ``--upscale 2`` adds.

Run: ``PYTHONPATH=. python -m benchmarks.bench_upscale cost|pipeline [options]``

- ``cost``: seconds per frame of each background choice (``lanczos``, and every
  super-resolution checkpoint given with ``--model``, by default the two Real-ESRGAN models of
  ../shared/weights-mirror) at 480p -> 960p (854x480 x2) and 1080p -> 4K (1920x1080 x2), on a
  real picture, on ``--device``. A model frame that would take longer than ``--budget`` seconds
  is not run whole: its time is the measured time of its tiles (``--tile``, with their context)
  times the frame's tile count, and the row says ``estimated``.
- ``pipeline``: a clip with one real face restored at ``--upscale 1`` and ``2`` with Lanczos, in
  the same run, with a zero-cost stand-in for the network (``benchmarks/standin.py``): the cost
  per frame of everything around the network, with the encoder ``--codec``, with FFV1, and
  with no encoder (decoded frames through the restorer, the output pictures dropped: what the
  raw-frame pipe and the ComfyUI node pay), and each stage of the x2 run timed alone. The
  target: x2 at most 1.3x the time of x1. An encoder's own work grows with the output's pixels
  (4x at x2), which the encoder rows show and the no-encoder row leaves out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_PICTURE = SHARED / "media" / "gfp_whole_00.jpg"
DEFAULT_MODELS = (SHARED / "weights-mirror" / "realesr-animevideov3.ncnn-fp16.pth",
                  SHARED / "weights-mirror" / "RealESRGAN_x4plus.ncnn-fp16.pth")
SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}


def picture(path: Path, width: int, height: int) -> np.ndarray:
    """A real photo cropped to the aspect and resized to ``width`` x ``height`` (RGB)."""
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    crop_h = min(h, round(w * height / width))
    top = (h - crop_h) // 2
    return cv2.resize(img[top:top + crop_h], (width, height), interpolation=cv2.INTER_AREA)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_canvas(up, pixels: np.ndarray, repeats: int) -> float:
    up.canvas(pixels)  # warm-up (allocations, kernels)
    t0 = time.perf_counter()
    for _ in range(repeats):
        up.canvas(pixels)
    return (time.perf_counter() - t0) / repeats


def cmd_cost(args: argparse.Namespace) -> dict:
    from vidrestore.upscale import Upscaler, load_background
    from vidrestore.upscale.tiling import windows

    device = torch.device(args.device)
    rows = []
    choices: list[tuple[str, object]] = [("lanczos", None)]
    for path in args.model:
        if path.is_file():
            choices.append((path.name, load_background(path, device=device)))
    for label, (w, h) in SIZES.items():
        pixels = picture(args.picture, w, h)
        for name, model in choices:
            up = Upscaler(2, model, tile=args.tile)  # type: ignore[arg-type]
            if model is None:
                secs, how = time_canvas(up, pixels, 5), "measured"
            else:
                tile_px = pixels[:args.tile, :args.tile]
                one = time_canvas(Upscaler(2, model, tile=0), tile_px, 1)  # type: ignore[arg-type]
                wins = windows(h, w, args.tile, up._pad)
                per_px = one / (tile_px.shape[0] * tile_px.shape[1])
                guess = per_px * sum((b - a) * (d - c) for a, b, c, d in
                                     (win.window for win in wins))
                if guess <= args.budget:
                    secs, how = time_canvas(up, pixels, 1), "measured"
                else:
                    secs, how = guess, f"estimated from one {args.tile}px tile"
            _sync(device)
            rows.append({"size": label, "out": f"{2 * w}x{2 * h}", "background": name,
                         "s_per_frame": round(secs, 4),
                         "fps": round(1 / secs, 3) if secs else math.inf, "how": how})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"rows": rows}


def cmd_pipeline(args: argparse.Namespace, tmp: Path) -> dict:
    from benchmarks.bench_restore import make_clip
    from benchmarks.standin import standin_restorer
    from vidrestore.faces import FaceOptions, create_detector
    from vidrestore.io import WriterOptions
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.options import RestoreOptions
    from vidrestore.restore.pipeline import Restorer
    from vidrestore.weights import WeightStore

    clip = make_clip(tmp / "clip.mp4", args.face, size=(854, 480), frames=args.frames)
    model = standin_restorer(args.device)
    detector = create_detector("yunet", FaceOptions(), device=args.device,
                               store=WeightStore.from_env())
    res: dict[str, object] = {"clip": f"854x480, {args.frames} frames, one face",
                              "network": "zero-cost stand-in (benchmarks/standin.py)"}
    for codec in (args.codec, "ffv1"):
        per: dict[int, float] = {}
        for scale in (1, 2):
            opts = RestoreOptions(upscale=scale)
            writer = WriterOptions(codec=codec, overwrite=True)
            walls = []
            for _ in range(1 + args.repeats):  # the first run warms caches up
                r = Restorer(opts, model=model, detector=detector)
                t0 = time.perf_counter()
                s = restore_video(clip, tmp / "out.mkv", opts, writer=writer, progress=False,
                                  restorer=r)
                walls.append(time.perf_counter() - t0)
                r.close()
            per[scale] = min(walls[1:]) / s.frames
            res[f"{codec} x{scale}"] = {"ms_per_frame": round(1000 * per[scale], 2),
                                        "fps": round(1 / per[scale], 2)}
        res[f"{codec} ratio x2/x1"] = round(per[2] / per[1], 3)
    per = {scale: no_encoder(clip, model, detector, scale, args.repeats) for scale in (1, 2)}
    for scale in (1, 2):
        res[f"no encoder x{scale}"] = {"ms_per_frame": round(1000 * per[scale], 2),
                                       "fps": round(1 / per[scale], 2)}
    res["no encoder ratio x2/x1"] = round(per[2] / per[1], 3)
    res["stages (alone, s)"] = stages(clip, detector, args.codec, tmp)
    return res


def no_encoder(clip: Path, model, detector, scale: int, repeats: int) -> float:
    """Seconds per frame of decoding and restoring ``clip`` at ``scale``, outputs dropped."""
    from vidrestore.io import VideoReader
    from vidrestore.restore.options import RestoreOptions
    from vidrestore.restore.pipeline import Restorer

    walls = []
    for _ in range(1 + repeats):
        r = Restorer(RestoreOptions(upscale=scale), model=model, detector=detector)
        t0 = time.perf_counter()
        with VideoReader(clip) as reader:
            frames = sum(1 for _ in r.process(reader))
        walls.append((time.perf_counter() - t0) / frames)
        r.close()
    return min(walls[1:])


def stages(clip: Path, detector, codec: str, tmp: Path) -> dict[str, float]:
    """Each stage of an x2 Lanczos run timed on its own over the whole clip (the network's
    share is in the runs above): decoding, detection and tracking, the background, and encoding
    at x1 and x2 (what the encoder alone adds for 4x the pixels)."""
    from benchmarks.ceiling import decoded
    from vidrestore.faces import FaceOptions, FaceStream
    from vidrestore.io import VideoWriter, WriterOptions
    from vidrestore.upscale import Upscaler, scaled_info

    out: dict[str, float] = {}
    frames, info, out["decode"] = decoded(clip)
    t0 = time.perf_counter()
    fs = FaceStream(detector, FaceOptions())
    for f in frames:
        fs.push(f)
    fs.flush()
    out["detect_track_smooth"] = time.perf_counter() - t0
    up = Upscaler(2)
    t0 = time.perf_counter()
    big = [f.with_pixels(up.canvas(f.pixels)) for f in frames]
    out["background_lanczos"] = time.perf_counter() - t0
    for scale, pictures in ((1, frames), (2, big)):
        t0 = time.perf_counter()
        with VideoWriter(tmp / "enc.mkv", source=scaled_info(info, scale),
                         options=WriterOptions(codec=codec, overwrite=True)) as w:
            for f in pictures:
                w.write(f)
        out[f"encode x{scale}"] = time.perf_counter() - t0
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("cost", "pipeline"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--picture", type=Path, default=DEFAULT_PICTURE)
    p.add_argument("--model", type=Path, action="append", default=None,
                   help="a super-resolution checkpoint (repeatable)")
    p.add_argument("--tile", type=int, default=256, help="cost: tile side for the models")
    p.add_argument("--budget", type=float, default=60.0,
                   help="cost: longest model frame run whole (seconds); longer ones estimated")
    p.add_argument("--repeats", type=int, default=2, help="pipeline: timed runs (best kept)")
    p.add_argument("--face", type=Path, default=SHARED / "media" / "fr_two_people.jpg")
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("--codec", default="h264")
    args = p.parse_args()
    if args.model is None:
        args.model = list(DEFAULT_MODELS)
    with tempfile.TemporaryDirectory() as d:
        result = cmd_cost(args) if args.what == "cost" else cmd_pipeline(args, Path(d))
    result.update(what=args.what, device=args.device, torch=torch.__version__,
                  threads=torch.get_num_threads())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
