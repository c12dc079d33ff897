"""The CodeFormer network, its precision policy, checkpoint loading and synthetic weights."""

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
from .loader import (
    RestorerDescriptor,
    load_codeformer_checkpoint,
    load_restorer,
    save_codeformer_checkpoint,
)
from .precision import parse_dtype, preferred_dtype, supported_dtypes
from .synthetic import synthetic_codeformer, synthetic_state_dict

__all__ = [
    "FIDELITY_RANGE",
    "INPUT_SIZE",
    "VARIANTS",
    "CodeFormer",
    "CodeFormerConfig",
    "Encoded",
    "RestorerDescriptor",
    "codeformer",
    "codeformer_tiny",
    "create_codeformer",
    "load_codeformer_checkpoint",
    "load_restorer",
    "parse_dtype",
    "preferred_dtype",
    "save_codeformer_checkpoint",
    "supported_dtypes",
    "synthetic_codeformer",
    "synthetic_state_dict",
    "variant_name",
]
