"""What the nodes use of ComfyUI itself, each looked up when needed and optional.

Inside ComfyUI the nodes honour its interrupt button, report progress on its bar, take its
compute device and register a model folder. Without ComfyUI (tests, scripts) each of these is a
no-op, so the nodes can be driven as plain Python classes. The weights store (the vidrestore
cache for files not in ComfyUI's model folders) is named by the environment, read here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any

from vidrestore.weights import WeightStore

log = logging.getLogger("vidrestore.comfyui")

MODEL_FOLDER = "facerestore_models"
"""ComfyUI model folder for face restoration networks (where users keep ``codeformer.pth``)."""
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")


def _optional(name: str) -> ModuleType | None:
    try:
        return import_module(name)
    except ImportError:
        return None


def interrupt_check() -> Callable[[], None]:
    """ComfyUI's ``throw_exception_if_processing_interrupted`` (raises when the user pressed
    Cancel), or a no-op outside ComfyUI."""
    mm = _optional("comfy.model_management")
    check = getattr(mm, "throw_exception_if_processing_interrupted", None)
    return check if check is not None else (lambda: None)


class Progress:
    """ComfyUI's progress bar for ``total`` steps, or nothing outside ComfyUI."""

    def __init__(self, total: int) -> None:
        utils = _optional("comfy.utils")
        bar_cls = getattr(utils, "ProgressBar", None)
        self._bar: Any = bar_cls(total) if bar_cls is not None else None

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set(self, value: int, total: int) -> None:
        """Show ``value`` of ``total`` (the total may change as the work becomes known)."""
        if self._bar is not None:
            self._bar.update_absolute(value, total)


def weight_store() -> WeightStore:
    """The vidrestore weights cache the environment names (``VIDRESTORE_HOME``, ...)."""
    return WeightStore.from_env()


def torch_device() -> str | None:
    """The device ComfyUI computes on (it honours ``--cpu`` and the chosen GPU), if known."""
    mm = _optional("comfy.model_management")
    get = getattr(mm, "get_torch_device", None)
    return str(get()) if get is not None else None


def folder_paths() -> ModuleType | None:
    return _optional("folder_paths")


def register_model_folder() -> str | None:
    """Add ``models/facerestore_models`` to ComfyUI's model folders (once; other node packs may
    have done it already). Returns the folder, or None outside ComfyUI."""
    fp = folder_paths()
    if fp is None or not hasattr(fp, "add_model_folder_path"):
        return None
    path = os.path.join(fp.models_dir, MODEL_FOLDER)
    known = getattr(fp, "folder_names_and_paths", {}).get(MODEL_FOLDER)
    if not known or path not in known[0]:
        fp.add_model_folder_path(MODEL_FOLDER, path)
    return path


def model_files() -> list[str]:
    """Network files in ComfyUI's ``facerestore_models`` folders (empty outside ComfyUI),
    CodeFormer's first (``codeformer*``, then the rest by name)."""
    fp = folder_paths()
    if fp is None:
        return []
    try:
        names = fp.get_filename_list(MODEL_FOLDER)
    except (KeyError, AttributeError):
        return []
    files = [n for n in names if n.lower().endswith(MODEL_SUFFIXES)]
    return sorted(files, key=lambda n: (not os.path.basename(n).lower().startswith("codeformer"),
                                        n.lower()))


def model_path(name: str) -> str | None:
    """Full path of a file listed by :func:`model_files`."""
    fp = folder_paths()
    return fp.get_full_path(MODEL_FOLDER, name) if fp is not None else None
