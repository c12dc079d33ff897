"""CodeFormer on the CPU runtimes: its stages exported to ONNX and run in OpenVINO or ONNX
Runtime, about twice as fast as PyTorch at float32 on the CPU.

- :mod:`.graphs`: the four graphs (encode, predict, decode, decode_plain) and their export;
- :mod:`.cache`: graph files in the cache folder, named by hash, checked before use;
- :mod:`vidrestore.runtimes`: the two runtimes behind one ``run(arrays)`` interface (also what
  runs the YuNet detector);
- :mod:`.network`: :class:`RuntimeNetwork`, the stage interface over the graphs;
- :mod:`.select`: what ``--runtime auto`` picks.

:func:`~vidrestore.models.load_restorer` (``runtime=``) is the way in; the graphs are exported
on first use of a checkpoint and reused from ``$VIDRESTORE_HOME/runtime/`` afterwards.
"""

from pathlib import Path

import torch

from ..codeformer import CodeFormer
from .cache import FOLDER, GraphCache
from .network import BFLOAT16_GRAPHS, RuntimeNetwork
from .select import (
    CPU_RUNTIMES,
    RUNTIME_ENV,
    RUNTIMES,
    computes_bfloat16,
    preferred_runtime,
    resolve_runtime,
    supported_dtypes,
)


def runtime_network(module: CodeFormer, runtime: str, dtype: torch.dtype,
                    home: Path | None) -> RuntimeNetwork:
    """``module`` run by ``runtime`` in ``dtype``, its graphs kept under ``home/runtime``
    (``home`` None: exported anew in memory)."""
    cache = GraphCache(None if home is None else home / FOLDER)
    return RuntimeNetwork(module, runtime=runtime, precision=dtype, cache=cache)


__all__ = [
    "BFLOAT16_GRAPHS",
    "CPU_RUNTIMES",
    "RUNTIMES",
    "RUNTIME_ENV",
    "GraphCache",
    "RuntimeNetwork",
    "computes_bfloat16",
    "preferred_runtime",
    "resolve_runtime",
    "runtime_network",
    "supported_dtypes",
]
