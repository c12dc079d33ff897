"""Snapshots as plain data: a JSON tree and arrays in one ``.npz`` file, never a pickle.

A long job stops after any frame and resumes from a snapshot of the restorer's state (tracks,
smoothers, temporal state, frames still pending). That state is a graph of the project's own
objects; it is written as data:

* the tree is JSON: numbers, strings, lists, and tagged objects ``{"@": kind, ...}``;
* every array (numpy or torch) is an entry of the ``.npz`` archive, read back with
  ``allow_pickle=False``;
* an object is rebuilt only if its class is in the allowlist the caller gives, by setting its
  attributes: no constructor, ``__reduce__`` or ``__setstate__`` of the file's choosing runs,
  and a name outside the allowlist is refused.

The header carries the format version, the package version and a fingerprint of the allowed
classes (names and dataclass fields), so a snapshot written by another version is refused with
one line instead of being half-understood.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from collections import deque
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np

from .. import __version__
from ..errors import CheckpointError

FORMAT = "vidrestore-snapshot"
VERSION = 1
_TREE = "tree"
_SEQUENCE_TAGS: dict[type, str] = {list: "list", tuple: "tuple", set: "set",
                                   frozenset: "frozenset"}


class SnapshotError(CheckpointError):
    """A snapshot that this version cannot read (damaged, foreign, or from another version)."""


def _kind(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def fingerprint(classes: Iterable[type]) -> str:
    """What the snapshot's structure depends on: the classes and their dataclass fields."""
    parts = []
    for cls in sorted(classes, key=_kind):
        fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        slots = list(getattr(cls, "__slots__", ()))
        parts.append(f"{_kind(cls)}({','.join(fields)};{','.join(slots)})")
    return hashlib.sha256(f"{VERSION}|{__version__}|{'|'.join(parts)}".encode()).hexdigest()


class _Writer:
    def __init__(self, classes: dict[str, type]) -> None:
        self.classes = classes
        self.arrays: dict[str, np.ndarray] = {}
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # what the memo's ids belong to, alive until the end

    def array(self, a: np.ndarray) -> str:
        if a.dtype.hasobject:
            raise TypeError("object arrays cannot be stored in a snapshot")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(a)
        return key

    def tree(self, o: Any) -> Any:
        if o is None or isinstance(o, (bool, str)):
            return o
        if type(o) is int:
            return o
        if type(o) is float:
            return {"@": "float", "v": float.hex(o)}
        if isinstance(o, np.generic):
            return {"@": "npscalar", "a": self.array(np.asarray(o))}
        if isinstance(o, Fraction):
            return {"@": "fraction", "v": [o.numerator, o.denominator]}
        # Everything else may be shared (one face item in two queues): stored once, then named.
        if id(o) in self.memo:
            return {"@": "ref", "id": self.memo[id(o)]}
        n = self.memo[id(o)] = len(self.memo)
        self.keep.append(o)
        node = self._shared(o)
        node["id"] = n
        return node

    def _shared(self, o: Any) -> dict[str, Any]:  # one branch per stored kind
        if isinstance(o, np.ndarray):
            return {"@": "ndarray", "a": self.array(o)}
        if type(o) in _SEQUENCE_TAGS:
            tag = _SEQUENCE_TAGS[type(o)]
            return {"@": tag, "v": [self.tree(v) for v in o]}
        if type(o) is deque:
            return {"@": "deque", "max": o.maxlen, "v": [self.tree(v) for v in o]}
        if type(o) is dict:
            return {"@": "dict", "v": [[self.tree(k), self.tree(v)] for k, v in o.items()]}
        if type(o) is bytes:
            return {"@": "bytes", "a": self.array(np.frombuffer(o, np.uint8))}
        return self._special(o)

    def _special(self, o: Any) -> dict[str, Any]:
        import torch

        from ..io.frame import Frame
        from ..models.placement import dtype_name

        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            dtype = dtype_name(t.dtype)
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            return {"@": "tensor", "dtype": dtype, "a": self.array(t.numpy())}
        if isinstance(o, torch.device):
            return {"@": "device", "v": str(o)}
        if isinstance(o, torch.dtype):
            return {"@": "dtype", "v": dtype_name(o)}
        if isinstance(o, Frame):
            return self._frame(o)
        kind = _kind(type(o))
        if self.classes.get(kind) is not type(o):
            raise TypeError(f"{kind} is not a type that snapshots may hold")
        if hasattr(o, "__dict__"):
            attrs = vars(o)
        else:
            cls: Any = type(o)  # a slotted class of the allowlist
            attrs = {s: getattr(o, s) for s in cls.__slots__ if hasattr(o, s)}
        return {"@": "obj", "kind": kind, "v": {k: self.tree(v) for k, v in attrs.items()}}

    def _frame(self, f: Any) -> dict[str, Any]:
        from ..io.frame import picture_state

        out: dict[str, Any] = {"@": "frame", "index": f.index, "pts": f.pts,
                               "tb": [f.time_base.numerator, f.time_base.denominator],
                               "pixels": self.array(f.pixels)}
        if f.source is not None and f.changed is None:  # a patched frame: its pixels say all
            fmt, width, height, rows = picture_state(f.source)
            out["source"] = {"format": fmt, "width": width, "height": height,
                             "planes": [self.array(r) for r in rows]}
            if f.has_analysis:  # the faces were found in these: a resumed run must be too
                out["analysis"] = self.array(f.analysis)
        return out


