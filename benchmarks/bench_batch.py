"""Cost of the batch machinery, and Ray throughput with one and two workers.

Run: ``PYTHONPATH=. python -m benchmarks.bench_batch [--frames 24] [--segment 6] [--no-ray]``
(``--ray-only`` for the Ray part alone; ``--variant codeformer`` restores with the published-size
network in the overhead part, the tiny one by default)
(needs ``../shared`` for the photo and the YuNet file; CPU only, synthetic CodeFormer weights).

1. Overhead: the same clip restored by the library's single-pass ``restore_video`` and by a
   batch in segments (job database, input hashing, snapshots, per-segment files, stream-copy
   join, SHA-256 sidecar), both with the same loaded model. The framemd5 sidecar decodes the
   output again; its cost is shown on its own line. Then, without faces (the restorer only
   decodes, detects and encodes: the machinery's largest share), the fixed cost of a job and
   of each extra segment, from runs in one and in several segments. ``one_hour`` puts these
   measured costs together for a one-hour film in the default 60 s segments: the test clip's
   6-frame segments make the machinery's share look many times larger than a real job's.
2. Ray: N clips through ``run_batch_ray`` on a local Ray instance with 1 and then 2 workers
   (each worker one CPU); throughput in frames per second, over the whole call and over the
   jobs alone (first job start to last job end, from the job database: without the one-off
   start of the workers), and the speed-up of 2 workers over 1 for both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2

from benchmarks.bench_restore import synthetic_weights

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDRESTORE_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "tests"))


def _clip(folder: Path, name: str, frames: int, size: tuple[int, int], *, flip: bool = False,
          faces: bool = True) -> Path:
    import numpy as np
    from synth import load_rgb, pan_frames, write_clip

    w, h = size
    if faces:
        photo = load_rgb(SHARED / "media" / "fr_two_people.jpg")
        scale = h / 260
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    else:  # a textured picture without faces: the restorer only detects
        rng = np.random.default_rng(1)
        photo = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8),
                           (w * 2, h * 2), interpolation=cv2.INTER_CUBIC)
    if flip:
        photo = photo[:, ::-1].copy()
    return write_clip(folder / name, pan_frames(photo, frames, size, step=(0.6, 0.25)),
                      audio=True)


def _options(weights: Path) -> tuple[object, object]:
    from vidrestore.faces.options import FaceOptions
    from vidrestore.restore.options import RestoreOptions

    return RestoreOptions(weights=str(weights), device="cpu"), FaceOptions()


def _worker(tmp: Path, variant: str = "codeformer_tiny") -> tuple[object, object, object]:
    """Restore and face options, and one worker holding the model and YuNet."""
    from vidrestore.batch.segments import SegmentWorker
    from vidrestore.faces import create_detector

    restore, face_opts = _options(synthetic_weights(tmp / f"{variant}.pth", variant))
    detector = create_detector("yunet", face_opts,
                               model_path=SHARED / "weights-mirror" /
                               "face_detection_yunet_2026may.onnx")
    return restore, face_opts, SegmentWorker(restore, face_opts, detector=detector)


def overhead(tmp: Path, name: str, frames: int, size: tuple[int, int], segment: int,
             repeats: int, faces: bool, variant: str) -> dict[str, object]:
    """Single pass versus batch (with and without the framemd5 sidecar) on one clip."""

    from vidrestore.batch import BatchConfig, BatchOptions, run_batch
    from vidrestore.io import WriterOptions
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.pipeline import Restorer

    restore, face_opts, worker = _worker(tmp, variant)
    src = _clip(tmp, f"{name}.mp4", frames, size, faces=faces)
    single, batch, batch_nomd5 = [], [], []
    steps: dict[str, float] = {}
    restored = 0
    for r in range(repeats):
        t0 = time.perf_counter()
        restorer = Restorer(restore, face_opts, model=worker.model, detector=worker.detector)
        restore_video(src, tmp / f"{name}-single{r}.mkv", restore, faces=face_opts,
                      writer=WriterOptions(codec="ffv1"), progress=False, restorer=restorer)
        single.append(time.perf_counter() - t0)
        restored = sum(restorer.faces_restored.values())
        for md5, times in ((True, batch), (False, batch_nomd5)):
            out = tmp / f"{name}-batch{r}{md5}"
            config = BatchConfig(out, restore=restore, faces=face_opts,
                                 batch=BatchOptions(segment_frames=segment, framemd5=md5))
            t0 = time.perf_counter()
            assert run_batch([src], config, worker=worker).ok
            times.append(time.perf_counter() - t0)
            if md5:
                rep = json.loads((out / f"{name}.mkv.report.json").read_text())["timings"]
                steps = {k: v for k, v in rep.items() if k.endswith("_seconds")}
    t_single, t_batch, t_plain = min(single), min(batch), min(batch_nomd5)
    return {
        "network": variant,
        "clip": f"{frames} frames {size[0]}x{size[1]}, {restored} faces restored",
        "segments": f"{-(-frames // segment)} of {segment} frames",
        "single_pass_s": round(t_single, 3),
        "batch_without_framemd5_s": round(t_plain, 3),
        "batch_s": round(t_batch, 3),
        "overhead_pct": round(100 * (t_plain - t_single) / t_single, 2),
        "overhead_ms_per_frame": round(1000 * (t_plain - t_single) / frames, 2),
        "framemd5_pct": round(100 * (t_batch - t_plain) / t_single, 2),
        "framemd5_ms_per_frame": round(1000 * (t_batch - t_plain) / frames, 2),
        **{f"last_run_{k}": v for k, v in steps.items()},
    }


def segment_cost(tmp: Path, frames: int, size: tuple[int, int], parts: int,
                 repeats: int) -> dict[str, object]:
    """Without faces (the restorer only decodes, detects and encodes, so the machinery's share
    is as large as it gets): single pass, one segment, ``parts`` segments."""

    from vidrestore.batch import BatchConfig, BatchOptions, run_batch
    from vidrestore.io import WriterOptions
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.pipeline import Restorer

    restore, face_opts, worker = _worker(tmp)
    src = _clip(tmp, "plain.mp4", frames, size, faces=False)
    seg = -(-frames // parts)
    times: dict[str, list[float]] = {"single": [], "one": [], "many": []}
    for r in range(repeats):
        t0 = time.perf_counter()
        restorer = Restorer(restore, face_opts, model=worker.model, detector=worker.detector)
        restore_video(src, tmp / f"plain-single{r}.mkv", restore, faces=face_opts,
                      writer=WriterOptions(codec="ffv1"), progress=False, restorer=restorer)
        times["single"].append(time.perf_counter() - t0)
        for key, size_ in (("one", frames), ("many", seg)):
            config = BatchConfig(tmp / f"plain-{key}{r}", restore=restore, faces=face_opts,
                                 batch=BatchOptions(segment_frames=size_, framemd5=False))
            t0 = time.perf_counter()
            assert run_batch([src], config, worker=worker).ok
            times[key].append(time.perf_counter() - t0)
    single, one, many = (min(times[k]) for k in ("single", "one", "many"))
    per_segment = (many - one) / (parts - 1)
    return {
        "clip": f"{frames} frames {size[0]}x{size[1]}, no faces",
        "single_pass_s": round(single, 3),
        "batch_one_segment_s": round(one, 3),
        f"batch_{parts}_segments_s": round(many, 3),
        "per_job_cost_s": round(one - single, 3),
        "per_segment_cost_s": round(per_segment, 3),
    }


def ray_throughput(tmp: Path, clips: int, frames: int, size: tuple[int, int]
                   ) -> dict[str, float]:
    import ray

    from vidrestore.batch import BatchConfig, BatchOptions
    from vidrestore.batch.ray_runner import run_batch_ray

    weights = synthetic_weights(tmp / "codeformer_tiny.pth", "codeformer_tiny")
    restore, faces = _options(weights)
    sources = [_clip(tmp, f"r{i}.mp4", frames, size, flip=i % 2 == 1) for i in range(clips)]
    os.environ["VIDRESTORE_MIRROR"] = str(SHARED / "weights-mirror")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    out: dict[str, float] = {"clips": clips, "frames_per_clip": frames}
    try:
        for n in (1, 2):
            folder = tmp / f"ray{n}"
            config = BatchConfig(folder, restore=restore, faces=faces,
                                 batch=BatchOptions(segment_frames=0, framemd5=False))
            t0 = time.perf_counter()
            wall0 = time.time()
            result = run_batch_ray([str(s) for s in sources], config, workers=n)
            dt = time.perf_counter() - t0
            assert result.ok
            # From the first job's start to the last one's end: without starting Ray actors
            # and loading models, a one-off cost that an hours-long batch does not notice.
            first = min(j.started for j in result.jobs)
            span = max(j.finished for j in result.jobs) - first
            out[f"workers{n}_s"] = round(dt, 2)
            out[f"workers{n}_fps"] = round(clips * frames / dt, 2)
            out[f"workers{n}_start_s"] = round(first - wall0, 2)
            out[f"workers{n}_jobs_fps"] = round(clips * frames / span, 2)
            shutil.rmtree(folder)
    finally:
        ray.shutdown()
    out["speedup"] = round(out["workers1_s"] / out["workers2_s"], 2)
    out["jobs_speedup"] = round(out["workers2_jobs_fps"] / out["workers1_jobs_fps"], 2)
    return out


def one_hour(faces: dict, plain: dict, frames: int, segment: int) -> dict[str, object]:
    """The machinery's share of restoring a one-hour 25 fps film with a face in every frame,
    in the default 60 s segments, from the costs measured above: the fixed cost of a job (no
    faces), the cost of a segment end with faces (the restorer's snapshot included) and the
    single pass's restore time per frame. Small test segments exaggerate the share; this is
    the share a real job pays."""
    from vidrestore.batch import BatchOptions

    seconds = BatchOptions().segment_seconds
    n_frames, n_segments = 3600 * 25, int(3600 // seconds)
    seams = -(-frames // segment) - 1
    job = max(0.0, plain["per_job_cost_s"])
    extra = faces["batch_without_framemd5_s"] - faces["single_pass_s"] - job
    per_segment = max(plain["per_segment_cost_s"], extra / seams if seams else 0.0)
    restore = faces["single_pass_s"] / frames * n_frames
    machinery = job + (n_segments - 1) * per_segment
    return {"segments": n_segments, "per_segment_cost_s": round(per_segment, 3),
            "restore_s": round(restore), "machinery_s": round(machinery, 1),
            "overhead_pct": round(100 * machinery / restore, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24, help="frames of the face clip")
    ap.add_argument("--segment", type=int, default=6, help="frames per segment")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--clips", type=int, default=4, help="clips for the Ray part")
    ap.add_argument("--ray-frames", type=int, default=48,
                    help="frames per Ray clip (enough that restoring outweighs a worker's start)")
    ap.add_argument("--variant", default="codeformer_tiny",
                    help="network of the overhead part (synthetic weights); 'codeformer' is the "
                    "published size: its cost, and its larger snapshots at segment ends")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--ray-only", action="store_true", help="skip the overhead part")
    args = ap.parse_args()
    os.environ.setdefault("VIDRESTORE_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["VIDRESTORE_HOME"] = str(tmp / "home")
        if not args.ray_only:
            faces = overhead(tmp, "faces", args.frames, (256, 192), args.segment,
                             args.repeats, faces=True, variant=args.variant)
            plain = segment_cost(tmp, 150, (640, 360), 3, args.repeats)
            result = {"faces": faces, "no_faces": plain,
                      "one_hour": one_hour(faces, plain, args.frames, args.segment)}
            print(json.dumps(result, indent=2), flush=True)
        if not args.no_ray:
            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray is not installed; skipping the Ray part")
                return
            print(json.dumps({"ray": ray_throughput(tmp, args.clips, args.ray_frames,
                                                    (256, 192))}, indent=2))


if __name__ == "__main__":
    main()
