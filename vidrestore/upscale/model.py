"""Background super-resolution models: :func:`load_background` hands out a
:class:`BackgroundDescriptor`, the same shape as the restorer's descriptor.

Architectures are recognised by `spandrel <https://github.com/chaiNNer-org/spandrel>`_ from the
state dict (ESRGAN/Real-ESRGAN, the compact video net, SwinIR, HAT, DAT, SPAN, ...). The file is
read by the project's own safe reader (``torch.load(weights_only=True)`` or safetensors), never
by a loader that could run code from it; spandrel only builds the network from the tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import CheckpointError, UsageError
from ..models import placement
from ..models.loader import read_state_dict

if TYPE_CHECKING:
    from ..weights import WeightStore

#: The background choice that needs no model: OpenCV's Lanczos (8x8 kernel) resampling.
LANCZOS = "lanczos"

#: Manifest entries that are background models (``--background NAME``), with their scale.
NAMED = {"realesrgan-x2": 2, "realesrgan-x4": 4, "realesr-animevideov3": 4}

#: Parameters above which a model is slow enough on a CPU to say so before a run.
LARGE_MODEL = 2_000_000


@dataclass(frozen=True, eq=False)
class BackgroundDescriptor:
    """A loaded super-resolution network and what a caller needs to feed it.

    Frames go in as RGB ``[B, 3, H, W]`` in [0, 1] in ``dtype`` on ``device`` and come out
    ``scale`` times larger (:meth:`run`). Compared by identity.
    """

    #: The spandrel ``ImageModelDescriptor`` (what ComfyUI's ``UPSCALE_MODEL`` carries).
    model: Any
    name: str
    architecture: str
    scale: int
    parameters: int
    device: torch.device
    dtype: torch.dtype
    supported_dtypes: tuple[torch.dtype, ...]
    path: Path | None = None
    license: str | None = None
    source: str = ""

    @classmethod
    def of(cls, model: Any, *, name: str = "", source: str = "in-memory model",
           device: torch.device | str | None = None, dtype: str | torch.dtype = "auto",
           path: Path | None = None, license: str | None = None) -> BackgroundDescriptor:
        """Describe a spandrel model that is already loaded (from ``path``, if it came from a
        file), placing it on ``device`` (default: where it is) in ``dtype`` (``auto``: see
        :func:`background_dtype`). The model is moved and cast in place: a host that shares it
        with others passes a copy."""
        check_model(model, str(path) if path is not None else name or source)
        dev = torch.device(device) if device is not None else torch.device(model.device)
        supported = tuple(d for d, ok in ((torch.float32, True),
                                          (torch.float16, model.supports_half),
                                          (torch.bfloat16, model.supports_bfloat16)) if ok)
        dt = background_dtype(dtype, dev, supported, name or source)
        model.to(dev).to(dt).eval()
        arch = model.architecture.name
        return cls(model=model, name=name or arch, architecture=arch, scale=int(model.scale),
                   parameters=sum(p.numel() for p in model.model.parameters()), device=dev,
                   dtype=dt, supported_dtypes=supported, path=path, license=license,
                   source=source)

    def run(self, x: Tensor) -> Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> ``[B, 3, H*scale, W*scale]`` (spandrel pads sizes the
        architecture cannot take and crops the padding off again)."""
        with torch.no_grad():
            return self.model(x.to(self.device, self.dtype))

    @property
    def large(self) -> bool:
        """Slow on a CPU (RRDB-sized or larger): worth a warning with the expected time."""
        return self.parameters > LARGE_MODEL


def check_model(model: Any, source: str) -> None:
    """Refuse what spandrel loaded but is no RGB super-resolution model, in one line."""
    import spandrel

    if not isinstance(model, spandrel.ImageModelDescriptor):
        raise CheckpointError(f"{source}: spandrel reads it as {type(model).__name__} "
                              "(an inpainting model?), not a super-resolution model")
    arch = model.architecture.name
    if model.purpose != "SR":
        what = {"FaceSR": "a face restoration model", "Restoration": "a restoration model "
                "without upscaling"}.get(model.purpose, f"a {model.purpose} model")
        raise CheckpointError(f"{source}: spandrel reads it as {arch}, {what}, not a "
                              "super-resolution model")
    if model.input_channels != 3 or model.output_channels != 3:
        raise CheckpointError(f"{source}: {arch} with {model.input_channels} input and "
                              f"{model.output_channels} output channels; RGB (3) is needed")


