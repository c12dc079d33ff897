"""Ray scale-out: a local Ray instance (127.0.0.1 only), two workers, one killed mid-segment.

Skipped when Ray is not installed (``pip install 'vidrestore[ray]'``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from synth import load_rgb, pan_frames, tiny_checkpoint, write_clip

from vidrestore.batch import BatchConfig, BatchOptions
from vidrestore.batch.jobs import DB_NAME
from vidrestore.faces.options import FaceOptions
from vidrestore.io import WriterOptions
from vidrestore.restore.options import RestoreOptions

ray = pytest.importorskip("ray")

W, H = 160, 112


@pytest.fixture(scope="module")
def local_ray() -> object:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def _packets(path: Path) -> list[tuple[str, int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.stream.type, p.pts, bytes(p)) for p in c.demux() if p.size]


class _Killer(threading.Thread):
    """SIGKILLs the worker process computing a segment (idx >= 1) as soon as one is running."""

    def __init__(self, out: Path) -> None:
        super().__init__(daemon=True)
        self.out = out
        self.killed: tuple[int, int, int] | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.killed is None:
            try:
                with sqlite3.connect(self.out / DB_NAME, timeout=5) as db:
                    rows = db.execute("SELECT job_id, idx, worker FROM segments WHERE "
                                      "status = 'running' AND computed = 1 AND idx >= 1 "
                                      "AND worker LIKE 'ray-%'").fetchall()
            except sqlite3.OperationalError:
                rows = []
            if rows:
                job, idx, worker = rows[0]
                pid = int(worker.rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                self.killed = (job, idx, pid)
            time.sleep(0.02)


def test_two_ray_workers_and_a_killed_one(tmp_path: Path, local_ray: object, media_dir: Path,
                                          mirror_dir: Path, yunet_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from vidrestore.batch.ray_runner import run_batch_ray
    from vidrestore.faces import create_detector
    from vidrestore.restore.api import restore_video
    from vidrestore.restore.pipeline import Restorer

    monkeypatch.setenv("VIDRESTORE_MIRROR", str(mirror_dir))
    monkeypatch.setenv("VIDRESTORE_OFFLINE", "1")
    weights = tiny_checkpoint(tmp_path / "tiny.pth")
    photo = load_rgb(media_dir / "fr_two_people.jpg")
    photo = cv2.resize(photo, None, fx=0.36, fy=0.36, interpolation=cv2.INTER_AREA)[10:, 70:]
    rng = np.random.default_rng(2)
    texture = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (W * 2, H * 2))
    pictures = [photo, photo[:, ::-1].copy(), texture]  # the third has no face: quick
    clips = [write_clip(tmp_path / f"r{i}.mp4",
                        pan_frames(p, 4, (W, H), step=(0.3 + 0.2 * i, 0.2)), audio=i == 0)
             for i, p in enumerate(pictures)]
    restore = RestoreOptions(weights=str(weights), device="cpu", window=2)
    faces = FaceOptions(lookahead=2)
    restorer_args = dict(model=None, detector=create_detector("yunet", faces,
                                                              model_path=yunet_path))
    out = tmp_path / "out"
    config = BatchConfig(out, restore=restore, faces=faces,
                         batch=BatchOptions(segment_frames=2))
    killer = _Killer(out)
    killer.start()
    try:
        result = run_batch_ray([str(c) for c in clips], config, workers=2)
    finally:
        killer.stop.set()
        killer.join()
    assert result.ok, [(j.source, j.error_message) for j in result.failed]
    assert killer.killed is not None
    with sqlite3.connect(out / DB_NAME) as db:
        segs = {(j, i): (c, w) for j, i, c, w in
                db.execute("SELECT job_id, idx, computed, worker FROM segments")}
    job, idx, pid = killer.killed
    assert segs[(job, idx)][0] == 2  # the lost segment was computed again...
    assert all(c == 1 for k, (c, _) in segs.items() if k != (job, idx))  # ...and nothing else
    assert segs[(job, idx)][1].rsplit(":", 1)[1] != str(pid)  # by the restarted process
    assert len({w.split(":")[0] for _, w in segs.values()}) == 2  # both workers did work
    # uninterrupted references, computed as a one-CPU Ray worker computes (float results
    # depend on the number of threads)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for clip in clips:
            ref = tmp_path / f"ref_{clip.stem}.mkv"
            restorer = Restorer(restore, faces, **restorer_args)
            restore_video(clip, ref, restore, faces=faces, writer=WriterOptions(codec="ffv1"),
                          progress=False, restorer=restorer)
            assert _packets(out / f"{clip.stem}.mkv") == _packets(ref)
    finally:
        torch.set_num_threads(threads)
    assert np.all([j.status == "done" for j in result.jobs])
