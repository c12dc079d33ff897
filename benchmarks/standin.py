"""A zero-cost stand-in for CodeFormer (benchmark code only): what the pipeline costs around the
network.

:func:`standin_restorer` is a :class:`~vidrestore.models.RestorerDescriptor` whose network
hands each aligned face back unchanged through the engine's four stages (encode, predict,
lookup, decode), at the cost of a few tensor copies, so a restore run with it measures decoding,
detection, tracking, registration, warping, paste-back, conversion and encoding alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidrestore.models import CodeFormerConfig, Encoded, RestorerDescriptor

CODES = 2  # the stand-in's codebook: the temporal modes average a [256, CODES] distribution


class StandInNetwork(torch.nn.Module):
    """CodeFormer's stage interface, returning the input face."""

    def encode(self, x: Tensor) -> Encoded:
        return Encoded(x)

    def predict(self, lq_feat: Tensor) -> Tensor:
        return torch.zeros(lq_feat.shape[0], 256, CODES, device=lq_feat.device)

    def lookup(self, lq_feat: Tensor, *, indices: Tensor, adain: bool = True) -> Tensor:
        return lq_feat

    def decode(self, code: Tensor, skips: dict[int, Tensor], w: float) -> Tensor:
        return code


def standin_restorer(device: str = "cpu") -> RestorerDescriptor:
    dev = torch.device(device)
    return RestorerDescriptor(
        model=StandInNetwork(),  # type: ignore[arg-type]
        config=CodeFormerConfig(), variant=None, path=None, dtype=torch.float32, device=dev,
        supported_dtypes=(torch.float32,), source="zero-cost stand-in (benchmarks)")
