"""The two CPU runtimes behind one small interface: load a graph, run it on numpy arrays.

- ONNX Runtime (``onnxruntime``): float32 only; one session serves every batch size.
- OpenVINO (``openvino``): float32, or bfloat16 through its inference-precision hint where the
  CPU has native bfloat16 kernels; the graph is compiled for one item (static shapes are what
  its CPU plugin runs fastest) and a batch runs item by item. A batch was no faster per face
  there (published-size CodeFormer, 2 cores: 2.01 against 1.98 s a face in float32, 1.311
  against 1.306 in bfloat16), and each face more in a compiled batch held 550 to 750 MiB more
  of activations.

Both run on ``threads`` threads (the engine passes PyTorch's count) and leave their threads
idle between calls rather than spinning, so the rest of the pipeline keeps its cores. The
packages are imported only here, and only when a graph is loaded.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

#: The Python package each runtime comes in.
PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


class Graph(Protocol):
    """A loaded graph: inputs in the graph's order, outputs in its order."""

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def installed(runtime: str) -> bool:
    """Whether ``runtime``'s package and the ``onnx`` package (the exporter needs it) import."""
    return all(importlib.util.find_spec(p) is not None for p in (PACKAGES[runtime], "onnx"))


def version(runtime: str) -> str:
    """The installed version of ``runtime``'s package."""
    module: Any = __import__(PACKAGES[runtime])
    return str(module.__version__)


def per_item(runtime: str) -> bool:
    """Whether ``runtime``'s graphs compute each item of a batch on its own (OpenVINO's:
    compiled for one item), so an item's result never depends on the batch it came in."""
    graphs: dict[str, type[_OnnxRuntimeGraph] | type[_OpenVinoGraph]] = {
        "onnxruntime": _OnnxRuntimeGraph, "openvino": _OpenVinoGraph}
    if runtime not in graphs:
        raise ValueError(f"unknown runtime {runtime!r}")
    return graphs[runtime].PER_ITEM


def load(runtime: str, model: bytes, *, bfloat16: bool, threads: int) -> Graph:
    """``model`` (the bytes of an ONNX file) ready to run in ``runtime``."""
    if runtime == "onnxruntime":
        if bfloat16:
            raise ValueError("onnxruntime runs these graphs in float32 only")
        return _OnnxRuntimeGraph(model, threads)
    if runtime == "openvino":
        return _OpenVinoGraph(model, bfloat16=bfloat16, threads=threads)
    raise ValueError(f"unknown runtime {runtime!r}")


class _OnnxRuntimeGraph:
    PER_ITEM = False  # a batch runs as one call

    def __init__(self, model: bytes, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only: its graph warnings are not the user's concern
        self._session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self._names = [i.name for i in self._session.get_inputs()]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        feed = dict(zip(self._names, inputs, strict=True))
        return [np.asarray(o) for o in self._session.run(None, feed)]


_core_lock = threading.Lock()
_core: Any = None


def _openvino_core() -> Any:
    """One OpenVINO ``Core`` per process (it holds the plugins)."""
    global _core
    with _core_lock:
        if _core is None:
            import openvino as ov

            _core = ov.Core()
        return _core


class _OpenVinoGraph:
    PER_ITEM = True  # compiled for one item; a batch runs item by item

    def __init__(self, model: bytes, *, bfloat16: bool, threads: int) -> None:
        core = _openvino_core()
        self._model = core.read_model(model)
        self._config = {
            "INFERENCE_PRECISION_HINT": "bf16" if bfloat16 else "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "ENABLE_CPU_PINNING": False,
        }
        self._request: Any = None  # the infer request of the one-item compilation
        self._lock = threading.Lock()  # an infer request runs one call at a time
        self._outputs = len(self._model.outputs)

    def _compiled(self) -> Any:
        if self._request is None:
            model = self._model
            model.reshape({i.get_any_name(): [1, *_fixed_dims(i)]
                           for i in model.inputs if i.get_partial_shape().rank.get_length()})
            compiled = _openvino_core().compile_model(model, "CPU", self._config)
            self._request = compiled.create_infer_request()
        return self._request

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The outputs for a batch, computed item by item (inputs without a batch dimension,
        such as a scalar, go to every item)."""
        batch = int(inputs[0].shape[0])
        parts: list[list[np.ndarray]] = []
        with self._lock:
            request = self._compiled()
            for k in range(batch):
                item = [x[k : k + 1] if x.ndim else x for x in inputs]
                result = request.infer(item)
                parts.append([np.asarray(result[i]) for i in range(self._outputs)])
        if len(parts) == 1:
            return parts[0]
        if not parts:
            raise ValueError("an empty batch has no outputs")
        return [np.concatenate([p[i] for p in parts]) for i in range(self._outputs)]


def _fixed_dims(port: Any) -> list[int]:
    """The sizes of an OpenVINO input after its (dynamic) batch dimension."""
    return [d.get_length() for d in list(port.get_partial_shape())[1:]]
