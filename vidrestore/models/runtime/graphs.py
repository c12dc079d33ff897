"""CodeFormer's stages as ONNX graphs: what each graph takes and gives, and the export.

Four graphs, each with a dynamic batch dimension (one file serves every batch size):

- ``encode``: ``x`` -> ``lq_feat`` and one ``skip_R`` per connected resolution R;
- ``predict``: ``lq_feat`` -> ``logits`` (float32 end to end);
- ``decode``: ``code``, ``w`` (a float32 scalar) and the skips -> ``out``: the generator with
  the fidelity fusion, for ``w > 0``;
- ``decode_plain``: ``code`` -> ``out``: the generator alone, for ``w == 0`` (which skips the
  fusion rather than multiplying it by zero).

The lookup between predict and decode (a gather from the codebook plus adain) stays in PyTorch.
The graphs are traced from the float32 network by PyTorch's TorchScript-based exporter
(``dynamo=False``), which needs the ``onnx`` package but not ``onnxscript``. Its GroupNorms are
traced in the form of :class:`ChannelStatsGroupNorm` (same weights, same result), which the
runtimes run in their own channel layouts.
"""

from __future__ import annotations

import copy
import io
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..codeformer import INPUT_SIZE, TOKEN_SIDE, CodeFormer, CodeFormerConfig

#: ONNX operator set of the exported graphs (LayerNormalization needs 17).
OPSET = 17
#: Bumped whenever what a graph computes or how it is exported changes: part of the cache key.
GRAPH_VERSION = 2
GRAPHS = ("encode", "predict", "decode", "decode_plain")


@dataclass(frozen=True)
class GraphSpec:
    """A graph's name and the names of its inputs and outputs, in order."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def skip_names(config: CodeFormerConfig) -> tuple[str, ...]:
    """``skip_32``, ``skip_64``... for the connected resolutions, in ``config.connect`` order."""
    return tuple(f"skip_{r}" for r in config.connect)


def graph_spec(config: CodeFormerConfig, name: str) -> GraphSpec:
    """The inputs and outputs of the graph ``name`` (one of :data:`GRAPHS`)."""
    skips = skip_names(config)
    specs = {
        "encode": GraphSpec("encode", ("x",), ("lq_feat", *skips)),
        "predict": GraphSpec("predict", ("lq_feat",), ("logits",)),
        "decode": GraphSpec("decode", ("code", "w", *skips), ("out",)),
        "decode_plain": GraphSpec("decode_plain", ("code",), ("out",)),
    }
    return specs[name]


class _Encode(nn.Module):
    def __init__(self, net: CodeFormer) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        connect = self.net.config.connect
        lq_feat, skips = self.net.encoder(x, connect)
        return (lq_feat, *(skips[r] for r in connect))


class _Predict(nn.Module):
    def __init__(self, net: CodeFormer) -> None:
        super().__init__()
        self.net = net

    def forward(self, lq_feat: Tensor) -> Tensor:
        return self.net.predict(lq_feat)


class _Decode(nn.Module):
    def __init__(self, net: CodeFormer) -> None:
        super().__init__()
        self.net = net

    def forward(self, code: Tensor, w: Tensor, *skips: Tensor) -> Tensor:
        return self.net.generate(code, dict(zip(self.net.config.connect, skips, strict=True)), w,
                                 fuse=True)


class _DecodePlain(nn.Module):
    def __init__(self, net: CodeFormer) -> None:
        super().__init__()
        self.net = net

    def forward(self, code: Tensor) -> Tensor:
        return self.net.generate(code, {}, 0.0, fuse=False)


class ChannelStatsGroupNorm(nn.Module):
    """GroupNorm computed from per-channel statistics: a group's mean and (biased) variance are
    the means of its channels' spatial means, and everything else is element-wise with a
    per-channel factor. It shares the parameters of the ``nn.GroupNorm`` it stands for and
    equals it within float32 rounding.

    ONNX's own form (activations reshaped to ``[B, groups, -1]``, InstanceNormalization,
    reshaped back) makes OpenVINO reorder every normalised activation from its blocked channel
    layout to the plain one and back. Here only the ``[B, C, 1, 1]`` statistics are reshaped:
    measured on the published-size network (OpenVINO, 2 cores, one face), the float32 encoder
    went from 0.80 to 0.53 s, the decoder from 1.62 to 1.37 s (0.77 to 0.71 s in bfloat16),
    and ONNX Runtime's decoder from 2.08 to 1.56 s.
    """

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        self.groups = norm.num_groups
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias

    def _group_mean(self, per_channel: Tensor) -> Tensor:
        b, c = per_channel.shape[0], per_channel.shape[1]
        g = per_channel.reshape(b, self.groups, c // self.groups).mean(-1, keepdim=True)
        return g.expand(b, self.groups, c // self.groups).reshape(b, c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        centred = x - self._group_mean(x.mean((2, 3), keepdim=True))
        var = self._group_mean((centred * centred).mean((2, 3), keepdim=True))
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight.reshape(1, -1, 1, 1)
        out = centred * scale
        return out if self.bias is None else out + self.bias.reshape(1, -1, 1, 1)


def for_export(net: CodeFormer) -> CodeFormer:
    """A copy of ``net`` sharing its parameters and buffers, with each GroupNorm replaced by a
    :class:`ChannelStatsGroupNorm` (``net`` itself is left as it is)."""
    memo: dict[int, object] = {id(t): t for t in (*net.parameters(), *net.buffers())}
    copied = copy.deepcopy(net, memo)
    for module in list(copied.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.GroupNorm):
                setattr(module, name, ChannelStatsGroupNorm(child))
    return copied


def _example_inputs(config: CodeFormerConfig, name: str) -> tuple[Tensor, ...]:
    """Empty batches in the graph's input shapes. Tracing runs the network once on them: with
    no face that costs nothing (1 s instead of 8 to 15 s per graph of the published network),
    and the batch dimension is an input of the graph either way (measured: the same bytes as
    traced on one face)."""
    code = torch.zeros(0, config.codebook_dim, TOKEN_SIDE, TOKEN_SIDE)
    skips = tuple(torch.zeros(0, config.resolution_width(r), r, r) for r in config.connect)
    return {
        "encode": (torch.zeros(0, 3, INPUT_SIZE, INPUT_SIZE),),
        "predict": (code,),
        "decode": (code, torch.tensor(0.5), *skips),
        "decode_plain": (code,),
    }[name]


def export_graph(net: CodeFormer, name: str) -> bytes:
    """The ONNX file of graph ``name`` traced from ``net`` (float32, on the CPU), as bytes."""
    if net.dtype != torch.float32 or net.device.type != "cpu":
        raise ValueError(f"graphs are exported from the float32 CPU network, not {net.dtype} "
                         f"on {net.device}")
    spec = graph_spec(net.config, name)
    wrapper = {"encode": _Encode, "predict": _Predict, "decode": _Decode,
               "decode_plain": _DecodePlain}[name](for_export(net)).eval()
    dynamic = {n: {0: "batch"} for n in (*spec.inputs, *spec.outputs) if n != "w"}
    buf = io.BytesIO()
    # Tracing is expected to warn (the TorchScript exporter's deprecation notice, constant
    # folding it skips); an engine stage may call this inside inference mode, which tracing
    # does not take. The TorchScript exporter writes to a file object too (its own signature
    # says so; the public one names only paths).
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, _example_inputs(net.config, name), buf,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=OPSET, input_names=list(spec.inputs),
            output_names=list(spec.outputs), dynamic_axes=dynamic, do_constant_folding=True)
    return buf.getvalue()
