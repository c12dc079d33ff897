"""The face-tracks report (``tracks.json``): a documented, versioned schema, written and read here.

Schema 1::

    {
      "schema": 1,
      "video": {                      # facts of the source stream (as far as known)
        "path", "container", "codec", "width", "height", "pix_fmt", "bit_depth",
        "time_base": "1/15360", "start_pts", "avg_rate": "30/1", "fps", "frame_count",
        "duration", "rotation", "first_frame",
        "coordinates": "display",     # box/landmarks are pixels of the upright picture
        "display_width", "display_height"   # its size ("stored": the frame as decoded)
      },
      "tracks": [
        {"id": 1,                     # stable track ID (what `restore --faces` selects)
         "frames": [
           {"frame": 0,               # frame index from the start of the read range
            "pts": 1024,              # presentation timestamp, in video.time_base units
            "time": 0.0667,           # seconds from the start of the video
            "box": [x1, y1, x2, y2],  # pixels of the picture video.coordinates names
            "score": 0.93,            # detector confidence; null on bridged frames
            "landmarks_raw": [[x, y] x 5],   # detector's points; null on bridged frames
            "landmarks": [[x, y] x 5],       # smoothed points used for alignment
            "interpolated": false,    # true: not detected here (missed, or --detect-every)
            "weight": 1.0,            # share of the restored face pasted back (0: left alone)
            "held": false}            # true: the picture repeats the frame before, and so do
                                      # the landmarks (absent in reports of earlier versions)
         ],
         "reason": null,              # why the track is left alone (null: it is restored)
         "alignment": {               # how the smoothed points relate to the detections
           "jitter_reduction": 9.3,   # frame-to-frame shake of the detections / of the points
                                      # (on the frames that are not held)
           "drift_p95": 4.1,          # 95th percentile distance from the detections' low-pass
           "offset_p95": 2.2,         # ... of the lasting (low-passed) offset from them
           "doubtful": false}}        # offset_p95 above DOUBTFUL_OFFSET_PX: check the preview
      ]
    }

Landmarks are in template order: image-left eye, image-right eye, nose tip, image-left mouth
corner, image-right mouth corner. ``alignment`` distances are in aligned-face pixels (the 512x512
crop the restorer sees; :mod:`vidrestore.faces.metrics`); a figure that cannot be measured (too
few detected frames) is ``null``, and readers ignore the block (it is derived from the frames).
Unknown values are ``null``. Tracks are ordered by ID and
frames by index. Readers must reject a ``schema`` they do not know.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError, SourceError
from ..io.paths import AtomicOutput, check_output
from .records import FrameFaces, TrackedFace

SCHEMA = 1
DOUBTFUL_OFFSET_PX = 15.0
"""A track whose smoothed points stay this far (aligned px, 95th percentile of the low-passed
offset) from its detections is reported as doubtful: the crop may not sit on the face."""

_VIDEO_FIELDS = (
    "path", "container", "codec", "width", "height", "pix_fmt", "bit_depth", "time_base",
    "start_pts", "avg_rate", "frame_count", "duration", "rotation",
)


@dataclass(frozen=True)
class FaceEntry:
    """One face of one track on one frame, as stored in the report."""

    frame: int
    pts: int | None
    time: float | None
    box: tuple[float, ...]
    score: float | None
    landmarks_raw: tuple[tuple[float, float], ...] | None
    landmarks: tuple[tuple[float, float], ...]
    interpolated: bool
    weight: float = 1.0
    held: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame, "pts": self.pts, "time": self.time, "box": list(self.box),
            "score": self.score,
            "landmarks_raw": None if self.landmarks_raw is None
            else [list(p) for p in self.landmarks_raw],
            "landmarks": [list(p) for p in self.landmarks], "interpolated": self.interpolated,
            "weight": self.weight, "held": self.held,
        }


@dataclass(frozen=True)
class TrackEntry:
    """All frames of one track."""

    id: int
    frames: tuple[FaceEntry, ...]

    def alignment(self) -> dict[str, Any]:
        """The ``alignment`` block of the report: figures of the smoothed points against the
        detections (see the module docstring)."""
        return dict(self._alignment)

    @property
    def reason(self) -> str | None:
        """Why the track is left alone (no frame with a restoration weight), else None."""
        if any(f.weight > 0 for f in self.frames):
            return None
        return track_reason(self.frames)

    @functools.cached_property
    def _alignment(self) -> dict[str, Any]:
        # asked for by the report, the sheet, the warning and the CLI: computed once
        return track_alignment(self.frames)


def track_alignment(frames: Sequence[FaceEntry]) -> dict[str, Any]:
    """Jitter reduction (on the frames that are not held), drift p95 and lasting-offset p95 of
    a track's smoothed landmarks against its raw detections, and whether the alignment is
    doubtful."""
    from .metrics import detector_offset, drift, drift_summary, jitter_reduction

    nan = np.full((5, 2), np.nan)
    raw = np.array([nan if f.landmarks_raw is None else f.landmarks_raw for f in frames],
                   dtype=np.float64)
    est = np.array([f.landmarks for f in frames], dtype=np.float64)
    out: dict[str, Any] = {"jitter_reduction": None, "drift_p95": None, "offset_p95": None,
                           "doubtful": False}
    if not np.isfinite(raw).all(axis=(1, 2)).any():
        return out
    new = np.array([not f.held for f in frames])
    with contextlib.suppress(ValueError):  # too short for a second difference
        steadier = jitter_reduction(est, raw, keep=new)
        # infinite where the points do not move at all: JSON has no such number
        out["jitter_reduction"] = _num(steadier, 2) if np.isfinite(steadier) else None
    out["drift_p95"] = _num(drift_summary(drift(est, raw)).p95, 2)
    offset = drift_summary(detector_offset(est, raw)).p95
    out["offset_p95"] = _num(offset, 2)
    out["doubtful"] = bool(offset > DOUBTFUL_OFFSET_PX)
    return out


def track_reason(frames: Sequence[FaceEntry]) -> str:
    """Why a track was not restored, judged as the tracker judges it (:mod:`.track`)."""
    from .records import Detection
    from .track import TrackQuality

    quality = TrackQuality()
    for f in frames:
        det = None if f.landmarks_raw is None or f.score is None else Detection(
            np.array(f.box), f.score, np.array(f.landmarks_raw))
        quality.observe(f.frame, det)
    return quality.reason or "profile or failed landmarks on every frame"


@dataclass(frozen=True)
class TrackReport:
    """A whole report: stream facts and tracks (see the module docstring for the schema)."""

    video: dict[str, Any]
    tracks: tuple[TrackEntry, ...]
    schema: int = SCHEMA

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tracks]

    def track(self, track_id: int) -> TrackEntry:
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise KeyError(f"no track {track_id}; tracks are {self.ids}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "video": dict(self.video),
            "tracks": [{"id": t.id, "frames": [f.to_dict() for f in t.frames],
                        "alignment": t.alignment(), "reason": t.reason}
                       for t in self.tracks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "report") -> TrackReport:
        if data.get("schema") != SCHEMA:
            raise SourceError(
                f"{source}: tracks report schema {data.get('schema')!r} is not supported "
                f"(this version reads schema {SCHEMA})"
            )
        try:
            tracks = tuple(
                TrackEntry(int(t["id"]), tuple(_entry(f) for f in t["frames"]))
                for t in data["tracks"]
            )
            return cls(dict(data["video"]), tracks)
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"{source}: not a valid tracks report ({exc!r})") from exc

    def write(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write the report as JSON (atomically: a temporary file renamed into place)."""
        self.stage(path, overwrite=overwrite).commit()
        return Path(path)

    def stage(self, path: str | os.PathLike[str], *, overwrite: bool) -> AtomicOutput:
        """Write the report to a temporary file beside ``path``, for the caller to commit
        together with the outputs it belongs to (or discard if they fail)."""
        return _stage_json(Path(path), self.to_dict(), overwrite=overwrite)