def background_dtype(name: str | torch.dtype, device: torch.device,
                     supported: tuple[torch.dtype, ...], what: str) -> torch.dtype:
    """``auto``: float16 on a GPU where the architecture allows it (its [0, 1] activations do
    not need bfloat16's range and keep 3 more mantissa bits), else bfloat16, else float32;
    float32 on the CPU. A named dtype the architecture does not support is refused."""
    if isinstance(name, str) and name == "auto":
        if device.type in ("cuda", "mps"):
            for dt in (torch.float16, torch.bfloat16):
                if dt in supported and (dt != torch.bfloat16 or device.type == "cuda"):
                    return dt
        return torch.float32
    dt = placement.resolve_dtype(name, device)
    if dt not in supported:
        raise UsageError(f"--background {what}: this architecture does not support "
                         f"{placement.dtype_name(dt)} "
                         f"(it does: {', '.join(map(placement.dtype_name, supported))})")
    return dt


def load_background(
    spec: str | Path,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    store: WeightStore | None = None,
) -> BackgroundDescriptor:
    """A background model by manifest name (:data:`NAMED`, fetched and verified by ``store``)
    or from any super-resolution checkpoint file spandrel knows.

    Raises :class:`UsageError` for a name that is neither, :class:`WeightsError` when a named
    file cannot be had and :class:`CheckpointError` (one line naming the file and what spandrel
    says) for a file that is no usable super-resolution model.
    """
    dev = placement.resolve_device(device)
    text = str(spec)
    if text in NAMED:
        if store is None:
            from ..weights import WeightStore

            store = WeightStore.from_env()
        entry = store.spec(text)

        def build(path: Path) -> BackgroundDescriptor:
            return load_named_file(text, path, device=dev, dtype=dtype,
                                   license=entry.license, source=entry.origin)

        return store.load(text, build)
    if text == LANCZOS:
        raise UsageError("--background lanczos is made without a model (Upscaler(model=None))")
    path = Path(spec)
    if not path.is_file():
        raise UsageError(f"--background: {text!r} is not {LANCZOS}, a model name "
                         f"({', '.join(NAMED)}) or an existing checkpoint file")
    return _from_file(path, path.name, dev, dtype, license=None, source=str(path))


def load_named_file(name: str, path: Path, *, device: str | torch.device = "cpu",
                    dtype: str | torch.dtype = "auto", license: str | None = None,
                    source: str = "") -> BackgroundDescriptor:
    """The file ``path`` as the named model ``name``: refused unless it has that scale."""
    desc = _from_file(path, name, placement.resolve_device(device), dtype, license=license,
                      source=source or str(path))
    if desc.scale != NAMED[name]:
        raise CheckpointError(f"{path}: a x{desc.scale} {desc.architecture} model, not "
                              f"{name} (x{NAMED[name]})")
    return desc


def _from_file(path: Path, name: str, device: torch.device, dtype: str | torch.dtype, *,
               license: str | None, source: str) -> BackgroundDescriptor:
    import spandrel

    sd = read_state_dict(path)
    try:
        model = spandrel.ModelLoader().load_from_state_dict(sd)
    except spandrel.UnsupportedModelError:
        raise CheckpointError(f"{path}: spandrel does not recognise the architecture of this "
                              "state dict (not a super-resolution model it supports)") from None
    except Exception as exc:  # a known layout with tensors that do not fit
        said = " ".join(str(exc).split()) or type(exc).__name__
        if len(said) > 200:
            said = said[:197] + "..."
        raise CheckpointError(f"{path}: spandrel cannot build the model: {said}") from None
    return BackgroundDescriptor.of(model, name=name, source=source, device=device, dtype=dtype,
                                   path=path, license=license)
