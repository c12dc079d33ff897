"""The CodeFormer network, its precision and placement policy, checkpoint loading (one typed
loader, :func:`load_restorer`, handing out a :class:`RestorerDescriptor`) and the CPU runtimes
that can run its stages (:mod:`.runtime`). Synthetic weights for tests and benchmarks live in
:mod:`vidrestore.testing.weights`."""

from .codeformer import (
    FIDELITY_RANGE,
    INPUT_SIZE,
    VARIANTS,
    CodeFormer,
    CodeFormerConfig,
    Encoded,
    codeformer,
    codeformer_tiny,
    create_codeformer,
    variant_name,
)
from .descriptor import RestorerDescriptor
from .loader import (
    load_codeformer,
    load_codeformer_checkpoint,
    load_restorer,
    save_codeformer_checkpoint,
)
from .placement import auto_dtype, resolve_device, resolve_dtype
from .precision import parse_dtype, supported_dtypes
from .stages import NetworkStages

__all__ = [
    "FIDELITY_RANGE",
    "INPUT_SIZE",
    "VARIANTS",
    "CodeFormer",
    "CodeFormerConfig",
    "Encoded",
    "NetworkStages",
    "RestorerDescriptor",
    "auto_dtype",
    "codeformer",
    "codeformer_tiny",
    "create_codeformer",
    "load_codeformer",
    "load_codeformer_checkpoint",
    "load_restorer",
    "parse_dtype",
    "resolve_device",
    "resolve_dtype",
    "save_codeformer_checkpoint",
    "supported_dtypes",
    "variant_name",
]
