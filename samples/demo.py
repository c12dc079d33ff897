"""Restore faces in the sample clip: the README's demo command (`make demo`).

The clip is a public one (see ``samples/manifest.json``), fetched by the same pinned-URL and
SHA-256 mechanism as the model files, into ``samples/downloads/``. The restored video and a
side-by-side comparison are written to ``samples/output/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vidrestore.errors import VidrestoreError
from vidrestore.weights import WeightStore, load_manifest

HERE = Path(__file__).resolve().parent


def main() -> int:
    try:
        store = WeightStore.from_env()
        for name in ("codeformer", "yunet"):
            print(f"model {name}: {store.ensure(name)}")
        samples = WeightStore(HERE / "downloads", mirrors=store.mirrors, offline=store.offline,
                              manifest=load_manifest(HERE / "manifest.json"))
        clip = samples.ensure("talking_face")
    except VidrestoreError as exc:
        print(f"vidrestore demo: {exc}", file=sys.stderr)
        return 1
    out = HERE / "output"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "vidrestore", "restore", str(clip),
           "-o", str(out / "restored.mp4"), "--compare", str(out / "compare.mp4"),
           "--report", str(out / "tracks.json"), "--overwrite"]
    print("running:", " ".join(cmd[2:]))
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