def _entry(f: Mapping[str, Any]) -> FaceEntry:
    raw = f["landmarks_raw"]
    return FaceEntry(
        frame=int(f["frame"]),
        pts=None if f["pts"] is None else int(f["pts"]),
        time=None if f["time"] is None else float(f["time"]),
        box=tuple(float(v) for v in f["box"]),
        score=None if f["score"] is None else float(f["score"]),
        landmarks_raw=None if raw is None else tuple((float(x), float(y)) for x, y in raw),
        landmarks=tuple((float(x), float(y)) for x, y in f["landmarks"]),
        interpolated=bool(f["interpolated"]),
        weight=float(f.get("weight", 1.0)),
        held=bool(f.get("held", False)),
    )


def _num(v: float, digits: int = 3) -> float:
    return round(float(v), digits)


def _points(p: np.ndarray | None) -> tuple[tuple[float, float], ...] | None:
    if p is None:
        return None
    return tuple((_num(x), _num(y)) for x, y in np.asarray(p).reshape(-1, 2))


def face_entry(face: TrackedFace, pts: int | None, time: float | None) -> FaceEntry:
    """The report entry of a tracked face (coordinates rounded to 1/1000 pixel)."""
    return FaceEntry(
        frame=face.frame_index,
        pts=pts,
        time=None if time is None else _num(time, 6),
        box=tuple(_num(v) for v in face.box),
        score=None if face.score is None else _num(face.score, 4),
        landmarks_raw=_points(face.landmarks_raw),
        landmarks=_points(face.landmarks) or (),
        interpolated=bool(face.interpolated),
        weight=_num(face.weight, 4),
        held=bool(face.held),
    )


def video_facts(info: Any = None, **extra: Any) -> dict[str, Any]:
    """JSON-ready stream facts from a ``VideoInfo`` (any object with its fields), plus ``extra``."""
    facts: dict[str, Any] = {}
    if info is not None:
        for name in _VIDEO_FIELDS:
            if hasattr(info, name):
                facts[name] = _json_value(getattr(info, name))
        rate = getattr(info, "avg_rate", None)
        facts["fps"] = None if not rate else round(float(rate), 6)
    facts.update({k: _json_value(v) for k, v in extra.items()})
    return facts


