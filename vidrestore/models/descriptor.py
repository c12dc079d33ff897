"""What hosts and stages hold instead of a bare network: the restorer and its input contract.

A :class:`RestorerDescriptor` carries the loaded CodeFormer, where it runs (device, dtype,
runtime: PyTorch, or a CPU runtime from :mod:`.runtime`), what it accepts (512x512 RGB faces,
the fidelity range) and where it came from (licence, source).
:meth:`~RestorerDescriptor.prepare` and :meth:`~RestorerDescriptor.finish` are the one place
that turns aligned face crops into the network's input and its output back into images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import precision
from .codeformer import FIDELITY_RANGE, INPUT_SIZE, CodeFormer, CodeFormerConfig, variant_name
from .stages import NetworkStages


@dataclass(frozen=True, eq=False)
class RestorerDescriptor:
    """A loaded network plus the facts a caller needs to feed it (compared by identity)."""

    #: What runs the stages: the PyTorch :class:`CodeFormer`, or a
    #: :class:`~.runtime.RuntimeNetwork` (see :attr:`module` for the PyTorch network).
    model: NetworkStages
    config: CodeFormerConfig
    #: Name of the matching variant (``codeformer``, ``codeformer_tiny``) or None.
    variant: str | None
    path: Path | None
    #: The precision the network computes in.
    dtype: torch.dtype
    device: torch.device
    supported_dtypes: tuple[torch.dtype, ...]
    #: The weights' licence (the manifest's, for the published file; None: not known).
    license: str | None = None
    #: Where the weights came from: the manifest's origin, or the file's path.
    source: str = ""
    #: Faces go in as RGB ``[B, 3, size, size]`` with values in ``input_range``.
    input_size: int = INPUT_SIZE
    input_channels: int = 3
    input_range: tuple[float, float] = (-1.0, 1.0)
    fidelity_range: tuple[float, float] = FIDELITY_RANGE
    #: ``torch``, ``onnxruntime`` or ``openvino``.
    runtime: str = "torch"
    #: The dtype :meth:`prepare` feeds (None: ``dtype``). The CPU runtimes take float32 and
    #: decide themselves where bfloat16 is used.
    input_dtype: torch.dtype | None = None

    @classmethod
    def of(cls, model: CodeFormer, *, source: str = "in-memory network") -> RestorerDescriptor:
        """Describe a network that is already built, on its own device and dtype."""
        return cls(
            model=model, config=model.config, variant=variant_name(model.config), path=None,
            dtype=model.dtype, device=model.device,
            supported_dtypes=precision.supported_dtypes(model.device), source=source,
        )

    @property
    def per_item(self) -> bool:
        """Whether the network computes each face of a batch on its own, so a face's result
        never depends on the batch (OpenVINO's graphs); PyTorch's convolutions may choose
        their kernels by batch size."""
        return bool(getattr(self.model, "per_item", False))

    @property
    def module(self) -> CodeFormer:
        """The PyTorch network (parameters, state dict, ``forward``), whatever runs the stages."""
        net = self.model
        inner = net if isinstance(net, CodeFormer) else getattr(net, "module", None)
        if not isinstance(inner, CodeFormer):
            raise TypeError(f"{type(net).__name__} holds no PyTorch CodeFormer")
        return inner

    def prepare(self, crops: Sequence[np.ndarray]) -> Tensor:
        """Aligned RGB crops ``[H, W, 3]`` (uint8 or uint16) to the network's input: a
        ``[B, 3, 512, 512]`` batch in ``input_range``, on its device, in its input dtype."""
        scale = 255.0 if crops[0].dtype == np.uint8 else 65535.0
        if self.device.type == "cuda":
            # page-locked: the copy is a DMA the host does not wait on
            host = torch.from_numpy(np.stack(crops)).pin_memory()
            x = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).to(torch.float32)
        else:
            # each crop straight into its planar slot, converting on the way: one pass, where
            # converting the interleaved stack and then reordering it takes four, ten times longer
            x = torch.empty((len(crops), 3, *crops[0].shape[:2]), dtype=torch.float32)
            for slot, crop in zip(x, crops, strict=True):
                slot.copy_(torch.from_numpy(crop).permute(2, 0, 1))
            x = x.to(self.device)
        x = x.div_(scale / 2.0).sub_(1.0)
        # channels-last feeds tensor cores on CUDA; on the CPU its GroupNorm kernel makes a
        # face's result depend (in the last bits) on its position in the batch: stay NCHW there.
        fmt = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        return x.to(self.input_dtype or self.dtype).contiguous(memory_format=fmt)

    def finish(self, output: Tensor) -> np.ndarray:
        """Network output ``[B, 3, 512, 512]`` to float32 RGB images ``[B, 512, 512, 3]`` in
        [0, 1], on the CPU: what the paste-back takes."""
        if output.device.type != "cuda":
            # interleave first (one pass), then scale in place: the same values at half the cost
            img = torch.empty((output.shape[0], *output.shape[2:], output.shape[1]),
                              dtype=torch.float32)
            img.copy_(output.permute(0, 2, 3, 1))
            return img.clamp_(-1.0, 1.0).add_(1.0).mul_(0.5).numpy()
        img = output.float().clamp_(-1.0, 1.0).add_(1.0).mul_(0.5).permute(0, 2, 3, 1)
        # into page-locked memory (twice the bandwidth of pageable), then wait for that copy only
        host = torch.empty(img.shape, dtype=img.dtype, pin_memory=True)
        host.copy_(img, non_blocking=True)
        torch.cuda.current_stream(img.device).synchronize()
        return host.numpy()