class _Reader:
    def __init__(self, classes: dict[str, type], arrays: Any, device: Any) -> None:
        self.classes = classes
        self.arrays = arrays
        self.device = device
        self.refs: dict[int, Any] = {}

    def array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key == _TREE or key not in self.arrays:
            raise ValueError(f"no array {key!r}")
        a: np.ndarray = self.arrays[key]
        return a

    def tree(self, t: Any) -> Any:  # one branch per stored kind
        if t is None or isinstance(t, (bool, str, int)):
            return t
        if not isinstance(t, dict):
            raise ValueError(f"unexpected {type(t).__name__} in the tree")
        tag = t["@"]
        if tag == "ref":
            return self.refs[t["id"]]
        if tag == "float":
            return float.fromhex(t["v"])
        if tag == "npscalar":
            return self.array(t["a"])[()]
        if tag == "fraction":
            num, den = t["v"]
            return Fraction(int(num), int(den))
        if tag == "device":
            import torch

            return torch.device(str(t["v"]))
        if tag == "dtype":
            return _torch_dtype(t["v"])
        n = t["id"]
        if not isinstance(n, int) or n in self.refs:
            raise ValueError(f"object id {n!r}")
        if tag in ("list", "dict", "deque", "obj"):  # may be reached again from inside
            return self._container(tag, t, n)
        self.refs[n] = value = self._value(tag, t)
        return value

    def _container(self, tag: str, t: dict[str, Any], n: int) -> Any:
        out: Any
        if tag == "list":
            out = self.refs[n] = []
            out.extend(self.tree(v) for v in t["v"])
        elif tag == "deque":
            out = self.refs[n] = deque(maxlen=t["max"])
            out.extend(self.tree(v) for v in t["v"])
        elif tag == "dict":
            out = self.refs[n] = {}
            for k, v in t["v"]:
                out[self.tree(k)] = self.tree(v)
        else:
            out = self._object(t, n)
        return out

    def _value(self, tag: str, t: dict[str, Any]) -> Any:
        if tag == "ndarray":
            return self.array(t["a"]).copy()
        if tag in ("tuple", "set", "frozenset"):
            items = [self.tree(v) for v in t["v"]]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        if tag == "bytes":
            return self.array(t["a"]).tobytes()
        if tag == "tensor":
            return self._tensor(t)
        if tag == "frame":
            return self._frame(t)
        raise ValueError(f"unknown entry {tag!r}")

    def _tensor(self, t: dict[str, Any]) -> Any:
        import torch

        dtype = _torch_dtype(t["dtype"])
        x = torch.from_numpy(self.array(t["a"]).copy())
        if dtype == torch.bfloat16:
            x = x.view(torch.bfloat16)
        if x.dtype != dtype:
            raise ValueError(f"tensor stored as {x.dtype}, said to be {dtype}")
        return x.to(self.device) if self.device is not None else x

    def _frame(self, t: dict[str, Any]) -> Any:
        from ..io.frame import rebuild_frame

        tb = Fraction(int(t["tb"][0]), int(t["tb"][1]))
        pixels = self.array(t["pixels"]).copy()
        src = t.get("source")
        picture = None if src is None else (
            str(src["format"]), int(src["width"]), int(src["height"]),
            [self.array(k) for k in src["planes"]])
        if picture is not None and (picture[1], picture[2]) != (pixels.shape[1], pixels.shape[0]):
            raise ValueError("a frame's picture and pixels differ in size")
        analysis = None
        if picture is not None and "analysis" in t:
            analysis = self.array(t["analysis"]).copy()
            if analysis.shape != pixels.shape or analysis.dtype != pixels.dtype:
                raise ValueError("a frame's analysis pixels and pixels differ in size")
        return rebuild_frame(int(t["index"]), int(t["pts"]), tb, pixels, picture, analysis)

    def _object(self, t: dict[str, Any], n: int) -> Any:
        kind = t["kind"]
        cls = self.classes.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"{kind!r} is not a type that snapshots may hold")
        obj: Any = object.__new__(cls)
        self.refs[n] = obj
        for name, value in t["v"].items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
                raise ValueError(f"attribute name {name!r}")
            object.__setattr__(obj, name, self.tree(value))
        return obj


