"""I/O benchmark: pass-through speed against the ffmpeg program, decoders, and peak memory.

Run ``python -m benchmarks.bench_io`` from the repository root (``--help`` for options). It
makes a 1080p H.264 + AAC source (from a real clip in ``../shared/media`` when present, else a
test pattern), then measures, each in a fresh process (wall time, CPU time, peak RSS):

* pass-through: ``VideoReader`` -> ``VideoWriter`` (libx264 CRF 18, preset medium, audio
  copied) next to ``ffmpeg -c:v libx264 -crf 18 -preset medium -c:a copy`` on the same file.
  Frames nobody touches are encoded from the decoder's pictures (``lazy_rgb``: no RGB at all);
  two more runs read every frame's RGB pixels first, as a restore does (exact and fast RGB);
* decoding to RGB frames with the PyAV and decord backends;
* peak RSS of the pass-through, and of it with every frame read as RGB, for the short source
  and for it repeated to ``--long`` seconds (10 min by default; streaming: the peaks should be
  equal).

The ffmpeg program and PyAV bundle their own FFmpeg and x264 builds; both are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("VIDRESTORE_SHARED", REPO.parent / "shared")) / "media"

PASS_THROUGH = """
import sys
from vidrestore.io import VideoReader, VideoWriter, WriterOptions
src, dst, preset, mode = sys.argv[1:5]
with VideoReader(src, exact_rgb=mode != "fast", lazy_rgb=mode == "lazy") as reader, VideoWriter(
        dst, source=reader.info, options=WriterOptions(preset=preset, overwrite=True)) as writer:
    for frame in reader:
        writer.write(frame)
"""

# The same pass-through in PyAV without the RGB round trip: same x264 build as ours, so the
# difference to it is exactly the cost of handing RGB frames to Python and back.
PYAV_YUV = """
import sys
import av
src, dst, preset = sys.argv[1:4]
with av.open(src) as inp, av.open(dst, "w") as out:
    video = inp.streams.video[0]
    video.thread_type = "AUTO"
    enc = out.add_stream("libx264", rate=video.average_rate,
                         options={"crf": "18", "preset": preset})
    enc.width, enc.height, enc.pix_fmt = video.width, video.height, "yuv420p"
    enc.time_base = video.time_base
    for frame in inp.decode(video):
        out.mux(enc.encode(frame))
    out.mux(enc.encode(None))
"""

DECODE = """
import sys
from vidrestore.io import VideoReader
backend, exact = sys.argv[2].split("-")
count = sum(1 for _ in VideoReader(sys.argv[1], backend=backend, exact_rgb=exact == "exact"))
print(count)
"""


@dataclass(frozen=True)
class Run:
    """One measured process."""

    label: str
    wall: float
    cpu: float
    peak_mib: float
    frames: int

    def row(self, reference: Run | None = None) -> str:
        speed = f"{self.frames / self.wall:7.2f} fps"
        ratio = f"  {reference.wall / self.wall:5.2f}x" if reference else ""
        return (f"{self.label:<44} {self.wall:7.1f} s {speed}  cpu {self.cpu:7.1f} s  "
                f"peak {self.peak_mib:7.1f} MiB{ratio}")


def measure(label: str, args: list[str], frames: int) -> Run:
    """Run ``args`` in its own process; wall time, CPU time and peak RSS come from wait4."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{label} failed:\n{err[-2000:]}")
    return Run(label, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, frames)


def make_source(dst: Path, seconds: float) -> Path:
    """A 1080p25 H.264 (CRF 16, veryfast) + AAC clip of ``seconds``, from real footage if any."""
    real = MEDIA / "lp_s13.mp4"
    if real.exists():
        picture = ["-stream_loop", "-1", "-i", str(real)]
        scale = "scale=-2:1080,pad=1920:1080:(ow-iw)/2:0,setsar=1"
        audio = ["-map", "0:v", "-map", "0:a"]
    else:
        picture = ["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=25", "-f", "lavfi", "-i", "sine"]
        scale = "null"
        audio = ["-map", "0:v", "-map", "1:a"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *picture, *audio, "-t", str(seconds),
                    "-vf", scale, "-r", "25", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "16", "-pix_fmt", "yuv420p", "-c:a", "aac", str(dst)], check=True)
    return dst


