"""``--compile``: CodeFormer's stages through ``torch.compile`` (TorchInductor).

The three stages that hold the network's work are compiled whole, each as one graph: the
encoder module, :meth:`~.codeformer.CodeFormer.predict` and
:meth:`~.codeformer.CodeFormer.generate` (the decoder with its fusions). Shapes are static
(``dynamic=False``): the engine pads every batch to one size, so each stage compiles once per
dtype and fidelity path and the compiled code is reused for the whole run. The lookup between
predict and generate (a gather and adain) stays eager.

Compiling costs time before the first batch (on 2 CPU cores about a minute, for the published
network and the tiny variant alike; 12 s once TorchInductor's cache holds it) and changes
results only by float rounding (about 1e-5 on the published network, the same codes).
The state dict keeps its names: modules are compiled in place, methods wrapped on the instance.
"""

from __future__ import annotations

import torch

from .codeformer import CodeFormer


def compile_stages(model: CodeFormer) -> CodeFormer:
    """Compile ``model``'s encoder, code prediction and decoder in place; returns ``model``."""
    model.encoder.compile(dynamic=False)
    # instance attributes shadow the methods: encode/decode call the compiled versions
    model.predict = torch.compile(model.predict, dynamic=False)  # type: ignore[method-assign]
    model.generate = torch.compile(model.generate, dynamic=False)  # type: ignore[method-assign]
    return model


def is_compiled(model: CodeFormer) -> bool:
    """Whether :func:`compile_stages` was applied to ``model``."""
    return getattr(model.encoder, "_compiled_call_impl", None) is not None and (
        "predict" in vars(model) and "generate" in vars(model))
