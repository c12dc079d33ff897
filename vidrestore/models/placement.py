"""Where the restorer runs and in which precision: the one device/dtype policy.

``auto`` device: CUDA, then Apple's MPS, then the CPU. ``auto`` dtype: bfloat16 on CUDA (its
float32-sized exponent never overflows; float16 where the GPU has no bfloat16), float16 on MPS;
on the CPU bfloat16 where the network runs in a CPU runtime that computes it natively (OpenVINO
on AVX512-BF16 or AMX: its decoder in bfloat16, the encoder and the code prediction float32, so
the codes are float32's; 1.5 times float32's speed), else float32 (half-precision convolutions
are slower than float32 without native kernels, see :func:`~.precision.cpu_has_fast_bfloat16`).
Restore, batch jobs, the node pack and the benchmarks all ask here.
"""

from __future__ import annotations

import torch

from ..errors import UsageError
from .precision import parse_dtype


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; other names must be available."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device: {name!r} is not a device (auto, cpu, cuda, cuda:N, mps)"
                         ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: MPS is not available")
    return dev


def auto_dtype(device: torch.device, *, cpu_bfloat16: bool = False) -> torch.dtype:
    """The precision ``auto`` stands for on ``device`` (see the module docstring);
    ``cpu_bfloat16``: the CPU runtime that would run the network computes bfloat16 natively."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_bfloat16 else torch.float32


def resolve_dtype(name: str | torch.dtype, device: torch.device, *,
                  cpu_bfloat16: bool = False) -> torch.dtype:
    """``auto`` as :func:`auto_dtype`; other names (``float16``, ``bf16``, ...) as given."""
    if isinstance(name, str) and name == "auto":
        return auto_dtype(device, cpu_bfloat16=cpu_bfloat16)
    return parse_dtype(name)


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``: the spelling the options use."""
    return str(dtype).removeprefix("torch.")
