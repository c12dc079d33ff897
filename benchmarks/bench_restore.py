"""End-to-end restore: pipeline overhead, GPU speed-up over the per-frame baseline, flat memory.

Run: ``PYTHONPATH=. python -m benchmarks.bench_restore overhead|speedup|memory|ceiling [...]``

- ``overhead``: a clip with one face through ``restore_video`` versus the network alone on the
  same aligned faces (same device, dtype, batch). Reports seconds per face for both and their
  ratio (target <= 1.2: the pipeline adds at most 20 %).
- ``speedup``: a 1080p single-face clip restored with the defaults (``--temporal window``,
  automatic batch and dtype) versus ``--temporal off --batch-size 1 --dtype float32`` on the same
  device, in the same run (target on a GPU: >= 10x). Reports fps of both and the ratio.
- ``memory``: peak RSS of ``vidrestore restore`` (the command line, in its own process) on a
  short and a long clip of the same content (target: the long run within 10 % of the short
  one). On a CPU, a 10-minute clip with a face in every frame takes hours;
  ``--face-every 20 --face-for 1`` shows the face for one second in every twenty (a new track
  each time) and ``--variant codeformer_tiny`` uses the narrow network, so the 10-minute run
  takes minutes and still passes every stage.
  ``--upscale 2`` (and ``--background``) measure the same for upscaled output.
- ``ceiling``: the pipeline with a zero-cost stand-in for the network at 720p and 1080p with one
  and four faces, beside the ffmpeg CLI transcoding the same clip with the same encoder
  settings, and each stage timed alone (:mod:`benchmarks.ceiling`; ``--frames``); also with
  the detector on every Nth frame only (``--detect-every N``, default 3; 1 = not run). The
  runs take turns ``--repeats`` times (default 3), each keeping its fastest.

Without ``--weights`` the published-size network gets synthetic weights (same cost; the output
is a texture). The clips are built from ``--face`` (default: a photo in ../shared/media).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FACE = REPO.parent / "shared" / "media" / "fr_two_people.jpg"


def encode_clip(path: Path, pictures: Iterable[np.ndarray], size: tuple[int, int], frames: int,
                rate: int = 25) -> Path:
    """``frames`` RGB ``pictures`` of ``size`` as H.264 (crf 18, veryfast) with silent AAC."""
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "18", "preset": "veryfast"}
        aus = out.add_stream("aac", rate=48000)
        for pic in pictures:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(pic, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        n = int(48000 * frames / rate)
        for i in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, min(1024, n - i)), np.float32),
                                            format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, i
            for pkt in aus.encode(af):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)
    return path


def make_clip(path: Path, face: Path, *, size: tuple[int, int], frames: int, rate: int = 25,
              face_frac: float = 0.35, face_every: int = 0, face_for: int = 0) -> Path:
    """A clip with one real face drifting slowly, H.264 + AAC, ``frames`` long.

    With ``face_every`` the face is on screen for the first ``face_for`` frames of every
    ``face_every`` (a new track each time) and the picture is a flat grey in between."""
    img = cv2.cvtColor(cv2.imread(str(face)), cv2.COLOR_BGR2RGB)
    h0, w0 = img.shape[:2]
    # left half of the photo holds one face; scale it so it fills face_frac of the height
    half = img[:, : w0 // 2]
    w, h = size
    scale = h / (h0 * face_frac) * 0.35
    empty = np.full((h, w, 3), 96, np.uint8)

    def pictures() -> Iterator[np.ndarray]:
        for i in range(frames):
            if face_every and i % face_every >= face_for:
                yield empty
            else:
                m = np.array([[scale, 0, w / 2 - scale * half.shape[1] / 2 + 0.3 * (i % 200)],
                              [0, scale, h / 2 - scale * half.shape[0] / 2]], np.float64)
                yield cv2.warpAffine(half, m, (w, h), borderMode=cv2.BORDER_REPLICATE)

    return encode_clip(path, pictures(), size, frames, rate)


def synthetic_weights(path: Path, variant: str) -> Path:
    """Synthetic weights of a CodeFormer variant, laid out as the published file is."""
    from vidrestore.testing.weights import synthetic_checkpoint

    return synthetic_checkpoint(path, variant)


def network_only(options, clip: Path) -> tuple[float, int]:
    """Seconds per face of the network alone on the clip's aligned faces (same batching)."""
    from vidrestore.faces import FaceOptions, FaceStream, create_detector
    from vidrestore.faces.align import similarity_transform, warp_face
    from vidrestore.io import VideoReader
    from vidrestore.models import load_restorer
    from vidrestore.restore.engine import FaceEngine, FaceItem
    from vidrestore.restore.pipeline import default_batch_size
    from vidrestore.weights import WeightStore

    store = WeightStore.from_env()
    model = load_restorer(options.weights, device=options.device, dtype=options.dtype,
                          store=store)
    device = model.device
    fs = FaceStream(create_detector("yunet", FaceOptions(), store=store), FaceOptions())
    items = []
    with VideoReader(clip) as r:
        ffs = [ff for fr in r for ff in fs.push(fr)] + fs.flush()
    for ff in ffs:
        for face in ff.faces:
            a = similarity_transform(face.landmarks)
            items.append((ff.frame.index, face.track_id, warp_face(ff.frame.pixels, a), a))
    eng = FaceEngine(model, options, batch_size=options.batch_size or default_batch_size(
        device, model.per_item))
    _sync(device)
    t0 = time.perf_counter()
    for f, tid, crop, a in items:
        eng.submit(f, [FaceItem(f, tid, crop, a, False)])
    eng.drain()
    _sync(device)
    return (time.perf_counter() - t0) / max(len(items), 1), len(items)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_restore(clip: Path, options, out: Path) -> tuple[float, int, int]:
    """(seconds, frames, faces) of one restore_video run."""
    from vidrestore.io import WriterOptions
    from vidrestore.restore.api import restore_video

    t0 = time.perf_counter()
    s = restore_video(clip, out, options, writer=WriterOptions(overwrite=True), progress=False)
    return time.perf_counter() - t0, s.frames, sum(s.faces_restored.values())