def _torch_dtype(name: Any) -> Any:
    import torch

    allowed = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
               "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
               "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
               "bool": torch.bool}
    if name not in allowed:
        raise ValueError(f"tensor type {name!r}")
    return allowed[name]


def dumps(state: Any, classes: Iterable[type]) -> bytes:
    """``state`` as snapshot bytes; ``classes`` are the project types it may contain."""
    allowed = {_kind(c): c for c in classes}
    w = _Writer(allowed)
    root = w.tree(state)
    header = {"format": FORMAT, "version": VERSION, "vidrestore": __version__,
              "fingerprint": fingerprint(allowed.values()), "root": root}
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{_TREE: np.frombuffer(text, np.uint8)}, **w.arrays)
    return buf.getvalue()


def _header(arrays: Any, classes: dict[str, type], what: str) -> dict[str, Any]:
    header = json.loads(arrays[_TREE].tobytes())
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"{what}: not a vidrestore snapshot")
    if header.get("version") != VERSION or header.get("fingerprint") != fingerprint(
            classes.values()):
        raise SnapshotError(
            f"{what}: written by another version of vidrestore "
            f"({header.get('vidrestore', 'unknown')}, format {header.get('version')})")
    return header


_READ_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError,
                zipfile.BadZipFile, EOFError, RecursionError)


def check(data: bytes, classes: Iterable[type], *, what: str = "snapshot") -> None:
    """Raise :class:`SnapshotError` unless ``data`` is a snapshot this version wrote (its
    header only; :func:`loads` checks the rest)."""
    allowed = {_kind(c): c for c in classes}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            _header(arrays, allowed, what)
    except SnapshotError:
        raise
    except _READ_ERRORS as exc:
        raise SnapshotError(f"{what}: damaged or not a vidrestore snapshot ({exc})") from None


def loads(data: bytes, classes: Iterable[type], *, device: Any = None, what: str = "snapshot"
          ) -> Any:
    """The state in snapshot bytes (tensors onto ``device``); :class:`SnapshotError` names
    ``what`` when the bytes are not a snapshot this version wrote."""
    allowed = {_kind(c): c for c in classes}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            header = _header(arrays, allowed, what)
            return _Reader(allowed, {k: arrays[k] for k in arrays.files}, device).tree(
                header["root"])
    except SnapshotError:
        raise
    except _READ_ERRORS as exc:
        raise SnapshotError(f"{what}: damaged or not a vidrestore snapshot ({exc})") from None
