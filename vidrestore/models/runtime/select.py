"""Which runtime runs the network: ``auto``, ``torch``, ``onnxruntime`` or ``openvino``.

``auto`` takes a CPU runtime when the device is the CPU and one is installed that computes in
the chosen dtype (OpenVINO first, then ONNX Runtime), else PyTorch. ``$VIDRESTORE_RUNTIME``
(read by :func:`preferred_runtime`, which the loader calls) names the runtime ``auto`` prefers
instead (``torch`` makes ``auto`` mean PyTorch); a named
runtime that cannot run there still falls back to PyTorch under ``auto``. An explicit name is
used as given or refused in one line.

OpenVINO comes first because it computed float32 faster, measured side by side on 2 cores
(``benchmarks/bench_runtime.py``, published-size network, batch 1: 1.98 s a face against ONNX
Runtime's 2.40 and PyTorch's 4.34), both within 1e-5 of PyTorch with the same codes; and only
it computes in bfloat16.
"""

from __future__ import annotations

import os

import torch

from ... import runtimes
from ...errors import UsageError
from ...restore.options import RUNTIMES as RUNTIMES
from .. import precision

#: The CPU runtimes, in the order ``auto`` tries them.
CPU_RUNTIMES = ("openvino", "onnxruntime")
RUNTIME_ENV = "VIDRESTORE_RUNTIME"
#: The optional dependency set that installs each CPU runtime.
EXTRAS = {"openvino": "cpu", "onnxruntime": "onnxruntime"}


def supported_dtypes(runtime: str) -> tuple[torch.dtype, ...]:
    """The precisions ``runtime`` computes in on this CPU."""
    if runtime == "onnxruntime":
        return (torch.float32,)
    if runtime == "openvino":
        bf16 = (torch.bfloat16,) if precision.cpu_has_fast_bfloat16() else ()
        return (torch.float32, *bf16)
    return precision.supported_dtypes("cpu")


def _problem(runtime: str, device: torch.device, dtype: torch.dtype) -> str | None:
    """Why ``runtime`` cannot run the network on ``device`` in ``dtype`` (None: it can)."""
    if device.type != "cpu":
        return f"it runs on the CPU, not {device}"
    if not runtimes.installed(runtime):
        return (f"it is not installed (pip install 'vidrestore[{EXTRAS[runtime]}]', "
                f"which brings {runtimes.PACKAGES[runtime]} and onnx)")
    if dtype not in supported_dtypes(runtime):
        name = str(dtype).removeprefix("torch.")
        if dtype == torch.bfloat16 and runtime == "openvino":
            return "this CPU has no native bfloat16 kernels (AVX512-BF16 or AMX)"
        return f"it does not compute in {name}"
    return None


def preferred_runtime() -> str:
    """What ``$VIDRESTORE_RUNTIME`` asks ``auto`` to mean (``auto`` when unset)."""
    return os.environ.get(RUNTIME_ENV, "").strip().lower() or "auto"


def resolve_runtime(name: str, device: torch.device, dtype: torch.dtype,
                    prefer: str = "auto") -> str:
    """The runtime ``name`` stands for on ``device`` in ``dtype``: ``torch`` or a CPU runtime.

    ``prefer`` is what ``auto`` tries (see :func:`preferred_runtime`). Raises
    :class:`UsageError` for an unknown name, or a named CPU runtime that cannot run there
    (``auto`` never raises for that: it falls back to PyTorch).
    """
    if name not in RUNTIMES:
        raise UsageError(f"--runtime: {name!r} is not one of {', '.join(RUNTIMES)}")
    if name == "torch":
        return name
    if name != "auto":
        problem = _problem(name, device, dtype)
        if problem:
            raise UsageError(f"--runtime {name}: {problem}; --runtime torch runs PyTorch")
        return name
    if prefer not in RUNTIMES:
        raise UsageError(f"${RUNTIME_ENV}: {prefer!r} is not one of {', '.join(RUNTIMES)}")
    candidates = CPU_RUNTIMES if prefer == "auto" else (prefer,)
    return next((c for c in candidates
                 if c != "torch" and _problem(c, device, dtype) is None), "torch")


def computes_bfloat16(name: str, device: torch.device, prefer: str = "auto") -> bool:
    """Whether ``--runtime name`` (``auto`` trying ``prefer``) runs the network on ``device`` in a
    CPU runtime with native bfloat16 kernels: then ``--dtype auto`` means bfloat16 there."""
    try:
        return resolve_runtime(name, device, torch.bfloat16, prefer) != "torch"
    except UsageError:
        return False
