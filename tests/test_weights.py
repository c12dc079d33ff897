"""The weights manager against a real HTTP server on 127.0.0.1 and real files."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import default_sigint

from vidrestore.errors import UsageError, WeightsError
from vidrestore.weights import WeightSpec, WeightStore, load_manifest, mirrors_from_env

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = os.urandom(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes); ``server.mode`` bends the answers, and
    ``server.modes`` (name -> mode) bends them for one file."""

    def do_GET(self) -> None:  # the name http.server calls
        name = self.path.rsplit("/", 1)[-1]
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = self.server.files.get(name)  # type: ignore[attr-defined]
        if body is None:
            self.send_error(404)
            return
        mode = self.server.modes.get(name, self.server.mode)  # type: ignore[attr-defined]
        self.send_response(200)
        if mode == "chunked_drop":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            half = body[: len(body) // 2]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            self.wfile.write(b"%x\r\n" % len(body))  # a chunk announced, never sent
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            for i in range(0, len(body), 8192):
                self.wfile.write(body[i : i + 8192])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files = {}  # type: ignore[attr-defined]
    srv.mode = "ok"  # type: ignore[attr-defined]
    srv.modes = {}  # type: ignore[attr-defined]
    srv.hits = []  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: http.server.ThreadingHTTPServer) -> str:
    host, port = srv.server_address[:2]
    return f"http://{host}:{port}"


def _spec(urls: tuple[str, ...], *, sha: str | None = PAYLOAD_SHA, size: int | None = None,
          file: str = "model.bin") -> dict[str, WeightSpec]:
    return {"m": WeightSpec("m", file, len(PAYLOAD) if size is None and sha else size, sha,
                            "MIT", "test", "test file", urls)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_manifest_has_the_required_entries() -> None:
    m = load_manifest()
    assert list(m)[:2] == ["codeformer", "yunet"]
    assert {"retinaface_resnet50", "parsenet"} <= set(m)
    cf = m["codeformer"]
    assert cf.size == 376_637_898
    assert cf.sha256 == "1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7"
    assert "S-Lab" in cf.license and cf.urls[0].startswith("https://")
    assert m["yunet"].size == 229_738 and m["yunet"].license == "MIT"


def test_good_download_is_verified_and_installed(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec((_url(server) + "/model.bin",)),
                        progress=False)
    path = store.ensure("m")
    assert path == tmp_path / "model.bin" and path.read_bytes() == PAYLOAD
    assert store.status("m").state == "present"
    assert not list(tmp_path.glob("*.part"))
    # A second ensure uses the cached copy: no new request.
    n = len(server.hits)
    assert store.ensure("m") == path and len(server.hits) == n


def test_truncated_download_is_refused(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD
    server.mode = "truncate"
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec((_url(server) + "/model.bin",)),
                        progress=False)
    with pytest.raises(WeightsError, match=r"model\.bin"):
        store.ensure("m")
    assert not (tmp_path / "model.bin").exists()
    assert not list(tmp_path.glob(".model.bin*"))


@pytest.mark.parametrize("mode, said", [("truncate", "received 150000 of 300000 bytes"),
                                         ("chunked_drop", "IncompleteRead")])
def test_a_body_cut_short_fails_its_source_and_the_next_is_tried(tmp_path: Path, server,
                                                                 mode: str, said: str) -> None:
    """A body shorter than announced (Content-Length, or a chunked reply that drops) is not
    installed nor, for a model without a published hash, recorded as trusted."""
    server.files["cut.bin"] = PAYLOAD
    server.files["model.bin"] = PAYLOAD
    server.modes["cut.bin"] = mode
    base = _url(server)
    only_cut = WeightStore(tmp_path, mirrors=(), progress=False,
                           manifest=_spec((base + "/cut.bin",), sha=None))
    with pytest.raises(WeightsError, match=said) as info:
        only_cut.download("m")
    assert "\n" not in str(info.value) and base + "/cut.bin" in str(info.value)
    assert not (tmp_path / "model.bin").exists()
    assert not (tmp_path / "recorded.json").exists()
    store = WeightStore(tmp_path, mirrors=(), progress=False,
                        manifest=_spec((base + "/cut.bin", base + "/model.bin"), sha=None))
    assert store.download("m").read_bytes() == PAYLOAD
    assert store.expected("m") == (len(PAYLOAD), PAYLOAD_SHA)
    assert [h.rsplit("/", 1)[-1] for h in server.hits] == ["cut.bin", "cut.bin", "model.bin"]


def test_download_many_tries_every_model_and_names_all_failures(tmp_path: Path, server) -> None:
    server.files["b.bin"] = PAYLOAD
    dead = f"http://127.0.0.1:{_free_port()}"
    manifest = {
        n: WeightSpec(n, f"{n}.bin", len(PAYLOAD), PAYLOAD_SHA, "MIT", "test", "test file",
                      (base + f"/{n}.bin",))
        for n, base in (("a", dead), ("b", _url(server)), ("c", dead))
    }
    store = WeightStore(tmp_path, mirrors=(), manifest=manifest, progress=False)
    with pytest.raises(UsageError, match="nope"):
        store.download_many(["b", "nope"])
    assert server.hits == []
    done: list[str] = []
    with pytest.raises(WeightsError) as info:
        store.download_many(["a", "b", "c"], on_done=lambda name, path: done.append(name))
    msg = str(info.value)
    assert "\n" not in msg and "a.bin" in msg and "c.bin" in msg and "b.bin" not in msg
    assert done == ["b"] and (tmp_path / "b.bin").read_bytes() == PAYLOAD


def test_unusable_cache_folder_is_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    home = blocker / "sub"
    store = WeightStore(home, mirrors=(), manifest=_spec(("http://unused/",), sha=None),
                        offline=True, progress=False)
    given = tmp_path / "given.bin"
    given.write_bytes(PAYLOAD)
    pattern = f"cache folder {re.escape(str(home))} .*Not a directory"
    with pytest.raises(WeightsError, match=pattern):
        store.import_file("m", given)
    with pytest.raises(WeightsError, match=pattern):
        store.expected("m")
    with pytest.raises(WeightsError, match=pattern):
        store.download("m")


@pytest.mark.parametrize("umask", [0o002, 0o027])
def test_cached_files_get_the_mode_open_would_give(tmp_path: Path, server, umask: int) -> None:
    server.files["model.bin"] = PAYLOAD
    store = WeightStore(tmp_path / "home", mirrors=(), progress=False,
                        manifest=_spec((_url(server) + "/model.bin",)))
    given = tmp_path / "given.bin"
    given.write_bytes(PAYLOAD)
    old = os.umask(umask)
    try:
        downloaded = stat.S_IMODE(store.download("m").stat().st_mode)
        (tmp_path / "home" / "model.bin").unlink()
        imported = stat.S_IMODE(store.import_file("m", given).stat().st_mode)
    finally:
        os.umask(old)
    assert (downloaded, imported) == (0o666 & ~umask, 0o666 & ~umask)


def test_wrong_hash_is_refused_and_next_source_used(tmp_path: Path, server) -> None:
    bad = bytearray(PAYLOAD)
    bad[1000] ^= 0xFF
    server.files["bad.bin"] = bytes(bad)
    server.files["model.bin"] = PAYLOAD
    urls = (_url(server) + "/bad.bin", _url(server) + "/model.bin")
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec(urls), progress=False)
    path = store.ensure("m")
    assert path.read_bytes() == PAYLOAD
    assert [h.rsplit("/", 1)[-1] for h in server.hits] == ["bad.bin", "model.bin"]