def _json_value(v: Any) -> Any:
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}"
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


@dataclass
class ReportCollector:
    """Builds a report from the ``FrameFaces`` of a stream, frame by frame.

    ``pts`` and ``time`` come from each frame (time counted from ``start_pts``).
    """

    video: dict[str, Any] = field(default_factory=dict)
    start_pts: int = 0
    _tracks: dict[int, list[FaceEntry]] = field(default_factory=dict)

    @classmethod
    def for_video(cls, info: Any = None, **extra: Any) -> ReportCollector:
        return cls(video_facts(info, **extra), int(getattr(info, "start_pts", 0) or 0))

    def add(self, frame_faces: FrameFaces) -> None:
        frame = frame_faces.frame
        time = float((frame.pts - self.start_pts) * frame.time_base)
        for face in frame_faces.faces:
            self._tracks.setdefault(face.track_id, []).append(face_entry(face, frame.pts, time))

    def report(self) -> TrackReport:
        return TrackReport(
            dict(self.video),
            tuple(TrackEntry(i, tuple(self._tracks[i])) for i in sorted(self._tracks)),
        )


def tracks_report(
    tracks: Mapping[int, Sequence[TrackedFace]],
    *,
    info: Any = None,
    pts: Mapping[int, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A report (as a JSON-ready dict) from tracked faces grouped by track ID.

    ``pts`` maps frame indices to presentation timestamps when the caller kept them; otherwise
    pts and time are derived from ``info``'s constant frame rate when known, else ``null``.
    ``extra`` adds facts to ``video`` (e.g. ``width``, ``height``, ``first_frame``).
    """
    start = int(getattr(info, "start_pts", 0) or 0)
    tb = getattr(info, "time_base", None)
    rate = getattr(info, "avg_rate", None)

    def stamp(index: int) -> tuple[int | None, float | None]:
        if pts is not None and index in pts:
            p = int(pts[index])
        elif tb and rate:
            p = start + round(Fraction(index) / Fraction(rate) / Fraction(tb))
        else:
            return None, None
        return p, (float((p - start) * Fraction(tb)) if tb else None)

    entries = tuple(
        TrackEntry(int(i), tuple(face_entry(f, *stamp(f.frame_index)) for f in
                                 sorted(tracks[i], key=lambda f: f.frame_index)))
        for i in sorted(tracks)
    )
    return TrackReport(video_facts(info, **extra), entries).to_dict()


def stage_tracks_report(
    path: str | os.PathLike[str],
    info: Any,
    tracks: Mapping[int, Sequence[TrackedFace]] | Iterable[FrameFaces],
    pts: Mapping[int, int] | None = None,
    *,
    overwrite: bool,
    **extra: Any,
) -> AtomicOutput:
    """Stage ``tracks.json`` for ``info``'s video from faces grouped by ID or from FrameFaces;
    the caller commits it (see :meth:`TrackReport.stage`). ``extra`` adds facts to ``video``."""
    if isinstance(tracks, Mapping):
        data = tracks_report(tracks, info=info, pts=pts, **extra)
    else:
        collector = ReportCollector.for_video(info, **extra)
        for ff in tracks:
            collector.add(ff)
        data = collector.report().to_dict()
    return _stage_json(Path(path), data, overwrite=overwrite)


def dumps(data: Mapping[str, Any]) -> str:
    """JSON text of a report: one line per face entry, so files stay readable and diffable."""
    tracks = ",\n".join(
        f' {{"id": {json.dumps(t["id"])}, "frames": [\n'
        + ",\n".join("  " + json.dumps(f) for f in t["frames"])
        + "\n ]"
        + (f',\n "alignment": {json.dumps(t["alignment"])}' if "alignment" in t else "")
        + (f',\n "reason": {json.dumps(t["reason"])}' if "reason" in t else "")
        + "}"
        for t in data["tracks"]
    )
    return (
        f'{{"schema": {json.dumps(data["schema"])},\n"video": {json.dumps(data["video"])},\n'
        f'"tracks": [\n{tracks}\n]}}\n'
    )


def read_tracks_report(path: str | os.PathLike[str]) -> TrackReport:
    """Read and check a ``tracks.json`` file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourceError(f"{p}: cannot read the tracks report ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"{p}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise SourceError(f"{p}: not a tracks report (top level is {type(data).__name__})")
    return TrackReport.from_dict(data, source=str(p))


def _stage_json(path: Path, data: Mapping[str, Any], *, overwrite: bool) -> AtomicOutput:
    check_output(path, (), overwrite=overwrite)
    target = AtomicOutput(path, overwrite=overwrite)
    try:
        target.tmp.write_text(dumps(data), encoding="utf-8")
    except OSError as exc:
        target.discard()
        raise OutputError(f"{path}: cannot write the tracks report ({exc.strerror})") from exc
    return target
