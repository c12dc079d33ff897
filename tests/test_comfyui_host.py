"""The node pack inside a real ComfyUI with VideoHelperSuite, driven over HTTP and the websocket.

The two host tarballs in ``shared/hosts`` are unpacked into a temporary folder; the server runs
in a virtualenv of its own, built once and kept in ``.venv/hosts/comfyui-<key>/`` (``key``: the
two requirements files, the Python and the torch version). That virtualenv reuses this project's
packages (torch among them) through a ``.pth`` line naming the project's site-packages, and pip
installs only what ComfyUI and VideoHelperSuite need on top, with every package of the project
pinned, so none is replaced. The library is not importable there: the pack is this checkout
linked into ``custom_nodes/`` as ComfyUI-Manager clones it (named ``vidrestore``, the worst
case for name shadowing), and its root ``__init__.py`` has to bring the library itself.

A cold run builds the virtualenv (about a minute with a reachable registry); a warm one only
starts the server (10-20 s) and runs the workflows: Load Video -> Load CodeFormer -> Restore
Faces -> Video Combine, a chunked run under the Meta Batch Manager, Track Faces, the pack's
example workflow, Cancel, and bad inputs. Video Combine writes 16-bit FFV1, exact for 8-bit
frames, so the frames are compared to ``vidrestore restore`` bit for bit, on the frames Load
Video decoded (its OpenCV decoder and the library's give different pictures of one H.264 file).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from synth import load_rgb, panned_face_clip, tiny_checkpoint, write_clip

websocket = pytest.importorskip("websocket", reason="websocket-client is not installed")
pytestmark = pytest.mark.skipif(os.name != "posix", reason="the host runs in a POSIX process group")

REPO = Path(__file__).resolve().parents[1]
HOST_ENVS = REPO / ".venv" / "hosts"
COMFY_TAR, VHS_TAR = "ComfyUI-0.33.0.tar.gz", "ComfyUI-VideoHelperSuite.tar.gz"
PACK_LINK = "vidrestore"  # custom_nodes/vidrestore -> this checkout
W = H = 256
N = 24  # frames of the main clip
LONG_N = 64  # the clip that is cancelled early
EXAMPLE_N = 12  # the clip the example workflow gets
CHUNK = 10  # Meta Batch Manager frames_per_batch: chunks of 10, 10, 4
BATCH = 2  # faces per network batch (the CPU default), also given to the CLI
RATE = 25
SERVER_START_S = 180.0
ANIME = "realesr-animevideov3.ncnn-fp16.pth"  # real compact x4 weights in the mirror
UPSCALER = "realesr-animevideov3.pth"  # its link in upscale_models
NOT_SR = "restoration-1x.pth"  # a 1x compact network: spandrel reads it as restoration
UP_N = 4  # frames of the upscaled runs
UP_CHUNK = 2
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TERMINAL = ("execution_success", "execution_error", "execution_interrupted")
# Video Combine, 16-bit FFV1 with FLAC sound: 8-bit frames k/255 are stored as k*257, exactly
# (it hands ffmpeg 16-bit pictures; their conversion to 8-bit "bgra" rounds some values up).
FFV1 = {"format": "video/ffv1-mkv", "level": "3", "coder": "1", "context": "1", "gop_size": 1,
        "slices": "16", "slicecrc": "1", "pix_fmt": "rgba64le", "save_metadata": False,
        "trim_to_audio": False}


# -- the host environment -------------------------------------------------------------------------
def _run(cmd: list[str], *, timeout: float, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _unpack(tarball: Path, into: Path) -> None:
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # Python before 3.10.12 / 3.11.4
            tar.extractall(into)


def _project_pins() -> list[str]:
    """``name==version`` of every package this environment has (its tools and the editable
    library aside), so that pip keeps them rather than installing others beside them."""
    skip = {"pip", "setuptools", "wheel", "vidrestore"}
    pins = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and name not in skip:
            pins[name] = f"{name}=={dist.version}"
    return sorted(pins.values())


def _env_key(tree: Path) -> str:
    h = hashlib.sha256()
    for part in ((tree / "ComfyUI" / "requirements.txt").read_bytes(),
                 (tree / "ComfyUI-VideoHelperSuite" / "requirements.txt").read_bytes(),
                 sys.version.split()[0].encode(), torch.__version__.encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _env_python(env: Path) -> Path:
    return env / "bin" / "python"


def _check_env(python: Path) -> str | None:
    """None when ``python`` is a usable host environment, else what is wrong with it."""
    code = ("import json, torch, torchvision, aiohttp, sqlalchemy, imageio_ffmpeg\n"
            "try:\n import vidrestore\n lib = vidrestore.__file__\n"
            "except ImportError:\n lib = None\n"
            "print(json.dumps([torch.__version__, torch.__file__, lib]))")
    if not python.exists():
        return f"{python} is missing"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:  # run outside the checkout: the current folder is on sys.path
        res = _run([str(python), "-c", code], timeout=120, cwd=python.parent, env=env)
    except subprocess.TimeoutExpired:
        return "importing torch timed out"
    if res.returncode != 0:
        return res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "python failed"
    version, where, lib = json.loads(res.stdout.strip().splitlines()[-1])
    if version != torch.__version__ or not Path(where).is_relative_to(
            Path(sysconfig.get_paths()["purelib"])):
        return f"torch {version} from {where}, not the project's {torch.__version__}"
    if lib is not None:
        return f"vidrestore is importable there ({lib}): the pack would not need its clone"
    return None


def _build_env(tree: Path, dest: Path) -> None:
    """Make the host virtualenv under a temporary name and rename it to ``dest`` when it works;
    pytest.skip when pip cannot install (no registry)."""
    tmp = dest.with_name(f".{dest.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        res = _run([sys.executable, "-m", "venv", str(tmp)], timeout=300)
        assert res.returncode == 0, f"python -m venv failed:\n{res.stderr}"
        py = _env_python(tmp)
        res = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   timeout=60)
        site = Path(res.stdout.strip())
        project_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        (site / "zz-vidrestore-project.pth").write_text("".join(p + "\n" for p in project_site))
        constraints = tmp / "project-constraints.txt"
        constraints.write_text("\n".join(_project_pins()) + "\n")
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        env.pop("PYTHONPATH", None)
        try:
            res = _run([str(py), "-m", "pip", "install", "-c", str(constraints),
                        "-r", str(tree / "ComfyUI" / "requirements.txt"),
                        "-r", str(tree / "ComfyUI-VideoHelperSuite" / "requirements.txt")],
                       timeout=1500, env=env)
        except subprocess.TimeoutExpired:
            pytest.skip("installing ComfyUI's requirements timed out (no package registry?)")
        (tmp / "pip-install.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-8:])
            pytest.skip(f"cannot install ComfyUI's requirements (no package registry?):\n{tail}")
        problem = _check_env(py)
        assert problem is None, f"the host virtualenv is not right: {problem}"
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def host_python(tree: Path) -> Path:
    """The cached host virtualenv's python, built first if needed (one build at a time)."""
    from filelock import FileLock

    HOST_ENVS.mkdir(parents=True, exist_ok=True)
    dest = HOST_ENVS / f"comfyui-{_env_key(tree)}"
    with FileLock(str(HOST_ENVS / ".lock"), timeout=2400):
        for stale in HOST_ENVS.glob(".comfyui-*.building-*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        if dest.exists() and _check_env(_env_python(dest)) is not None:
            shutil.rmtree(dest)  # left by an older project environment: build it again
        if not dest.exists():
            _build_env(tree, dest)
    return _env_python(dest)


# -- the server -----------------------------------------------------------------------------------
class Rejected(Exception):
    """``POST /prompt`` refused the workflow (validation): the server's JSON answer."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body)[:2000])
        self.body = body


@dataclass
class Event:
    t: float  # time.monotonic() when received
    type: str
    data: dict[str, Any]


@dataclass
class Run:
    prompt_id: str
    events: list[Event]
    history: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> Event:
        return next(e for e in self.events if e.type in TERMINAL
                    and e.data.get("prompt_id") == self.prompt_id)

    def outputs(self, node: str) -> dict[str, Any]:
        return self.history.get("outputs", {}).get(node, {})


class Comfy:
    """A running ComfyUI server and its log."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.root, self.port, self.proc, self.log = root, port, proc, log
        self.base = f"http://127.0.0.1:{port}"

    def log_text(self, start: int = 0) -> str:
        return ANSI.sub("", self.log.read_text(errors="replace")[start:])

    def log_size(self) -> int:
        return len(self.log.read_text(errors="replace"))

    def request(self, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def history(self, prompt_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The prompt's history entry; it is written just after the prompt's last event."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.request(f"/history/{prompt_id}").get(prompt_id)
            if entry and "status" in entry:
                return dict(entry)
            assert time.monotonic() < deadline, f"no history of {prompt_id} after {timeout} s"
            time.sleep(0.1)

    def queue_empty(self) -> bool:
        q = self.request("/queue")
        return not q["queue_running"] and not q["queue_pending"]

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.queue_empty():
            assert time.monotonic() < deadline, f"the queue is still busy after {timeout} s"
            time.sleep(0.2)

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        c = Client(self)
        try:
            yield c
        finally:
            c.close()


class Client:
    """One websocket client (``clientId``): submits workflows and reads their events."""

    def __init__(self, server: Comfy) -> None:
        self.server = server
        self.id = uuid.uuid4().hex
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/ws?clientId={self.id}", timeout=10)
        self.events: list[Event] = []

    def close(self) -> None:
        self.ws.close()

    def submit(self, graph: dict[str, Any]) -> str:
        try:
            answer = self.server.request("/prompt", {"prompt": graph, "client_id": self.id})
        except urllib.error.HTTPError as err:
            raise Rejected(json.loads(err.read() or b"{}")) from None
        assert not answer.get("node_errors"), answer
        return str(answer["prompt_id"])

    def next_event(self, deadline: float) -> Event:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no websocket event in time")
            self.ws.settimeout(left)
            try:
                msg = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                raise TimeoutError("no websocket event in time") from None
            if isinstance(msg, bytes):
                continue  # preview images
            obj = json.loads(msg)
            ev = Event(time.monotonic(), obj.get("type", ""), obj.get("data") or {})
            self.events.append(ev)
            return ev

    def wait(self, stop: Callable[[Event], bool], timeout: float, what: str) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.next_event(deadline)
            except TimeoutError:
                raise AssertionError(f"{what}: not within {timeout} s; last events: "
                                     f"{[e.type for e in self.events[-8:]]}\nserver log:\n"
                                     f"{self.server.log_text()[-4000:]}") from None
            if stop(ev):
                return ev

    def finish(self, prompt_id: str, timeout: float) -> Run:
        start = len(self.events)
        self.wait(lambda e: e.type in TERMINAL and e.data.get("prompt_id") == prompt_id,
                  timeout, f"prompt {prompt_id} to end")
        return Run(prompt_id, self.events[start:], self.server.history(prompt_id))

    def run(self, graph: dict[str, Any], timeout: float = 240.0) -> Run:
        start = len(self.events)
        pid = self.submit(graph)
        run = self.finish(pid, timeout)
        run.events = self.events[start:]
        return run

    def run_requeued(self, graph: dict[str, Any], timeout: float = 300.0) -> list[Run]:
        """A workflow that the Meta Batch Manager queues again itself: every execution, in
        order, once the queue is empty."""
        deadline = time.monotonic() + timeout
        start = len(self.events)
        self.submit(graph)
        started: set[str] = set()
        ended: set[str] = set()
        while True:
            try:
                ev = self.next_event(min(deadline, time.monotonic() + 0.5))
            except TimeoutError:
                # caught up with the server's events: done when it has nothing left to run
                if started and started <= ended and self.server.queue_empty():
                    break
                assert time.monotonic() < deadline, (
                    f"the chunks did not end within {timeout} s:\n"
                    f"{self.server.log_text()[-4000:]}")
                continue
            if ev.type == "execution_start":
                started.add(ev.data["prompt_id"])
            elif ev.type in TERMINAL:
                ended.add(ev.data["prompt_id"])
        runs = []
        for ev in self.events[start:]:
            if ev.type in TERMINAL:
                pid = ev.data["prompt_id"]
                runs.append(Run(pid, self.events[start:], self.server.history(pid)))
        return runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def hosts_dir(shared_dir: Path) -> Path:
    hosts = shared_dir / "hosts"
    for name in (COMFY_TAR, VHS_TAR):
        if not (hosts / name).is_file():
            pytest.skip(f"the host tarballs are not in {hosts} ({name} is missing)")
    return hosts


@pytest.fixture(scope="module")
def host_tree(hosts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ComfyUI with VideoHelperSuite in ``custom_nodes``, unpacked for this session."""
    root = tmp_path_factory.mktemp("comfyui-host")
    _unpack(hosts_dir / COMFY_TAR, root)
    _unpack(hosts_dir / VHS_TAR, root)
    return root


@pytest.fixture(scope="module")
def comfy_python(host_tree: Path) -> Path:
    return host_python(host_tree)


@pytest.fixture(scope="module")
def checkpoint(host_tree: Path) -> Path:
    folder = host_tree / "ComfyUI" / "models" / "facerestore_models"
    folder.mkdir(parents=True, exist_ok=True)
    return tiny_checkpoint(folder / "codeformer.pth")


@pytest.fixture(scope="module")
def upscale_models(host_tree: Path, mirror_dir: Path) -> Path:
    """ComfyUI's ``models/upscale_models`` (of the temporary tree) with a link to the mirror's
    real compact x4 network and a 1x restoration network (no super-resolution model)."""
    from spandrel.architectures.Compact import Compact

    folder = host_tree / "ComfyUI" / "models" / "upscale_models"
    folder.mkdir(parents=True, exist_ok=True)
    if (mirror_dir / ANIME).is_file():
        (folder / UPSCALER).symlink_to(mirror_dir / ANIME)
    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=1, upscale=1)
    torch.save(net.state_dict(), folder / NOT_SR)
    return folder


@pytest.fixture(scope="module")
def server(host_tree: Path, comfy_python: Path, checkpoint: Path, upscale_models: Path,
           media_dir: Path, mirror_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Comfy]:
    comfy = host_tree / "ComfyUI"
    nodes = comfy / "custom_nodes"
    shutil.move(str(host_tree / "ComfyUI-VideoHelperSuite"), nodes / "ComfyUI-VideoHelperSuite")
    assert (REPO / "__init__.py").is_file(), (
        "the checkout has no root __init__.py: cloned into custom_nodes it is no node pack")
    (nodes / PACK_LINK).symlink_to(REPO, target_is_directory=True)
    inputs = comfy / "input"
    for name, n in (("faces.mp4", N), ("long.mp4", LONG_N), ("example.mp4", EXAMPLE_N)):
        panned_face_clip(inputs / name, media_dir, n, (W, H), audio=True)

    home = tmp_path_factory.mktemp("comfy-home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VIDRESTORE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), VIDRESTORE_HOME=str(home / "vidrestore"),
               VIDRESTORE_MIRROR=str(mirror_dir), VIDRESTORE_OFFLINE="1", PYTHONUNBUFFERED="1",
               VIDRESTORE_RUNTIME="torch")
    port = _free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(comfy_python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
             "--disable-auto-launch", "--disable-api-nodes"],
            cwd=comfy, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    srv = Comfy(comfy, port, proc, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            assert proc.poll() is None, f"ComfyUI exited ({proc.returncode}):\n{srv.log_text()}"
            with contextlib.suppress(OSError):
                if srv.request("/system_stats", timeout=5):
                    break
            assert time.monotonic() < deadline, (
                f"ComfyUI not ready after {SERVER_START_S} s:\n{srv.log_text()}")
            time.sleep(0.5)
        yield srv
    finally:
        _stop(proc)


# -- workflows ------------------------------------------------------------------------------------
def _load(video: str, *, cap: int = 0, meta: list[Any] | None = None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"video": video, "force_rate": 0, "custom_width": 0,
                              "custom_height": 0, "frame_load_cap": cap, "skip_first_frames": 0,
                              "select_every_nth": 1, "format": "None"}
    if meta is not None:
        inputs["meta_batch"] = meta
    return {"class_type": "VHS_LoadVideo", "inputs": inputs}


def _combine(images: list[Any], prefix: str, *, audio: list[Any] | None = None,
             meta: list[Any] | None = None) -> dict[str, Any]:
    inputs: dict[str, Any] = {"images": images, "frame_rate": RATE, "loop_count": 0,
                              "filename_prefix": prefix, "pingpong": False, "save_output": True,
                              **FFV1}
    if audio is not None:
        inputs["audio"] = audio
    if meta is not None:
        inputs["meta_batch"] = meta
    return {"class_type": "VHS_VideoCombine", "inputs": inputs}


def _model() -> dict[str, Any]:
    return {"class_type": "VidrestoreLoadCodeFormer",
            "inputs": {"model_name": "codeformer.pth", "device": "auto", "dtype": "auto"}}


def _restore(images: list[Any], **inputs: Any) -> dict[str, Any]:
    values = {"images": images, "model": ["2", 0], "fidelity": 0.5, "temporal": "window",
              "window": 4, "min_face": 20.0, "detector": "yunet", "batch_size": BATCH}
    return {"class_type": "VidrestoreRestoreFaces", "inputs": {**values, **inputs}}


def _show(source: list[Any]) -> dict[str, Any]:
    return {"class_type": "PreviewAny", "inputs": {"source": source}}


def _restore_graph(video: str, prefix: str, **inputs: Any) -> dict[str, Any]:
    """1 Load Video -> 3 Restore Faces (2 Load CodeFormer) -> 4 Video Combine with the sound;
    5 shows the report."""
    return {"1": _load(video), "2": _model(), "3": _restore(["1", 0], **inputs),
            "4": _combine(["3", 0], prefix, audio=["1", 2]), "5": _show(["3", 1])}


# -- decoded results ------------------------------------------------------------------------------
@dataclass
class Video:
    frames: np.ndarray  # [n, h, w, 3] uint8
    audio_streams: int
    audio_seconds: float


def _output_file(run: Run, node: str) -> Path:
    files = [Path(g["fullpath"]) for g in run.outputs(node).get("gifs", []) if "fullpath" in g]
    assert files, f"node {node} wrote no file: {run.history.get('outputs')}"
    assert files[-1].is_file(), files[-1]
    return files[-1]


def _decode(path: Path) -> Video:
    """A Video Combine output; 16-bit FFV1 holds 8-bit frames exactly (k*257)."""
    with av.open(str(path)) as c:
        if c.streams.video[0].codec_context.name == "ffv1":
            wide = np.stack([f.to_ndarray(format="rgb48le") for f in c.decode(video=0)])
            assert (wide % 257 == 0).all(), "the 16-bit frames are not 8-bit values"
            frames = (wide // 257).astype(np.uint8)
        else:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        n_audio = len(c.streams.audio)
        samples, rate = 0, 1
        if n_audio:
            rate = c.streams.audio[0].codec_context.sample_rate or 1
            samples = sum(f.samples for f in c.decode(audio=0))
    return Video(frames, n_audio, samples / rate)


def _report(run: Run, node: str = "5") -> dict[str, Any]:
    text = run.outputs(node).get("text")
    assert text, f"no report shown by node {node}: {run.history.get('outputs')}"
    return json.loads(text[0])


def _face_changed(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per frame: whether a face-sized part of the picture differs from ``ref``."""
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16)).max(axis=-1)
    return (diff > 4).mean(axis=(1, 2)) > 0.005


def _corners(out: np.ndarray, ref: np.ndarray, size: int = 24) -> int:
    d = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    return int(max(d[:, :size, :size].max(), d[:, :size, -size:].max(),
                   d[:, -size:, :size].max(), d[:, -size:, -size:].max()))


def _command(frames: np.ndarray, tmp_path: Path, checkpoint: Path, mirror_dir: Path,
             *flags: str) -> np.ndarray:
    """``vidrestore restore`` with the workflows' settings (and ``flags``) on ``frames``,
    stored losslessly: its frames."""
    clip = write_clip(tmp_path / "source.mkv", list(frames), rate=RATE, audio=False,
                      codec="ffv1", pix_fmt="bgr0")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONPATH": str(REPO), "VIDRESTORE_MIRROR": str(mirror_dir),
           "VIDRESTORE_HOME": str(tmp_path / "home"), "VIDRESTORE_OFFLINE": "1",
           "VIDRESTORE_RUNTIME": "torch"}
    res = _run([sys.executable, "-m", "vidrestore", "restore", str(clip), "-o",
                str(tmp_path / "seq" / "f_%03d.png"), "--weights", str(checkpoint),
                "--device", "cpu", "--dtype", "float32", "--batch-size", str(BATCH),
                "--fidelity", "0.5", "--temporal", "window", "--window", "4",
                "--no-progress", *flags], timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    return np.stack([load_rgb(tmp_path / "seq" / f"f_{i:03d}.png")
                     for i in range(1, len(frames) + 1)])


def _assert_ok(run: Run, server: Comfy) -> None:
    end = run.end
    assert end.type == "execution_success", (
        f"{end.type}: {end.data.get('exception_message', '')}\n{server.log_text()[-4000:]}")


@pytest.fixture(scope="module")
def source_frames(server: Comfy) -> np.ndarray:
    """The main clip as Load Video hands it to the graph (format None), read back losslessly."""
    with server.client() as c:
        run = c.run({"1": _load("faces.mp4"), "2": _combine(["1", 0], "source")})
    _assert_ok(run, server)
    frames = _decode(_output_file(run, "2")).frames
    assert frames.shape == (N, H, W, 3)
    return frames


@dataclass
class WholeRun:
    run: Run
    video: Video
    report: dict[str, Any]


@pytest.fixture(scope="module")
def whole(server: Comfy, source_frames: np.ndarray) -> WholeRun:
    """The main clip restored as one batch (after a short run that warms the network up, whose
    first calls are slow, so that the timing of this one is the steady one)."""
    with server.client() as c:
        warm = c.run({"1": _load("faces.mp4", cap=4), "2": _model(),
                      "3": _restore(["1", 0], fidelity=0.3), "5": _show(["3", 1])})
        _assert_ok(warm, server)
        run = c.run(_restore_graph("faces.mp4", "whole"))
    _assert_ok(run, server)
    return WholeRun(run, _decode(_output_file(run, "4")), _report(run))


def _node_span(run: Run, node: str) -> tuple[float, float]:
    """When ``node`` started and when the next node started (or the run ended)."""
    evs = run.events
    i = next(k for k, e in enumerate(evs) if e.type == "executing" and e.data.get("node") == node)
    after = next((e.t for e in evs[i + 1:] if e.type in ("executing", *TERMINAL)
                  and e.data.get("node") != node), run.end.t)
    return evs[i].t, after


def _progress(run: Run, node: str) -> list[Event]:
    return [e for e in run.events if e.type == "progress" and e.data.get("node") == node
            and e.data.get("prompt_id") == run.prompt_id]


def _faces_in(report: dict[str, Any]) -> int:
    return sum(len(t["frames"]) for t in report["tracks"])


# -- tests ----------------------------------------------------------------------------------------
def test_pack_is_imported_from_the_clone(server: Comfy) -> None:
    log = server.log_text()
    assert "IMPORT FAILED" not in log, log
    link = str(server.root / "custom_nodes" / PACK_LINK)
    assert any(line.rstrip().endswith(link) for line in log.splitlines()), log
    info = server.request("/object_info")
    assert {"VidrestoreLoadCodeFormer", "VidrestoreRestoreFaces", "VidrestoreTrackFaces",
            "VidrestoreFaceSettings"} <= set(info)
    models = info["VidrestoreLoadCodeFormer"]["input"]["required"]["model_name"][0]
    assert "codeformer.pth" in models  # the facerestore_models folder is registered


def test_whole_batch_restores_like_the_command(whole: WholeRun, source_frames: np.ndarray,
                                               checkpoint: Path, mirror_dir: Path,
                                               tmp_path: Path) -> None:
    out = whole.video
    assert out.frames.shape == source_frames.shape
    assert out.audio_streams == 1 and abs(out.audio_seconds - N / RATE) < 0.15, out.audio_seconds
    assert _face_changed(out.frames, source_frames).all()
    assert _corners(out.frames, source_frames) <= 1  # the background is left alone
    assert whole.report["tracks"]

    # the command on the very frames Load Video gave (its own decoder differs from OpenCV's)
    cli = _command(source_frames, tmp_path, checkpoint, mirror_dir)
    assert np.array_equal(out.frames, cli), (
        f"{(out.frames != cli).any(axis=-1).mean():.4f} of the pixels differ, "
        f"by up to {np.abs(out.frames.astype(int) - cli).max()}")


def test_progress_moves_during_the_run(whole: WholeRun) -> None:
    run = whole.run
    prog = _progress(run, "3")
    start, end = _node_span(run, "3")
    assert len(prog) > 1 and all(e.t <= run.end.t for e in prog)
    assert any(e.data["value"] < e.data["max"] for e in prog), [e.data for e in prog]
    values = [e.data["value"] for e in prog]
    assert values == sorted(values), values
    batches = math.ceil(_faces_in(whole.report) / BATCH)  # network batches of one pass
    assert len(prog) >= batches, (len(prog), batches, values)
    # the bar keeps moving: no silence of many batches (one batch may be slow on a busy machine)
    per_batch = (end - start) / (2 * batches)
    times = [e.t for e in prog] + [end]
    gap = max(b - a for a, b in itertools.pairwise(times))
    assert prog[0].t - start < 0.5 * (end - start), "the first progress came late"
    assert gap <= max(2.0, 8 * per_batch), (
        f"no progress for {gap:.2f} s (a network batch takes ~{per_batch:.2f} s): "
        f"{[(round(e.t - start, 2), e.data['value'], e.data['max']) for e in prog]}")


def _early(ev: Event) -> bool:
    return True


def _late(ev: Event) -> bool:
    """Nine tenths of the bar: late in the run, where the look-ahead and the window's tail are
    finished (no frame is read there, so only the network batches can notice a Cancel)."""
    return bool(ev.data["value"] >= 0.9 * ev.data["max"])


@pytest.mark.parametrize(("when", "video", "frames"), [
    pytest.param(_early, "long.mp4", LONG_N, id="first-progress"),
    pytest.param(_late, "faces.mp4", N, id="late"),
])
def test_cancel_stops_within_a_batch(server: Comfy, whole: WholeRun, when: Callable[[Event], bool],
                                     video: str, frames: int) -> None:
    start, end = _node_span(whole.run, "3")
    per_frame = (end - start) / N  # a frame's detection and its share of the network batches
    bound = min(2 * per_frame + 1.0, 20.0)
    # fidelity 0.45: not the whole run's inputs, which ComfyUI would answer from its cache
    graph = {"1": _load(video), "2": _model(), "3": _restore(["1", 0], fidelity=0.45),
             "5": _show(["3", 1])}
    with server.client() as c:
        pid = c.submit(graph)
        trigger = c.wait(lambda e: e.type == "progress" and e.data.get("node") == "3" and when(e),
                         max(120.0, 4 * frames * per_frame), "the restore node's progress")
        t0 = time.monotonic()
        server.request("/interrupt", {"prompt_id": pid})
        ev = c.wait(lambda e: e.type in TERMINAL and e.data.get("prompt_id") == pid,
                    max(60.0, 4 * frames * per_frame), "the interrupted prompt to end")
        waited = time.monotonic() - t0
        try:
            assert ev.type == "execution_interrupted", ev
            assert ev.data.get("node_id") == "3", ev.data
            assert trigger.data["value"] < trigger.data["max"], "the node ended first"
            assert waited <= bound, (
                f"stopped {waited:.2f} s after Cancel (a frame and a batch: ~{bound:.2f} s)")
        finally:
            server.wait_idle(max(60.0, 4 * frames * per_frame))
    assert server.queue_empty()


def test_meta_batch_chunks_restore_every_frame(server: Comfy, whole: WholeRun,
                                               source_frames: np.ndarray) -> None:
    graph = {"0": {"class_type": "VHS_BatchManager", "inputs": {"frames_per_batch": CHUNK}},
             "1": _load("faces.mp4", meta=["0", 0]), "2": _model(),
             "3": _restore(["1", 0], temporal="recurrent", meta_batch=["0", 0]),
             "4": _combine(["3", 0], "chunked", audio=["1", 2], meta=["0", 0])}
    with server.client() as c:
        runs = c.run_requeued(graph)
    assert server.queue_empty()
    assert [r.end.type for r in runs] == ["execution_success"] * math.ceil(N / CHUNK), (
        [(r.end.type, r.end.data.get("exception_message")) for r in runs])
    out = _decode(_output_file(runs[-1], "4"))
    assert out.frames.shape == source_frames.shape
    assert out.audio_streams == 1 and abs(out.audio_seconds - N / RATE) < 0.15
    assert _corners(out.frames, source_frames) <= 1
    chunked = _face_changed(out.frames, source_frames)
    expected = _face_changed(whole.video.frames, source_frames)
    assert (chunked == expected).all(), (
        f"frames restored whole but not in chunks: {np.flatnonzero(expected & ~chunked)}; "
        f"in chunks only: {np.flatnonzero(chunked & ~expected)}")


def test_track_faces_reports_and_draws(server: Comfy, source_frames: np.ndarray) -> None:
    graph = {"1": _load("faces.mp4"),
             "3": {"class_type": "VidrestoreTrackFaces",
                   "inputs": {"images": ["1", 0], "min_face": 20.0, "detector": "yunet"}},
             "4": _combine(["3", 0], "tracks"), "5": _show(["3", 1])}
    with server.client() as c:
        run = c.run(graph)
    _assert_ok(run, server)
    report = _report(run)
    assert report["tracks"] and report["tracks"][0]["id"] >= 1
    frames = sorted(f["frame"] for t in report["tracks"] for f in t["frames"])
    assert frames and frames[0] >= 0 and frames[-1] < N
    preview = _decode(_output_file(run, "4")).frames
    assert preview.shape == source_frames.shape
    drawn = np.abs(preview.astype(np.int16) - source_frames).max(axis=-1) > 0
    assert drawn.any(axis=(1, 2)).all() and drawn.mean() < 0.2  # boxes on every frame


def test_example_workflow_runs(server: Comfy) -> None:
    graph = json.loads((REPO / "plugins" / "comfyui" / "example_workflow.json").read_text())
    loaders = [k for k, v in graph.items() if v["class_type"] == "VHS_LoadVideo"]
    assert len(loaders) == 1
    graph[loaders[0]]["inputs"]["video"] = "example.mp4"
    combine = next(k for k, v in graph.items() if v["class_type"] == "VHS_VideoCombine")
    mark = server.log_size()
    with server.client() as c:
        try:
            runs = c.run_requeued(graph)
        except Rejected as err:
            pytest.fail(f"the server refused the example workflow: {err}")
    ends = [(r.end.type, r.end.data.get("exception_message")) for r in runs]
    assert all(t == "execution_success" for t, _ in ends), ends
    out = _decode(_output_file(runs[-1], combine))
    assert len(out.frames) == EXAMPLE_N and out.audio_streams == 1
    log = server.log_text(mark)
    warnings = [line for line in log.splitlines() if re.search(r"warn|removed|unknown", line, re.I)]
    assert not warnings, "\n".join(warnings)


RUNS = itertools.count(1)  # a new min_face each time: ComfyUI runs the node again, no cache
BAD_INPUTS = [
    pytest.param({"faces": "99"}, "faces", id="faces-unknown-id"),
    pytest.param({"faces": "-1"}, "faces", id="faces-negative"),
    pytest.param({"faces": "one,two"}, "faces", id="faces-not-ids"),
    pytest.param({"window": -1}, "window", id="window-negative"),
    pytest.param({"model_name": "missing.pth"}, "model_name", id="model-missing"),
]


@pytest.mark.parametrize(("bad", "name"), BAD_INPUTS)
def test_bad_input_is_one_readable_error(server: Comfy, bad: dict[str, Any], name: str) -> None:
    graph = {"1": _load("faces.mp4", cap=6), "2": _model(), "3": _restore(["1", 0]),
             "5": _show(["3", 1])}
    graph["2" if "model_name" in bad else "3"]["inputs"].update(bad)
    with server.client() as c:
        try:
            run = c.run(graph)
        except Rejected as err:  # refused before running: the server's own checks
            errors = [e for n in err.body.get("node_errors", {}).values() for e in n["errors"]]
            assert errors, err.body
            assert any(e.get("extra_info", {}).get("input_name") == name for e in errors), errors
            message = f"{errors[0]['message']}: {errors[0]['details']}"
        else:
            end = run.end
            assert end.type == "execution_error", (
                f"{bad} was accepted: {end.type}, outputs {run.history.get('outputs')}")
            message = str(end.data.get("exception_message", "")).strip()
            assert "Traceback" not in message
        assert "\n" not in message and name in message and len(message) < 400, message
        # the server goes on serving: a small real run right after
        ok = c.run({"1": _load("faces.mp4", cap=2),
                    "3": {"class_type": "VidrestoreTrackFaces",
                          "inputs": {"images": ["1", 0], "min_face": 20.0 + next(RUNS),
                                     "detector": "yunet"}},
                    "5": _show(["3", 1])}, timeout=120)
    _assert_ok(ok, server)


# -- upscaled output ------------------------------------------------------------------------------
def _upscale_loader(name: str) -> dict[str, Any]:
    return {"class_type": "UpscaleModelLoader", "inputs": {"model_name": name}}


@pytest.fixture(scope="module")
def upscaled(server: Comfy, upscale_models: Path) -> WholeRun:
    """The clip's first frames through core's Load Upscale Model and Restore Faces at
    upscale 2."""
    if not (upscale_models / UPSCALER).exists():
        pytest.skip(f"{ANIME} is not in the mirror")
    graph = {"1": _load("faces.mp4", cap=UP_N), "2": _model(), "6": _upscale_loader(UPSCALER),
             "3": _restore(["1", 0], upscale=2, upscale_model=["6", 0]),
             "4": _combine(["3", 0], "upscaled"), "5": _show(["3", 1])}
    with server.client() as c:
        run = c.run(graph)
    _assert_ok(run, server)
    return WholeRun(run, _decode(_output_file(run, "4")), _report(run))


def test_upscale_model_input_upscales_like_the_command(upscaled: WholeRun,
                                                      source_frames: np.ndarray,
                                                      checkpoint: Path, mirror_dir: Path,
                                                      tmp_path: Path) -> None:
    from vidrestore.upscale import Upscaler, load_background

    src = source_frames[:UP_N]
    out = upscaled.video.frames
    assert out.shape == (UP_N, 2 * H, 2 * W, 3)
    assert upscaled.report["video"]["width"] == W  # tracks stay in source coordinates
    # the command with the same file as --background gives the same frames
    cli = _command(src, tmp_path, checkpoint, mirror_dir, "--upscale", "2",
                   "--background", str(mirror_dir / ANIME))
    assert np.array_equal(out, cli), (
        f"{(out != cli).any(axis=-1).mean():.4f} of the pixels differ, "
        f"by up to {np.abs(out.astype(int) - cli).max()}")
    # away from the face the frame is the model's picture (spandrel-loaded in this process)
    canvas = Upscaler(2, load_background(mirror_dir / ANIME, device="cpu")).canvas(src[0])
    assert _corners(out[:1], canvas[None], size=48) <= 1
    lanczos = Upscaler(2).canvas(src[0])
    assert _corners(out[:1], lanczos[None], size=48) > 1  # not the Lanczos background
    # the bar moved through the run and ended full
    values = [(e.data["value"], e.data["max"]) for e in _progress(upscaled.run, "3")]
    assert len(values) > 1 and [v for v, _ in values] == sorted(v for v, _ in values)
    assert values[-1][0] == values[-1][1], values


def test_upscaled_meta_batch_chunks_continue(server: Comfy, upscaled: WholeRun) -> None:
    graph = {"0": {"class_type": "VHS_BatchManager", "inputs": {"frames_per_batch": UP_CHUNK}},
             "1": _load("faces.mp4", cap=UP_N, meta=["0", 0]), "2": _model(),
             "6": _upscale_loader(UPSCALER),
             "3": _restore(["1", 0], temporal="recurrent", upscale=2, upscale_model=["6", 0],
                           meta_batch=["0", 0]),
             "4": _combine(["3", 0], "upscaled-chunks", meta=["0", 0]), "5": _show(["3", 1])}
    with server.client() as c:
        runs = c.run_requeued(graph)
    assert [r.end.type for r in runs] == ["execution_success"] * (UP_N // UP_CHUNK), (
        [(r.end.type, r.end.data.get("exception_message")) for r in runs])
    out = _decode(_output_file(runs[-1], "4")).frames
    assert out.shape == (UP_N, 2 * H, 2 * W, 3)
    # the second chunk continued the video (frame numbers, track) with the same model
    frames = [[f["frame"] for t in _report(r)["tracks"] for f in t["frames"]] for r in runs]
    assert frames[1] == list(range(UP_CHUNK, UP_N)), frames
    assert _corners(out, upscaled.video.frames, size=48) <= 1  # the same background


def test_upscale_model_that_is_no_super_resolution_model(server: Comfy,
                                                        upscale_models: Path) -> None:
    graph = {"1": _load("faces.mp4", cap=2), "2": _model(), "6": _upscale_loader(NOT_SR),
             "3": _restore(["1", 0], upscale=2, upscale_model=["6", 0]), "5": _show(["3", 1])}
    with server.client() as c:
        run = c.run(graph)
    end = run.end
    assert end.type == "execution_error" and end.data.get("node_id") == "3", end
    message = str(end.data.get("exception_message", "")).strip()
    assert "\n" not in message and len(message) < 400 and "Traceback" not in message, message
    assert message.startswith("upscale_model: ") and "not a super-resolution model" in message
