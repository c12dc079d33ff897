"""A batch's configuration: where outputs go, the options every job uses, and the
identity of those options (a job whose options changed is restored again)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..faces.options import FaceOptions
from ..io import WriterOptions
from ..io.digest import sha256_file
from ..restore.options import RestoreOptions
from .options import BatchOptions
from .plan import writer_options

WORK_DIR = ".vidrestore-work"


ADDED_OPTIONS = {"faces": ("confirm_score", "detect_every"),
                 "restore": ("blend", "track_settings", "upscale", "background",
                             "face_upsample", "runtime", "compile")}
"""Options added after batch folders already existed: they count in a job's options only when
set to something else than their default, so the jobs of an older folder are not redone."""


def _default(group: str, name: str) -> object:
    cls = {"faces": FaceOptions, "restore": RestoreOptions}[group]
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@dataclass
class BatchConfig:
    """One batch: where outputs go and the options every job uses."""

    out_dir: Path
    restore: RestoreOptions = field(default_factory=RestoreOptions)
    faces: FaceOptions = field(default_factory=FaceOptions)
    writer: WriterOptions = field(default_factory=WriterOptions)
    batch: BatchOptions = field(default_factory=BatchOptions)
    verify_inputs: bool = False  # hash every input again, even when size and mtime agree

    def __post_init__(self) -> None:
        self.out_dir = Path(os.path.abspath(self.out_dir))
        self.writer = writer_options(self.batch, self.writer)

    def options_json(self) -> str:
        """The options that shape an output (segment size, retries and sidecars do not).

        The checkpoints (CodeFormer's, a background model file) count by their content, not
        by how their paths are spelled; the device by the one ``auto`` picks; the network's
        batch size and the background's tile size not at all (results do not depend on how
        faces are grouped; tiles agree with the untiled picture within 1/255).
        """
        b = self.batch
        restore = dataclasses.asdict(self.restore)
        del restore["batch_size"], restore["bg_tile"]
        restore["weights"], restore["device"] = self._model_identity
        restore["background"] = self._background_identity
        data = {"restore": restore,
                "faces": dataclasses.asdict(self.faces),
                "writer": dataclasses.asdict(self.writer),
                "batch": {"codec": b.codec, "deinterlace": b.deinterlace, "fps": b.fps}}
        for group, fields in ADDED_OPTIONS.items():
            for name in fields:
                if data[group][name] == _default(group, name):
                    del data[group][name]
        return json.dumps(data, sort_keys=True)

    def options_hash(self) -> str:
        return hashlib.sha256(self.options_json().encode()).hexdigest()

    @functools.cached_property
    def _background_identity(self) -> str:
        """``lanczos``, a model name, or ``sha256:HEX`` of a background checkpoint file."""
        from ..upscale.model import LANCZOS, NAMED

        name = self.restore.background
        if name == LANCZOS or name in NAMED:
            return name
        try:
            return "sha256:" + sha256_file(Path(name))
        except OSError:  # refused when the worker loads it, with the loader's message
            return name

    @functools.cached_property
    def _model_identity(self) -> tuple[str | None, str]:
        """``sha256:HEX`` of the checkpoint file (None: the verified official one), and the
        device."""
        from ..models.placement import resolve_device

        device = self.restore.device
        if device == "auto":
            device = str(resolve_device(device))
        path = self.restore.weights
        if path is None:
            return None, device
        try:
            return "sha256:" + sha256_file(Path(path)), device
        except OSError:  # the job fails on it later, with the loader's own message
            return path, device



def work_dir(config: BatchConfig, job_id: int) -> Path:
    return config.out_dir / WORK_DIR / f"job_{job_id:05d}"