def test_wrong_hash_only_gives_clear_error(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD[::-1]
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec((_url(server) + "/model.bin",)),
                        progress=False)
    with pytest.raises(WeightsError, match="does not match"):
        store.download("m")
    assert not (tmp_path / "model.bin").exists()


def test_server_down_gives_one_line_error_naming_file_url_and_command(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/model.bin"
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec((url,)), progress=False)
    with pytest.raises(WeightsError) as info:
        store.ensure("m")
    msg = str(info.value)
    assert "\n" not in msg
    assert "model.bin" in msg and url in msg and str(tmp_path / "model.bin") in msg
    assert "vidrestore weights import m" in msg


def test_http_mirror_is_tried_before_upstream(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD
    upstream = f"http://127.0.0.1:{_free_port()}/model.bin"
    store = WeightStore(tmp_path, mirrors=(_url(server) + "/mirror",),
                        manifest=_spec((upstream,)), progress=False)
    assert store.ensure("m").read_bytes() == PAYLOAD
    assert server.hits == ["/mirror/model.bin"]


def test_directory_mirror_with_real_yunet(tmp_path: Path, mirror_dir: Path) -> None:
    store = WeightStore(tmp_path, mirrors=(str(mirror_dir),), offline=True, progress=False)
    path = store.ensure("yunet")
    assert path.stat().st_size == 229_738
    assert store.status("yunet", rehash=True).state == "present"


def test_offline_skips_urls(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec((_url(server) + "/model.bin",)),
                        offline=True, progress=False)
    with pytest.raises(WeightsError, match="offline"):
        store.ensure("m")
    assert server.hits == []


def test_corrupt_cached_file_is_never_used(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD
    store = WeightStore(tmp_path, mirrors=(), manifest=_spec((_url(server) + "/model.bin",)),
                        progress=False)
    path = store.ensure("m")
    data = bytearray(path.read_bytes())
    data[5] ^= 1
    path.write_bytes(bytes(data))
    assert store.status("m").state == "corrupt"
    with pytest.raises(WeightsError, match="fails its check"):
        store.ensure("m")


def test_unpublished_hash_is_recorded_on_first_use(tmp_path: Path, server) -> None:
    server.files["model.bin"] = PAYLOAD
    store = WeightStore(tmp_path, mirrors=(), progress=False,
                        manifest=_spec((_url(server) + "/model.bin",), sha=None, size=None))
    store.ensure("m")
    assert store.expected("m") == (len(PAYLOAD), PAYLOAD_SHA)
    (tmp_path / "model.bin").write_bytes(PAYLOAD[:-1])
    assert store.status("m").state == "corrupt"


def test_a_downloaded_file_is_trusted_only_once_it_has_loaded(tmp_path: Path, server) -> None:
    """``load``: a file without a published hash, fetched because it was missing, is recorded
    only after the builder accepted it; one the builder refuses is not."""
    server.files["model.bin"] = PAYLOAD
    store = WeightStore(tmp_path, mirrors=(), progress=False,
                        manifest=_spec((_url(server) + "/model.bin",), sha=None, size=None))

    def refuse(path: Path) -> None:
        raise WeightsError(f"{path}: not this model")

    with pytest.raises(WeightsError, match="not this model"):
        store.load("m", refuse)
    assert store.expected("m") == (None, None)
    assert not (tmp_path / "recorded.json").exists()
    assert store.load("m", lambda path: path.read_bytes()) == PAYLOAD
    assert store.expected("m") == (len(PAYLOAD), PAYLOAD_SHA)


def test_import_checks_hash(tmp_path: Path) -> None:
    store = WeightStore(tmp_path / "home", mirrors=(), manifest=_spec(("http://unused/",)),
                        offline=True, progress=False)
    wrong = tmp_path / "wrong.bin"
    wrong.write_bytes(PAYLOAD[:-10])
    with pytest.raises(WeightsError):
        store.import_file("m", wrong)
    assert not (tmp_path / "home" / "model.bin").exists()
    good = tmp_path / "good.bin"
    good.write_bytes(PAYLOAD)
    assert store.import_file("m", good).read_bytes() == PAYLOAD
    with pytest.raises(UsageError, match="unknown model file"):
        store.import_file("nope", good)


def test_import_of_an_unpinned_checkpoint_is_checked_and_can_be_corrected(tmp_path: Path
                                                                         ) -> None:
    """A file that is no checkpoint is refused; a checkpoint imported by mistake is replaced
    (and its first-use record with it) by importing the right one."""
    import torch

    store = WeightStore(tmp_path / "home", mirrors=(), offline=True, progress=False)
    page = tmp_path / "parsing_parsenet.pth"
    page.write_bytes(b"<html>Not Found</html>\n")
    for junk in (page, tmp_path / "empty.pth"):
        junk.touch()
        with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
            store.import_file("parsenet", junk)
    assert not store.path("parsenet").exists() and store.expected("parsenet") == (None, None)
    first, right = tmp_path / "first.pth", tmp_path / "right.pth"
    torch.save({"w": torch.zeros(3)}, first)
    torch.save({"w": torch.ones(5)}, right)
    store.import_file("parsenet", first)
    store.import_file("parsenet", right)
    assert store.path("parsenet").read_bytes() == right.read_bytes()
    assert store.expected("parsenet")[1] == hashlib.sha256(right.read_bytes()).hexdigest()
    assert store.status("parsenet").state == "present"


def test_store_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDRESTORE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("VIDRESTORE_MIRROR", str(tmp_path / "m"))
    for value, offline in (("1", True), ("true", True), ("Yes", True), ("on", True),
                           ("0", False), ("false", False), ("", False)):
        monkeypatch.setenv("VIDRESTORE_OFFLINE", value)
        store = WeightStore.from_env()
        assert store.offline is offline, value
        assert store.home == tmp_path / "cache" and store.mirrors == (str(tmp_path / "m"),)
    # the constructor itself reads nothing from the environment
    plain = WeightStore(tmp_path / "other")
    assert plain.mirrors == () and plain.offline is False


def test_mirror_env_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDRESTORE_MIRROR", "http://127.0.0.1:8080/w:/srv/mirror:https://m.example/x")
    assert mirrors_from_env() == ("http://127.0.0.1:8080/w", "/srv/mirror", "https://m.example/x")
    for raw, expected in (
        ("/srv/http:/mnt/https:/data", ("/srv/http", "/mnt/https", "/data")),  # folder names
        ("/srv/a:2024/m", ("/srv/a", "2024/m")),  # a relative folder starting with a digit
        ("http://[::1]:8000/m:https://[fe80::2]/x", ("http://[::1]:8000/m", "https://[fe80::2]/x")),
        ("https://host:443:/local", ("https://host:443", "/local")),
    ):
        monkeypatch.setenv("VIDRESTORE_MIRROR", raw)
        assert mirrors_from_env() == expected, raw


# -- the command line, as real processes ---------------------------------------------------------

def _cli(*args: str, env: dict[str, str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidrestore", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120, **kw)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDRESTORE_")}
    env.update(VIDRESTORE_HOME=str(home), PYTHONPATH=str(REPO), **extra)
    return env


def test_cli_download_yunet_from_mirror_and_list(tmp_path: Path, mirror_dir: Path) -> None:
    env = _env(tmp_path, VIDRESTORE_MIRROR=str(mirror_dir), VIDRESTORE_OFFLINE="1")
    r = _cli("weights", "download", "yunet", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "face_detection_yunet_2026may.onnx").stat().st_size == 229_738
    r = _cli("weights", "list", env=env)
    assert r.returncode == 0
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("yunet"))
    assert "present" in line and "MIT" in line
    assert "1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7" in r.stdout
    assert _cli("weights", "verify", "yunet", env=env).returncode == 0


def test_cli_missing_offline_is_one_line_no_traceback(tmp_path: Path) -> None:
    r = _cli("weights", "download", "codeformer", env=_env(tmp_path, VIDRESTORE_OFFLINE="1"))
    assert r.returncode == 5
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "codeformer.pth" in lines[0]
    assert load_manifest()["codeformer"].urls[0] in lines[0]


def test_cli_unusable_cache_folder_is_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    env = _env(blocker / "sub", VIDRESTORE_OFFLINE="1")
    given = tmp_path / "given.bin"
    given.write_bytes(PAYLOAD)
    for args in (("list",), ("import", "parsenet", str(given))):
        r = _cli("weights", *args, env=env)
        assert r.returncode == 5, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert str(blocker / "sub") in lines[0] and "Not a directory" in lines[0]


def test_cli_download_all_gets_what_it_can(tmp_path: Path, mirror_dir: Path) -> None:
    """Offline, with a mirror holding only the detector: it is fetched although models listed
    before it are not, and the error names every model that could not be had."""
    env = _env(tmp_path / "home", VIDRESTORE_OFFLINE="1", VIDRESTORE_MIRROR=str(mirror_dir))
    r = _cli("weights", "download", "--all", env=env)
    assert r.returncode == 5, r.stderr
    assert "yunet: " in r.stdout and (tmp_path / "home" / "face_detection_yunet_2026may.onnx"
                                       ).is_file()
    lines = r.stderr.strip().splitlines()
    failed = re.search(r"could not get \d+ of \d+ model files \(([^)]*)\)", lines[0])
    assert len(lines) == 1 and failed is not None, r.stderr
    assert "codeformer" in failed[1].split(", ") and "yunet" not in failed[1].split(", ")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_download_leaves_no_final_file(tmp_path: Path, server, mirror_dir: Path,
                                                   sig: signal.Signals) -> None:
    server.files["face_detection_yunet_2026may.onnx"] = (
        mirror_dir / "face_detection_yunet_2026may.onnx").read_bytes()
    server.mode = "slow"
    env = _env(tmp_path, VIDRESTORE_MIRROR=_url(server))
    proc = subprocess.Popen([sys.executable, "-m", "vidrestore", "weights", "download", "yunet"],
                            env=env, cwd=REPO, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)
    deadline = time.time() + 30
    while not list(tmp_path.glob(".face_detection*.part")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "download finished before it could be interrupted"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert not (tmp_path / "face_detection_yunet_2026may.onnx").exists()
    if sig == signal.SIGINT:
        assert not list(tmp_path.glob(".face_detection*.part"))
    # The next run completes and verifies.
    server.mode = "ok"
    r = _cli("weights", "download", "yunet", env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "face_detection_yunet_2026may.onnx").stat().st_size == 229_738
