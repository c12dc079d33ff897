"""The failure matrix: bad input, hostile files and unlucky timing, against the real CLI.

Every case runs ``vidrestore`` in its own process (forked from one server that imported the
library once: :mod:`clifork`) in a fresh folder, and asserts the promise made to users:

* a bad input ends with a non-zero exit status and one line ``vidrestore: error: ...`` on
  stderr (never a traceback);
* nothing new appears at any destination, hidden temporaries included, and a file that was
  there before is unchanged;
* the inputs are unchanged;
* no hostile content (a pickle in a checkpoint, a snapshot or a job database row naming a path
  outside its folder) runs code or touches a file outside its folder (marker files).

Cases that must succeed assert what the user then gets (a warning, an output). Needs
``../shared`` (a real face photo and the YuNet model).
"""

from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from clifork import CliForker, Run
from synth import panned_face_clip, tiny_checkpoint

ERROR = "vidrestore: error: "


class Marker:
    """Written by a pickle when it is loaded: proof that a file ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.path}",))


@dataclass
class World:
    root: Path
    forker: CliForker
    env: dict[str, str]
    files: dict[str, Path]
    marker: Path
    digests: dict[Path, str] = field(default_factory=dict)

    def path(self, key: str) -> Path:
        return self.files[key]


def _sha(path: Path) -> str:
    if path.is_dir():
        return "dir:" + ",".join(sorted(p.name for p in path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*"))
            if not p.is_dir()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, media_dir: Path, mirror_dir: Path):
    root = tmp_path_factory.mktemp("matrix")
    inputs = root / "inputs"
    inputs.mkdir()
    f: dict[str, Path] = {}
    f["clip"] = panned_face_clip(inputs / "clip.mp4", media_dir, 8, (200, 150), audio=True)
    f["tiny"] = tiny_checkpoint(inputs / "tiny.pth")
    marker = root / "MARKER"
    (inputs / "text.pth").write_text("these are not weights\n")
    (inputs / "empty.pth").write_bytes(b"")
    (inputs / "page.pth").write_text("<!DOCTYPE html><html><body>404</body></html>\n")
    (inputs / "random.pth").write_bytes(np.random.default_rng(1).bytes(4096))
    (inputs / "zipish.pth").write_bytes(b"PK\x03\x04" + b"\0" * 200)
    torch.save({"params_ema": {"a.weight": torch.zeros(3)}}, inputs / "othernet.pth")
    with open(inputs / "exploit.pth", "wb") as fh:
        pickle.dump(Marker(str(marker)), fh)
    (inputs / "text.mp4").write_text("not a video\n")
    (inputs / "empty.mp4").write_bytes(b"")
    (inputs / "cut.mp4").write_bytes(f["clip"].read_bytes()[:3000])
    import cv2

    cv2.imwrite(str(inputs / "image.png"), np.full((48, 64, 3), 90, np.uint8))
    (inputs / "image.mp4").write_bytes((inputs / "image.png").read_bytes())
    cv2.imwrite(str(inputs / "bomb.png"), np.zeros((9000, 9000, 3), np.uint8))
    (inputs / "bomb.mp4").write_bytes((inputs / "bomb.png").read_bytes())
    (inputs / "huge.y4m").write_bytes(b"YUV4MPEG2 W60000 H60000 F25:1 Ip A1:1 C420jpeg\nFRAME\n"
                                      + b"\x80" * 1024)
    (inputs / "folder").mkdir()
    (inputs / "raw3.rgb").write_bytes(b"\0" * (64 * 48 * 3 * 2 + 7))  # not whole frames
    for name in ("text", "empty", "page", "random", "zipish", "othernet", "exploit"):
        f[f"{name}.pth"] = inputs / f"{name}.pth"
    for name in ("text.mp4", "empty.mp4", "cut.mp4", "image.mp4", "bomb.mp4", "huge.y4m",
                 "folder", "raw3.rgb"):
        f[name] = inputs / name
    home = root / "home"
    home.mkdir()
    cache = root / "cache"
    cache.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "VIDRESTORE_HOME": str(cache),
           "VIDRESTORE_MIRROR": str(mirror_dir), "VIDRESTORE_OFFLINE": "1", "LANG": "C.UTF-8",
           "VIDRESTORE_RUNTIME": "torch"}
    scratch = root / "runs"
    scratch.mkdir()
    forker = CliForker(scratch)
    w = World(root, forker, env, f, marker)
    w.digests = {p: _sha(p) for p in sorted(inputs.rglob("*"))}
    yield w
    forker.close()


@dataclass(frozen=True)
class Case:
    """One command and the promise it is held to."""

    id: str
    args: tuple[str, ...]
    rc: int | None = None  # None: any failure status (non-zero)
    ok: bool = False  # the command must succeed
    says: str | None = None  # a fragment the error (or, when ok, stderr) must contain
    prep: Callable[[World, Path], None] | None = None
    check: Callable[[World, Path, Run], None] | None = None
    env: tuple[tuple[str, str], ...] = ()


CASES: list[Case] = []


def case(id: str, *args: str, **kw: object) -> None:
    CASES.append(Case(id, args, **kw))  # type: ignore[arg-type]


def _exists(name: str) -> Callable[[World, Path], None]:
    def prep(w: World, d: Path) -> None:
        (d / name).write_bytes(b"already here")
    return prep


# -- restore: inputs ---------------------------------------------------------------------------
R = ("restore",)
OUT = ("-o", "{d}/out.mp4")
W = ("--weights", "{tiny}", "--no-progress")
case("restore-missing-input", *R, "{d}/none.mp4", *OUT, *W, rc=3, says="no such file")
case("restore-input-folder", *R, "{folder}", *OUT, *W, rc=2, says="needs its frame rate")
case("restore-empty-file", *R, "{empty.mp4}", *OUT, *W, rc=3)
case("restore-text-as-video", *R, "{text.mp4}", *OUT, *W, rc=3, says="not a readable video")
case("restore-truncated-video", *R, "{cut.mp4}", *OUT, *W, rc=3)
case("restore-decompression-bomb", *R, "{bomb.mp4}", *OUT, *W, rc=3, says="larger than")
case("restore-huge-header", *R, "{huge.y4m}", *OUT, *W, rc=3, says="picture size")
case("restore-image-named-mp4", *R, "{image.mp4}", *OUT, *W, ok=True,
     says="single png image, not a video",
     check=lambda w, d, r: (d / "out.mp4").is_file() or pytest.fail("no output"))
def _stale_partials(w: World, d: Path) -> None:
    """Temporaries a killed run of this machine left, and one of a live process elsewhere."""
    import subprocess

    from vidrestore.io.paths import _OWNER

    gone = subprocess.Popen(["true"])
    gone.wait()
    (d / f".out.partial-{_OWNER}-{gone.pid}-0badc0de.mp4").write_bytes(b"half a video")
    (d / f".out.partial-{_OWNER}-{gone.pid}-0badc0df").mkdir()
    (d / ".out.partial-abcdef-1-00000000.mp4").write_bytes(b"another machine's")


def _only_foreign_partial_left(w: World, d: Path, r: Run) -> None:
    hidden = sorted(p.name for p in d.iterdir() if p.name.startswith("."))
    assert hidden == [".out.partial-abcdef-1-00000000.mp4"], hidden
    assert (d / "out.mp4").is_file()


case("restore-removes-a-killed-runs-partials", *R, "{image.mp4}", *OUT, *W, ok=True,
     prep=_stale_partials, check=_only_foreign_partial_left)
# -- restore: outputs --------------------------------------------------------------------------
case("restore-output-exists", *R, "{clip}", *OUT, *W, rc=4, says="already exists",
     prep=_exists("out.mp4"))
case("restore-output-is-input", *R, "{clip}", "-o", "{clip}", *W, rc=4, says="is the input")
case("restore-output-folder-missing", *R, "{clip}", "-o", "{d}/no/out.mp4", *W, rc=4,
     says="does not exist")
case("restore-output-unknown-suffix", *R, "{clip}", "-o", "{d}/out.xyz", *W, rc=4)
case("restore-output-no-suffix", *R, "{clip}", "-o", "{d}/out", *W, rc=4)
case("restore-compare-is-output", *R, "{clip}", *OUT, "--compare", "{d}/out.mp4", *W, rc=4)
case("restore-compare-is-input", *R, "{clip}", *OUT, "--compare", "{clip}", *W, rc=4)
case("restore-compare-exists", *R, "{clip}", *OUT, "--compare", "{d}/c.mp4", *W, rc=4,
     prep=_exists("c.mp4"))
case("restore-report-exists", *R, "{clip}", *OUT, "--report", "{d}/r.json", *W, rc=4,
     prep=_exists("r.json"))
case("restore-report-is-output", *R, "{clip}", *OUT, "--report", "{d}/out.mp4", *W, rc=4)
case("restore-report-is-compare", *R, "{clip}", *OUT, "--report", "{d}/c.mp4",
     "--compare", "{d}/c.mp4", *W, rc=4)
case("restore-report-folder-missing", *R, "{clip}", *OUT, "--report", "{d}/no/r.json", *W,
     rc=4)
case("restore-sequence-bad-suffix", *R, "{clip}", "-o", "{d}/seq/f%04d.gif", *W, rc=2)
case("restore-sequence-parent-missing", *R, "{clip}", "-o", "{d}/a/b/f%04d.png", *W, rc=4)
case("restore-sequence-clash", *R, "{clip}", "-o", "{d}/f%04d.png", *W, rc=4,
     prep=_exists("f0001.png"))
# -- restore: checkpoints ----------------------------------------------------------------------
for name in ("text", "empty", "page", "random", "zipish", "othernet", "exploit"):
    case(f"restore-weights-{name}", *R, "{clip}", *OUT, "--weights", f"{{{name}.pth}}",
         "--no-progress", rc=5)
case("restore-weights-missing", *R, "{clip}", *OUT, "--weights", "{d}/none.pth", rc=5)
case("restore-weights-folder", *R, "{clip}", *OUT, "--weights", "{folder}", rc=5)
case("restore-weights-suffix", *R, "{clip}", *OUT, "--weights", "{text.mp4}", rc=5)
# -- restore: options --------------------------------------------------------------------------
FLOATS = ("fidelity", "recurrent-gain", "blend", "score-threshold", "nms-threshold", "min-face",
          "smooth", "confirm-score", "cut-threshold")
for opt in FLOATS:
    for bad in ("nan", "inf", "-inf"):
        case(f"restore-{opt}-{bad}", *R, "{clip}", *OUT, *W, f"--{opt}", bad, rc=2)
for opt, bad in (("fidelity", "2"), ("fidelity", "-0.5"), ("blend", "1.5"), ("blend", "-1"),
                 ("score-threshold", "1.5"), ("nms-threshold", "2"), ("recurrent-gain", "3"),
                 ("window", "-1"), ("batch-size", "-1"), ("detect-size", "0"),
                 ("lookahead", "-1"), ("max-gap", "-1"), ("min-hits", "0"), ("crf", "99"),
                 ("encoder-threads", "-1"), ("scan-every", "-1"), ("detect-batch", "0"),
                 ("window", "x"), ("crf", "1.5")):
    case(f"restore-{opt}={bad}", *R, "{clip}", *OUT, *W, f"--{opt}", bad, rc=2)
for opt in ("temporal", "dtype", "mask", "grayscale", "detector", "video-codec", "preset",
            "prores-profile"):
    case(f"restore-{opt}-unknown", *R, "{clip}", *OUT, *W, f"--{opt}", "bogus", rc=2)
for opt, bad in (("faces", "0"), ("faces", "abc"), ("faces", "-1"), ("faces", "1-"),
                 ("track-settings", "x"), ("track-settings", "1:fidelity=2"),
                 ("track-settings", "1:bogus=1"), ("track-settings", "0:blend=0.5"),
                 ("track-settings", "1:fidelity=nan"), ("device", "bogus"),
                 ("device", "cuda:x"), ("pix-fmt", "bogus"), ("fps", "0"), ("fps", "abc"),
                 ("fps", "-25"), ("start", "abc"), ("end", "abc"), ("end", "-1"),
                 ("start", "1:99"), ("end", "nan")):
    case(f"restore-{opt}={bad}", *R, "{clip}", *OUT, *W, f"--{opt}", bad, rc=2)
case("restore-start-after-end", *R, "{clip}", *OUT, *W, "--start", "0.2", "--end", "0.1",
     rc=2)
case("restore-start-beyond-end-of-video", *R, "{clip}", *OUT, *W, "--start", "100")
case("restore-unknown-option", *R, "{clip}", *OUT, *W, "--fidelty", "0.5", rc=2)
case("restore-no-output", *R, "{clip}", *W, rc=2)
case("restore-faces-none-appear", *R, "{clip}", *OUT, *W, "--faces", "99", rc=2,
     says="none of the chosen tracks (99) appeared")
case("restore-mask-parse-missing-model", *R, "{clip}", *OUT, *W, "--mask", "parse")
case("restore-retinaface-missing-model", *R, "{clip}", *OUT, *W, "--detector", "retinaface")

# -- track -------------------------------------------------------------------------------------
T = ("track",)
TOUT = ("-o", "{d}/t.json", "--no-progress")
case("track-missing-input", *T, "{d}/none.mp4", *TOUT, rc=3)
case("track-input-folder", *T, "{folder}", *TOUT, rc=2, says="needs its frame rate")
case("track-text-as-video", *T, "{text.mp4}", *TOUT, rc=3)
case("track-bomb", *T, "{bomb.mp4}", *TOUT, rc=3, says="larger than")
case("track-huge-header", *T, "{huge.y4m}", *TOUT, rc=3)
case("track-output-exists", *T, "{clip}", *TOUT, rc=4, prep=_exists("t.json"))
case("track-output-is-input", *T, "{clip}", "-o", "{clip}", rc=4)
case("track-output-folder-missing", *T, "{clip}", "-o", "{d}/no/t.json", rc=4)
case("track-sheet-exists", *T, "{clip}", *TOUT, "--sheet", "{d}/s.png", rc=4,
     prep=_exists("s.png"))
case("track-sheet-is-output", *T, "{clip}", *TOUT, "--sheet", "{d}/t.json", rc=4)
case("track-sheet-bad-suffix", *T, "{clip}", *TOUT, "--sheet", "{d}/s.xyz")
for opt, bad in (("smooth", "nan"), ("score-threshold", "nan"), ("min-hits", "0"),
                 ("detect-size", "0"), ("lookahead", "-1"), ("fps", "0"),
                 ("device", "bogus"), ("detector", "bogus"), ("cut-threshold", "inf"),
                 ("confirm-score", "2"), ("start", "abc")):
    case(f"track-{opt}={bad}", *T, "{clip}", *TOUT, f"--{opt}", bad, rc=2)
case("track-start-after-end", *T, "{clip}", *TOUT, "--start", "0.3", "--end", "0.1", rc=2)

# -- preview -----------------------------------------------------------------------------------
P = ("preview",)
POUT = ("-o", "{d}/p.png", "--weights", "{tiny}")
case("preview-missing-input", *P, "{d}/none.mp4", *POUT, rc=3)
case("preview-text-as-video", *P, "{text.mp4}", *POUT, rc=3)
case("preview-bomb", *P, "{bomb.mp4}", *POUT, rc=3)
case("preview-output-exists", *P, "{clip}", *POUT, rc=4, prep=_exists("p.png"))
case("preview-output-folder-missing", *P, "{clip}", "-o", "{d}/no/p.png", "--weights",
     "{tiny}", rc=4)
case("preview-weights-text", *P, "{clip}", "-o", "{d}/p.png", "--weights", "{text.pth}",
     rc=5)
case("preview-weights-exploit", *P, "{clip}", "-o", "{d}/p.png", "--weights",
     "{exploit.pth}", rc=5)
for opt, bad in (("frames", "0"), ("frames", "-1"), ("at", "abc"), ("fidelity", "nan"),
                 ("blend", "nan"), ("faces", "0"), ("mask", "bogus"), ("at", "nan")):
    case(f"preview-{opt}={bad}", *P, "{clip}", *POUT, f"--{opt}", bad, rc=2)
case("preview-at-beyond-end", *P, "{clip}", *POUT, "--at", "100")

# -- pipe --------------------------------------------------------------------------------------
I_ = ("pipe", "--no-progress", "--weights", "{tiny}")
case("pipe-no-size", *I_, rc=2)
for bad in ("abc", "0x0", "64", "64x-48", "100000x100000"):
    case(f"pipe-size={bad}", *I_, "--size", bad, rc=2)
for opt, bad in (("rate", "0"), ("rate", "abc"), ("pix-fmt", "bogus"), ("lookahead", "-1"),
                 ("fidelity", "nan"), ("faces", "0")):
    case(f"pipe-{opt}={bad}", *I_, "--size", "64x48", f"--{opt}", bad, rc=2)
case("pipe-weights-text", "pipe", "--no-progress", "--size", "64x48", "--weights",
     "{text.pth}", rc=5)

# -- batch -------------------------------------------------------------------------------------
B = ("batch", "run")
BOUT = ("--out", "{d}/out", "--weights", "{tiny}")
case("batch-missing-source-planned", *B, "{d}/none.mp4", *BOUT, "--dry-run", ok=True,
     check=lambda w, d, r: "input unreadable" in r.stdout or pytest.fail(r.stdout))
case("batch-no-sources", *B, "{d}/empty", *BOUT,
     prep=lambda w, d: (d / "empty").mkdir())
case("batch-missing-list", *B, "@{d}/list.txt", *BOUT, rc=2)
case("batch-list-loop", *B, "@{d}/list.txt", *BOUT, rc=2, says="nested",
     prep=lambda w, d: (d / "list.txt").write_text(f"@{d}/list.txt\n"))
case("batch-out-is-file", *B, "{clip}", "--out", "{d}/out", "--weights", "{tiny}",
     prep=_exists("out"))
for opt, bad in (("codec", "bogus"), ("segment-frames", "-1"), ("retries", "-1"),
                 ("fps", "0"), ("deinterlace", "bogus"), ("segment-seconds", "nan"),
                 ("workers", "0"), ("fidelity", "nan")):
    case(f"batch-{opt}={bad}", *B, "{clip}", *BOUT, f"--{opt}", bad, rc=2)


def _junk_db(w: World, d: Path) -> None:
    (d / "out").mkdir()
    (d / "out" / "vidrestore-jobs.sqlite").write_bytes(b"not a database at all" * 100)


def _schema_db(w: World, d: Path) -> None:
    (d / "out").mkdir()
    db = sqlite3.connect(d / "out" / "vidrestore-jobs.sqlite")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('schema', '999')")
    db.commit()
    db.close()


def _hostile_db(*, output: bool) -> Callable[[World, Path], None]:
    """A job database (edited by a neighbour) whose rows name a file outside the batch folder:
    the output a job replaces, or the snapshot a resume would read and then delete."""

    def prep(w: World, d: Path) -> None:
        from vidrestore.batch.jobs import JobDB, SegmentRecord

        out = d / "out"
        out.mkdir()
        victim = d / "victim.mkv"
        victim.write_bytes(b"precious")
        with JobDB(out) as db:
            job = db.add(source=str(w.path("clip")), kind="video", output=str(out / "clip.mkv"),
                         options="{}", options_hash="x")
            db.segment_begin(job.id, 0, 0, "w")
            db.segment_done(SegmentRecord(job.id, 0, 0, frames=4, out_first=0, out_frames=4,
                                          path=str(out / "seg"), hash="h", status="done"))
        db = sqlite3.connect(out / "vidrestore-jobs.sqlite")
        if output:
            db.execute("UPDATE jobs SET output = ?", (str(victim),))
        else:
            db.execute("UPDATE segments SET state_path = ?, state_hash = 'h'", (str(victim),))
        db.commit()
        db.close()
    return prep


def _victim_kept(w: World, d: Path, r: Run) -> None:
    assert (d / "victim.mkv").read_bytes() == b"precious"


case("batch-database-junk", *B, "{clip}", *BOUT, rc=4, says="not a usable job database",
     prep=_junk_db)
case("batch-database-schema", *B, "{clip}", *BOUT, rc=2, says="schema 999", prep=_schema_db)
case("batch-database-output-outside", *B, "{clip}", *BOUT, rc=4, says="outside the batch",
     prep=_hostile_db(output=True), check=_victim_kept)
case("batch-database-segment-outside", *B, "{clip}", *BOUT, rc=4, says="outside the batch",
     prep=_hostile_db(output=False), check=_victim_kept)
case("batch-status-output-outside", "batch", "status", "{d}/out", rc=4,
     says="outside the batch", prep=_hostile_db(output=True), check=_victim_kept)
case("batch-status-segment-outside", "batch", "status", "{d}/out", rc=4,
     says="outside the batch", prep=_hostile_db(output=False), check=_victim_kept)
case("batch-status-no-batch", "batch", "status", "{d}", rc=2, says="no batch here")


def _loop(w: World, d: Path) -> None:
    src = d / "src"
    (src / "sub").mkdir(parents=True)
    (src / "clip.mp4").write_bytes(w.path("clip").read_bytes())
    (src / "sub" / "up").symlink_to(src)
    (src / "again.mp4").symlink_to(src / "clip.mp4")


def _one_job(w: World, d: Path, r: Run) -> None:
    planned = [line for line in r.stdout.splitlines() if line.startswith("new")]
    assert len(planned) == 1, r.stdout


case("batch-symlink-loop-is-one-input", *B, "{d}/src", *BOUT, "--dry-run", ok=True,
     prep=_loop, check=_one_job)

# -- weights -----------------------------------------------------------------------------------
case("weights-import-unknown", "weights", "import", "bogus", "{tiny}", rc=2)
case("weights-import-missing-file", "weights", "import", "codeformer", "{d}/none.pth", rc=2)
case("weights-import-folder", "weights", "import", "codeformer", "{folder}")
case("weights-import-text-as-codeformer", "weights", "import", "codeformer", "{text.pth}",
     rc=5)
case("weights-import-exploit-as-parsenet", "weights", "import", "parsenet",
     "{exploit.pth}", rc=5)
case("weights-import-codeformer-as-parsenet", "weights", "import", "parsenet", "{tiny}",
     rc=5, says="not ParseNet")
case("weights-import-text-as-yunet", "weights", "import", "yunet", "{text.pth}", rc=5)
case("weights-import-codeformer-as-retinaface", "weights", "import", "retinaface_resnet50",
     "{tiny}", rc=5)
case("weights-download-unknown", "weights", "download", "bogus", rc=2)
case("weights-download-offline", "weights", "download", "codeformer", rc=5)


def _cached_yunet(w: World, d: Path) -> None:
    """YuNet in the cache, as ``weights download`` puts it there from a mirror."""
    r = w.forker.run("weights", "download", "yunet", cwd=d, env=w.env)
    assert r.rc == 0, r.stderr


def _verify_notices(w: World, d: Path, r: Run) -> None:
    """A cached model changed by one byte with its mtime put back is noticed by a run."""
    cache = Path(w.env["VIDRESTORE_HOME"])
    path = next(p for p in cache.iterdir() if p.suffix == ".onnx")
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = w.forker.run("restore", str(w.path("clip")), "-o", str(d / "out.mp4"), "--weights",
                         str(w.path("tiny")), "--no-progress", cwd=d, env=w.env)
    assert again.rc == 5 and "fails its check" in again.stderr, again
    assert not (d / "out.mp4").exists()
    for p in cache.iterdir():
        p.unlink()


case("weights-changed-file-with-mtime-kept", "weights", "list", ok=True, prep=_cached_yunet,
     check=_verify_notices)


# -- runner --------------------------------------------------------------------------------------
def _format(arg: str, w: World, d: Path) -> str:
    keys = {"d": str(d), **{k: str(v) for k, v in w.files.items()}}
    for k, v in keys.items():
        arg = arg.replace("{" + k + "}", v)
    return arg


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_promise(c: Case, world: World) -> None:
    w = world
    d = w.root / "cases" / c.id
    d.mkdir(parents=True)
    if c.prep is not None:
        c.prep(w, d)
    before = _listing(d)
    outside = _listing(w.root / "inputs")
    r = w.forker.run(*(_format(a, w, d) for a in c.args), cwd=d, env={**w.env, **dict(c.env)})
    assert "Traceback" not in r.stderr, r.stderr
    assert not w.marker.exists(), "a file ran code"
    assert _listing(w.root / "inputs") == outside, "an input changed"
    lines = r.stderr.splitlines()
    if c.ok:
        assert r.rc == 0, r.stderr
        if c.says is not None:
            assert c.says in r.stderr, r.stderr
    else:
        assert r.rc != 0, (r.rc, r.stdout, r.stderr)
        if c.rc is not None:
            assert r.rc == c.rc, (r.rc, r.stderr)
        errors = [n for n in lines if n.startswith(ERROR)]
        assert len(errors) == 1 and lines[-1] == errors[0], r.stderr
        if c.says is not None:
            assert c.says in errors[0], errors[0]
        assert _listing(d) == before, "something was written at a destination"
    if c.check is not None:
        c.check(w, d, r)


def test_matrix_is_large() -> None:
    assert len(CASES) >= 150, len(CASES)


# -- hostile files read in process ---------------------------------------------------------------
def test_a_pickled_snapshot_runs_no_code(tmp_path: Path, world: World) -> None:
    from vidrestore.batch.jobs import SegmentRecord
    from vidrestore.batch.workfiles import load_state
    from vidrestore.restore.snapshot import SnapshotError, loads

    blob = pickle.dumps({"restorer": Marker(str(world.marker)), "weave": None})
    state = tmp_path / "seg_00000.state"
    state.write_bytes(blob)
    rec = SegmentRecord(1, 0, 0, frames=4, status="done", state_path=str(state),
                        state_hash=hashlib.sha256(blob).hexdigest())
    with pytest.raises(SnapshotError, match=r"not a vidrestore snapshot|damaged"):
        load_state(rec)
    with pytest.raises(SnapshotError):
        loads(blob, ())
    assert not world.marker.exists()


def test_a_snapshot_names_only_allowed_types(tmp_path: Path) -> None:
    from vidrestore.restore.snapshot import SnapshotError, dumps, loads

    class Foreign:
        pass

    with pytest.raises(TypeError, match="not a type that snapshots may hold"):
        dumps({"x": Foreign()}, ())
    blob = dumps({"x": [1, 2.5, (3, "a")], "y": np.arange(4)}, ())
    back = loads(blob, ())
    assert back["x"] == [1, 2.5, (3, "a")] and np.array_equal(back["y"], np.arange(4))
    # another version's classes: refused with one line, not half-read
    with pytest.raises(SnapshotError, match="another version"):
        loads(blob, (Foreign,))


class _Endless(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        self.send_response(200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"\0" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_an_endless_download_is_cut_at_the_expected_size(tmp_path: Path, world: World) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cache = tmp_path / "cache"
        env = {**world.env, "VIDRESTORE_HOME": str(cache),
               "VIDRESTORE_MIRROR": f"http://127.0.0.1:{server.server_address[1]}/",
               "VIDRESTORE_OFFLINE": "0"}
        r = world.forker.run("weights", "download", "yunet", cwd=tmp_path, env=env)
    finally:
        server.shutdown()
    assert r.rc == 5 and "more than the" in r.stderr, r.stderr
    assert not cache.exists() or not any(cache.iterdir()), list(cache.iterdir())


def test_planted_symlinks_in_the_cache_are_not_followed(tmp_path: Path, world: World) -> None:
    """A neighbour who can write in a shared cache plants links where the writers' temporary
    and sidecar files go: none is followed, the link's target stays as it was."""
    import vidrestore.io.paths as paths

    cache = tmp_path / "cache"
    cache.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    env = {**world.env, "VIDRESTORE_HOME": str(cache)}
    assert world.forker.run("weights", "download", "yunet", cwd=tmp_path, env=env).rc == 0
    model = next(p for p in cache.iterdir() if p.suffix == ".onnx")
    for name in (".recorded.json.tmp", f".{model.name}.sha256", f".{model.name}.sha256.tmp",
                 "recorded.json.tmp"):
        (cache / name).unlink(missing_ok=True)
        (cache / name).symlink_to(victim)
    paths.write_text_atomic(cache / "recorded.json", "{}")
    r = world.forker.run("weights", "list", cwd=tmp_path, env=env)
    assert r.rc == 0, r.stderr
    assert victim.read_text() == "precious"
    assert not (cache / "recorded.json").is_symlink()
    assert not (cache / f".{model.name}.sha256").is_symlink()


def test_side_outputs_follow_a_failed_main_output(tmp_path: Path, world: World,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The main output cannot be moved into place at the end (here: a file appeared at its
    name during the run): the comparison and the report, finished before it, are not left."""
    from vidrestore.errors import OutputError
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.options import RestoreOptions

    for k, v in world.env.items():
        monkeypatch.setenv(k, v)
    out, side, report = tmp_path / "out.mp4", tmp_path / "c.mp4", tmp_path / "r.json"

    def squat(done: int, total: int | None) -> None:
        if done == 1:
            out.write_bytes(b"someone else's")

    with pytest.raises(OutputError, match="appeared while writing"):
        restore_video(world.path("clip"), out, RestoreOptions(weights=str(world.path("tiny"))),
                      compare=side, report=report, progress=False, progress_callback=squat)
    assert out.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
