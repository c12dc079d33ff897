"""CodeFormer's stages run from exported graphs: :class:`RuntimeNetwork`.

It has the stage interface of :class:`~..codeformer.CodeFormer` (encode, predict, lookup,
decode), so the engine runs it unchanged. Its tensors are float32 on the CPU whatever the
compute precision: in bfloat16 only the decoder graphs run in bfloat16 (see
:data:`BFLOAT16_GRAPHS`). The PyTorch network stays beside it (:attr:`RuntimeNetwork.module`)
for the lookup and for anything that needs parameters.

The graphs of the encoder and the code prediction are loaded when the network is made (a
runtime that cannot load them fails there); the decoder graphs when the first decode needs
them (``decode_plain`` only ever for ``w == 0``).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict

import torch
from torch import Tensor

from ... import runtimes
from ..codeformer import CodeFormer, CodeFormerConfig, Encoded, check_input, fuses
from .cache import GraphCache, graph_key
from .graphs import GRAPH_VERSION, OPSET, export_graph, graph_spec

#: The graphs that run in bfloat16 when the network's precision is bfloat16. The encoder and
#: the code prediction stay float32, so the codes are float32's: with the encoder in bfloat16
#: 2 % of the codes changed (the published-size network with synthetic weights: 5/256 on the
#: golden input, 98.2 % equal on 11 real aligned faces), above the 1 % allowed.
BFLOAT16_GRAPHS = frozenset({"decode", "decode_plain"})


def weights_digest(module: CodeFormer) -> str:
    """SHA-256 over the state dict's names, dtypes, shapes and values: the same weights give
    the same digest whether they came from a .pth, a .safetensors or memory."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().to("cpu").contiguous().numpy())
    return h.hexdigest()


class RuntimeNetwork:
    """A float32 CPU :class:`CodeFormer` whose stages run in ``runtime`` from its graphs.

    Args:
        module: the network, moved to the CPU in float32 in place (what is exported).
        runtime: ``onnxruntime`` or ``openvino``.
        precision: ``torch.float32``, or ``torch.bfloat16`` (OpenVINO with native bfloat16).
        cache: where the graphs are kept (:class:`GraphCache`; None: exported in memory).
        threads: runtime threads (default: PyTorch's count now).
    """

    def __init__(self, module: CodeFormer, *, runtime: str,
                 precision: torch.dtype = torch.float32, cache: GraphCache | None = None,
                 threads: int | None = None) -> None:
        if precision not in (torch.float32, torch.bfloat16):
            raise ValueError(f"the CPU runtimes compute in float32 or bfloat16, not {precision}")
        self.module = module.to("cpu", torch.float32).eval().requires_grad_(False)
        self.runtime = runtime
        #: Whether each face of a batch is computed on its own (:func:`runtimes.per_item`).
        self.per_item = runtimes.per_item(runtime)
        self.precision = precision
        self.threads = threads or torch.get_num_threads()
        self.cache = cache or GraphCache(None)
        weights = graph_key({"weights": weights_digest(self.module),
                             "config": asdict(self.module.config)})[:16]
        build = graph_key({"graphs": GRAPH_VERSION, "opset": OPSET,
                           "torch": torch.__version__})[:16]
        #: ``weights-build``: what the graphs are made from (the weights and configuration),
        #: and how (the graph version, the opset and torch).
        self.key = f"{weights}-{build}"
        self._graphs: dict[str, runtimes.Graph] = {}
        self._lock = threading.Lock()
        for name in ("encode", "predict"):
            self._graph(name)

    # -- the stage interface ----------------------------------------------------------------
    @property
    def config(self) -> CodeFormerConfig:
        return self.module.config

    @property
    def dtype(self) -> torch.dtype:
        """float32: the stages take and give float32 tensors (see :attr:`precision`)."""
        return torch.float32

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def encode(self, x: Tensor, *, skips: bool = True) -> Encoded:
        """As :meth:`CodeFormer.encode`."""
        check_input(x)
        lq_feat, *kept = self._run("encode", x)
        return Encoded(lq_feat, dict(zip(self.config.connect, kept, strict=True)) if skips
                       else {})

    def predict(self, lq_feat: Tensor) -> Tensor:
        """As :meth:`CodeFormer.predict` (float32 logits)."""
        return self._run("predict", lq_feat)[0]

    def lookup(
        self,
        lq_feat: Tensor,
        *,
        logits: Tensor | None = None,
        indices: Tensor | None = None,
        probs: Tensor | None = None,
        adain: bool = True,
    ) -> Tensor:
        """:meth:`CodeFormer.lookup` of the PyTorch network (a gather and adain)."""
        return self.module.lookup(lq_feat, logits=logits, indices=indices, probs=probs,
                                  adain=adain)

    def decode(self, code_feat: Tensor, skips: dict[int, Tensor], w: float = 0.5) -> Tensor:
        """As :meth:`CodeFormer.decode`."""
        if fuses(self.config, skips, w) and self.config.connect:
            return self._run("decode", code_feat, torch.tensor(float(w)),
                             *(skips[r] for r in self.config.connect))[0]
        return self._run("decode_plain", code_feat)[0]

    # -- graphs -----------------------------------------------------------------------------
    def graph_stem(self, name: str) -> str:
        """The cache name of graph ``name`` of this network."""
        return f"{name}-{self.key}"

    def earlier_stems(self, name: str) -> tuple[str, str]:
        """Glob patterns of the stems of graph ``name`` made from these weights by another
        build, and of those named the way earlier versions named them (``name-<32 hex>``)."""
        weights = self.key.split("-")[0]
        return f"{name}-{weights}-*", f"{name}-" + "[0-9a-f]" * 32

    def _graph(self, name: str) -> runtimes.Graph:
        with self._lock:
            graph = self._graphs.get(name)
            if graph is None:
                bf16 = self.precision == torch.bfloat16 and name in BFLOAT16_GRAPHS

                def load(model: bytes) -> runtimes.Graph:
                    return runtimes.load(self.runtime, model, bfloat16=bf16,
                                         threads=self.threads)

                graph = self._graphs[name] = self.cache.fetch(
                    self.graph_stem(name), lambda: export_graph(self.module, name), load,
                    earlier=self.earlier_stems(name))
            return graph

    def _run(self, name: str, *inputs: Tensor) -> list[Tensor]:
        arrays = [t.detach().to("cpu", torch.float32).contiguous().numpy() for t in inputs]
        spec = graph_spec(self.config, name)
        outputs = self._graph(name).run(arrays)
        if len(outputs) != len(spec.outputs):
            raise RuntimeError(f"the {name} graph gave {len(outputs)} outputs, expected "
                               f"{len(spec.outputs)}")
        return [torch.from_numpy(o) for o in outputs]
