"""Deterministic synthetic weights for any CodeFormer configuration.

Each tensor is drawn from a CPU generator seeded with the CRC-32 of its state-dict name and
scaled so activations stay in a sane range. For the published configuration this reproduces
the weights behind the parity goldens bit for bit, so tests, benchmarks and demos can run the
real network without the (non-redistributable) checkpoint. The output is a coloured texture,
not a face.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..models.codeformer import VARIANTS, CodeFormer, CodeFormerConfig


def synthetic_tensor(name: str, shape: Sequence[int], *, final_conv: str) -> Tensor:
    """The synthetic float32 value of parameter ``name``; ``final_conv`` names the weight of
    the last (RGB) generator conv, which gets a smaller gain."""
    shape = list(shape)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode("utf-8")))
    t = torch.randn(shape, generator=g, dtype=torch.float32)
    if len(shape) == 1:
        if name.endswith("bias"):
            return t * 0.1
        return 1.0 + 0.1 * t  # GroupNorm / LayerNorm gains
    if name == "position_emb":
        return t * 0.5
    gain = 1.0
    if name.startswith("fuse_convs_dict.") and (".scale." in name or ".shift." in name):
        gain = 0.25
    elif name == final_conv:
        gain = 0.4
    fan_in = t.numel() // shape[0]
    # One Python float multiplier (not t / sqrt(fan_in)): the goldens depend on the last ulp.
    return t * (gain / math.sqrt(fan_in))


def final_conv_name(model: CodeFormer) -> str:
    return f"generator.blocks.{len(model.generator.blocks) - 1}.weight"


def synthetic_state_dict(model: CodeFormer) -> dict[str, Tensor]:
    """Synthetic float32 values for every entry of ``model.state_dict()``, in its order."""
    final = final_conv_name(model)
    return {
        name: synthetic_tensor(name, value.shape, final_conv=final)
        for name, value in model.state_dict().items()
    }


def synthetic_codeformer(config: CodeFormerConfig | None = None) -> CodeFormer:
    """A float32 CPU :class:`CodeFormer` of ``config`` (default: published) with synthetic
    weights, in eval mode with gradients off."""
    with torch.device("meta"):  # no random init: every tensor is assigned below
        model = CodeFormer.from_config(config or CodeFormerConfig())
    model.load_state_dict(synthetic_state_dict(model), strict=True, assign=True)
    return model.eval().requires_grad_(False)


def synthetic_checkpoint(path: str | Path, variant: str = "codeformer_tiny") -> Path:
    """The synthetic weights of a named variant written at ``path`` as the published file is
    laid out (``params_ema``), unless a file is there already."""
    from ..models.loader import save_codeformer_checkpoint

    path = Path(path)
    if not path.exists():
        save_codeformer_checkpoint(synthetic_codeformer(VARIANTS[variant]), path)
    return path