def versions() -> str:
    import av

    cli = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    lib = ".".join(map(str, av.library_versions["libavcodec"]))
    return f"ffmpeg program: {cli.splitlines()[0]}\nPyAV {av.__version__}, libavcodec {lib}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="short source length (s)")
    parser.add_argument("--long", type=float, default=600,
                        help="long source length (s) for the memory check; 0 skips it")
    parser.add_argument("--preset", default="medium", help="x264 preset for both encoders")
    parser.add_argument("--memory-preset", default="ultrafast",
                        help="x264 preset of the memory runs")
    parser.add_argument("--keep", type=Path, help="folder for the clips (default: temporary)")
    args = parser.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("the ffmpeg program is needed")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_io_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run_all(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work)


def run_all(args: argparse.Namespace, work: Path) -> None:
    print(versions())
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f}\n")

    short = make_source(work / "short.mp4", args.seconds)
    n_short = round(args.seconds * 25)
    py = sys.executable
    cli = measure(f"ffmpeg -crf 18 -preset {args.preset} -c:a copy",
                  ["ffmpeg", "-v", "error", "-y", "-i", str(short), "-map", "0", "-c:v",
                   "libx264", "-crf", "18", "-preset", args.preset, "-c:a", "copy",
                   str(work / "cli.mp4")], n_short)
    ours = measure(f"vidrestore pass-through ({args.seconds:g} s)",
                   [py, "-c", PASS_THROUGH, str(short), str(work / "ours.mp4"), args.preset,
                    "lazy"], n_short)
    rgb = measure("vidrestore, every frame read as RGB",
                  [py, "-c", PASS_THROUGH, str(short), str(work / "rgb.mp4"), args.preset,
                   "exact"], n_short)
    fast = measure("vidrestore, RGB with exact_rgb=False",
                   [py, "-c", PASS_THROUGH, str(short), str(work / "fast.mp4"), args.preset,
                    "fast"], n_short)
    bare = measure("PyAV YUV pass-through (no RGB), same x264",
                   [py, "-c", PYAV_YUV, str(short), str(work / "bare.mp4"), args.preset], n_short)
    print(f"pass-through of {n_short} frames, 1920x1080 (ratio = ffmpeg time / this time; "
          "CPU ratio = ffmpeg CPU / this CPU)")
    for run in (cli, bare, ours, rgb, fast):
        print(run.row(cli) + f"  cpu ratio {cli.cpu / run.cpu:4.2f}")

    print("\ndecoding to RGB frames")
    for backend in ("pyav-exact", "pyav-fast", "decord-fast"):
        print(measure(f"VideoReader {backend}", [py, "-c", DECODE, str(short), backend],
                      n_short).row())
    print(measure("ffmpeg -f rawvideo -pix_fmt rgb24 (reference)",
                  ["ffmpeg", "-v", "error", "-i", str(short), "-f", "rawvideo", "-pix_fmt",
                   "rgb24", "-y", os.devnull], n_short).row())

    if args.long <= 0:
        return
    # The long source repeats the short one (stream copy); both run with a fast preset, as
    # memory, not speed, is measured.
    loops = max(1, round(args.long / args.seconds))
    longer = work / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i",
                    str(short), "-c", "copy", str(longer)], check=True)
    print(f"\npeak memory against length (preset {args.memory_preset})")
    # The pass-through is the one timed above; reading every frame as RGB (as a restore does)
    # adds one frame-sized allocation per frame, which glibc's heap may keep a frame or two
    # of (its trim threshold follows the largest freed block), so it is shown on its own.
    for mode, label in (("lazy", "pass-through"), ("exact", "every frame read as RGB")):
        base, run_long = (
            measure(f"vidrestore {label} ({args.seconds * k:g} s)",
                    [py, "-c", PASS_THROUGH, str(path), str(work / "mem.mp4"),
                     args.memory_preset, mode], n_short * k)
            for path, k in ((short, 1), (longer, loops)))
        print(base.row())
        print(run_long.row())
        growth = (run_long.peak_mib - base.peak_mib) / base.peak_mib * 100
        print(f"peak RSS growth {growth:+.1f} % for {loops}x the length ({label})")


if __name__ == "__main__":
    main()