def cmd_overhead(args: argparse.Namespace, tmp: Path) -> dict:
    from vidrestore.restore.options import RestoreOptions

    clip = make_clip(tmp / "one.mp4", args.face, size=(640, 360), frames=args.frames)
    opts = RestoreOptions(weights=str(args.weights), device=args.device, dtype=args.dtype,
                          batch_size=args.batch_size, temporal=args.temporal)
    run_restore(clip, opts, tmp / "warm.mp4") if args.device != "cpu" else None
    secs, frames, faces = run_restore(clip, opts, tmp / "out.mp4")
    net, _ = network_only(opts, clip)
    return {"frames": frames, "faces": faces, "e2e_s_per_face": secs / faces,
            "network_s_per_face": net, "ratio": secs / faces / net}


def cmd_speedup(args: argparse.Namespace, tmp: Path) -> dict:
    from vidrestore.restore.options import RestoreOptions

    clip = make_clip(tmp / "hd.mp4", args.face, size=(1920, 1080), frames=args.frames)
    fast = RestoreOptions(weights=str(args.weights), device=args.device)
    base = RestoreOptions(weights=str(args.weights), device=args.device, temporal="off",
                          batch_size=1, dtype="float32")
    run_restore(clip, fast, tmp / "warm.mp4")
    t_fast, frames, _ = run_restore(clip, fast, tmp / "fast.mp4")
    t_base, _, _ = run_restore(clip, base, tmp / "base.mp4")
    return {"frames": frames, "fast_fps": frames / t_fast, "baseline_fps": frames / t_base,
            "ratio": t_base / t_fast}


def cmd_ceiling(args: argparse.Namespace, tmp: Path) -> dict:
    from benchmarks.ceiling import run

    return run(args.face, args.frames, tmp, args.device, args.detect_every, args.repeats)


def cmd_memory(args: argparse.Namespace, tmp: Path) -> dict:
    res = {}
    rate = 25
    for label, frames in (("short", args.frames), ("long", args.long_frames)):
        clip = make_clip(tmp / f"{label}.mp4", args.face, size=(640, 360), frames=frames,
                         rate=rate, face_every=round(args.face_every * rate),
                         face_for=round(args.face_for * rate))
        # the command line a user runs, in a child whose peak resident set size is read
        cmd = [sys.executable, "-m", "vidrestore", "restore", str(clip), "-o",
               str(tmp / f"{label}_out.mp4"), "--weights", str(args.weights), "--device",
               args.device, "--upscale", str(args.upscale), "--background", args.background,
               "--runtime", args.runtime, "--overwrite", "--no-progress", "--json"]
        code = ("import json,resource,subprocess,sys;"
                f"out = subprocess.run({cmd!r}, capture_output=True, text=True, check=True);"
                "s = json.loads(out.stdout);"
                "print(sum(s['faces_restored'].values()), s['tracks'],"
                "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=REPO, check=True)
        faces, tracks, peak = map(int, out.stdout.split()[-3:])
        res[label] = {"frames": frames, "seconds_of_video": frames / rate, "faces": faces,
                      "tracks": tracks, "peak_rss_mib": peak / 1024,
                      "seconds": time.perf_counter() - t0}
    res["ratio"] = res["long"]["peak_rss_mib"] / res["short"]["peak_rss_mib"]
    res["runtime"] = args.runtime
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("overhead", "speedup", "memory", "ceiling"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--batch-size", type=int, default=0)
    p.add_argument("--temporal", default="window")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--variant", default="codeformer", help="synthetic weights of this variant")
    p.add_argument("--face", type=Path, default=DEFAULT_FACE)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--long-frames", type=int, default=400)
    p.add_argument("--face-every", type=float, default=0,
                   help="memory: the face comes back every this many seconds (0: always there)")
    p.add_argument("--upscale", type=int, default=1, help="memory: output size multiple")
    p.add_argument("--background", default="lanczos", help="memory: background upscaler")
    p.add_argument("--runtime", default="auto", help="memory: what runs the network")
    p.add_argument("--detect-every", type=int, default=3,
                   help="ceiling: also run with the detector on every Nth frame (1: not run)")
    p.add_argument("--repeats", type=int, default=3,
                   help="ceiling: runs of ffmpeg and of ours, taking turns (the fastest kept)")
    p.add_argument("--face-for", type=float, default=1.0,
                   help="memory: seconds the face stays each time it comes back")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.weights is None and args.what != "ceiling":
            args.weights = synthetic_weights(tmp / f"{args.variant}.pth", args.variant)
        result = {"overhead": cmd_overhead, "speedup": cmd_speedup, "memory": cmd_memory,
                  "ceiling": cmd_ceiling}[args.what](args, tmp)
    result.update(what=args.what, device=args.device, torch=torch.__version__,
                  threads=torch.get_num_threads(),
                  self_peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
