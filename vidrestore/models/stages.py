"""What runs CodeFormer's four stages: the interface the engine and the descriptor rely on.

:class:`~.codeformer.CodeFormer` (PyTorch) and :class:`~.runtime.RuntimeNetwork` (exported
graphs in ONNX Runtime or OpenVINO) both have it, so a :class:`~.descriptor.RestorerDescriptor`
holds either and the engine calls the same methods on both.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from .codeformer import CodeFormerConfig, Encoded


class NetworkStages(Protocol):
    """encode -> predict -> lookup -> decode, as :class:`~.codeformer.CodeFormer` defines them."""

    @property
    def config(self) -> CodeFormerConfig: ...

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the tensors the stages take and give."""
        ...

    @property
    def device(self) -> torch.device: ...

    def encode(self, x: Tensor, *, skips: bool = True) -> Encoded:
        """RGB ``[B, 3, 512, 512]`` in [-1, 1] -> ``lq_feat`` and the encoder skips."""
        ...

    def predict(self, lq_feat: Tensor) -> Tensor:
        """``lq_feat`` -> code logits ``[B, 256, codebook_size]``, float32."""
        ...

    def lookup(
        self,
        lq_feat: Tensor,
        *,
        logits: Tensor | None = None,
        indices: Tensor | None = None,
        probs: Tensor | None = None,
        adain: bool = True,
    ) -> Tensor:
        """Code features ``[B, codebook_dim, 16, 16]`` from one of logits, indices or probs."""
        ...

    def decode(self, code_feat: Tensor, skips: dict[int, Tensor], w: float = 0.5) -> Tensor:
        """Code features -> RGB ``[B, 3, 512, 512]``, unclamped (fusion only when ``w > 0``)."""
        ...
