"""The manifest: one entry per model file vidrestore can use (``vidrestore/manifest.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "manifest.json"


@dataclass(frozen=True)
class WeightSpec:
    """One manifest entry: the file, its size and hash, licence, origin and URLs."""

    name: str
    file: str
    size: int | None
    sha256: str | None
    license: str
    origin: str
    purpose: str
    urls: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """Whether the manifest pins both size and hash."""
        return self.size is not None and self.sha256 is not None


def load_manifest(path: Path | str = MANIFEST_PATH) -> dict[str, WeightSpec]:
    """Read a manifest file into ``{name: WeightSpec}``, in file order."""
    data = json.loads(Path(path).read_text())
    if data.get("schema") != 1:
        raise WeightsError(f"{path}: unsupported manifest schema {data.get('schema')!r}")
    return {
        name: WeightSpec(
            name=name,
            file=e["file"],
            size=e.get("size"),
            sha256=e.get("sha256"),
            license=e["license"],
            origin=e["origin"],
            purpose=e.get("purpose", ""),
            urls=tuple(e["urls"]),
        )
        for name, e in data["models"].items()
    }
