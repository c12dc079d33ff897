"""Read a CodeFormer checkpoint into a ready-to-run network: :func:`load_restorer`.

The weights store only finds and verifies files; this side asks it for a path. Steps, each in
one place: read the file safely (``torch.load(weights_only=True)`` or safetensors), unwrap it
to a bare state dict (:func:`canonicalize`), read the hyperparameters from tensor shapes
(:func:`infer_config`), check every name and shape with a grouped message
(:func:`check_state_dict`), load strictly, then place the network (:mod:`.placement`), hand it
to its runtime (PyTorch, or a CPU runtime of :mod:`.runtime`) and describe it
(:class:`RestorerDescriptor`).
"""

from __future__ import annotations

import importlib.util
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..errors import CheckpointError, UsageError, WeightsError
from ..weights.env import default_home
from . import placement, precision
from .codeformer import INPUT_SIZE, CodeFormer, CodeFormerConfig, variant_name
from .compiled import compile_stages
from .descriptor import RestorerDescriptor
from .runtime import computes_bfloat16, preferred_runtime, resolve_runtime, runtime_network
from .runtime import supported_dtypes as runtime_dtypes

if TYPE_CHECKING:
    from ..weights import WeightStore

#: The manifest entry of the published CodeFormer weights.
PUBLISHED = "codeformer"

#: Wrapper keys under which training code stores the weights, in order of preference
#: (``params_ema`` holds the averaged weights the published inference uses).
WRAPPER_KEYS = ("params_ema", "params", "state_dict")
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
_SHOWN = 3  # names listed per group in error messages


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Load ``path`` without executing code and return its canonical state dict."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: checkpoint file not found")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        if importlib.util.find_spec("safetensors") is None:
            raise WeightsError(f"{path}: reading .safetensors needs the 'safetensors' package")
        from safetensors.torch import load_file

        try:
            return canonicalize(load_file(str(path), device="cpu"), str(path))
        except Exception as exc:  # the library raises its own error types
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if suffix not in TORCH_SUFFIXES:
        allowed = ", ".join((*TORCH_SUFFIXES, SAFETENSORS_SUFFIX))
        raise CheckpointError(f"{path}: unknown checkpoint extension {suffix!r}; use {allowed}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise CheckpointError(
                f"{path}: refused by the weights-only loader: it holds the Python object "
                f"{found.group(1)}, not only tensors"
            ) from exc
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (not a torch.save "
                              "file, or a pickle the weights-only loader cannot read)") from exc
    except Exception as exc:  # the weights-only unpickler on arbitrary bytes raises anything
        first = str(exc).split(". ")[0].strip().splitlines()
        why = first[0] if first and isinstance(exc, (RuntimeError, OSError)) else (
            f"not a torch.save file: {type(exc).__name__} reading it")
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({why})") from exc
    return canonicalize(obj, str(path))


def canonicalize(obj: Any, source: str = "checkpoint") -> dict[str, Tensor]:
    """Unwrap ``params_ema`` / ``params`` / ``state_dict`` and a common ``module.`` prefix."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{source}: holds a {type(obj).__name__}, expected a mapping of names to tensors"
        )
    for key in WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    sd = dict(obj)
    if sd and all(isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    not_tensors = [str(k) for k, v in sd.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{source}: {len(not_tensors)} entries are not tensors ({_names(not_tensors)}); "
            f"expected a state dict, optionally under {' / '.join(WRAPPER_KEYS)}"
        )
    return sd


def infer_config(sd: Mapping[str, Tensor], *, heads: int = 8) -> CodeFormerConfig:
    """Read a :class:`CodeFormerConfig` from the tensor shapes of a state dict.

    ``heads`` cannot be read from shapes (the packed projections have the same size for any
    head count), so it is given: 8 in the published network and both named variants. The
    GroupNorm group count is likewise fixed by convention (32, see ``blocks.GroupNorm``).
    Raises ``KeyError`` or ``UsageError`` when the layout is not CodeFormer's.
    """
    enc = _block_kinds(sd, "encoder.blocks.")
    body = enc[1:-5]  # drop conv_in and the tail: res, attn, res, norm, conv_out
    levels: list[list[tuple[str, int]]] = [[]]
    for kind, idx in body:
        if kind == "down":
            levels.append([])
        else:
            levels[-1].append((kind, idx))
    widths, per_level, attn = [], set(), []
    for level, blocks in enumerate(levels):
        res = [i for kind, i in blocks if kind == "res"]
        per_level.add(len(res))
        widths.append(int(sd[f"encoder.blocks.{res[-1]}.conv2.weight"].shape[0]))
        if any(kind == "attn" for kind, _ in blocks):
            attn.append(INPUT_SIZE >> level)
    if len(per_level) != 1:
        raise UsageError(f"encoder levels have different ResBlock counts {sorted(per_level)}")
    codebook_size, codebook_dim = sd["quantize.embedding.weight"].shape
    layer_ids = {int(m.group(1)) for k in sd if (m := re.match(r"ft_layers\.(\d+)\.", k))}
    connect = {int(m.group(1)) for k in sd if (m := re.match(r"fuse_convs_dict\.(\d+)\.", k))}
    return CodeFormerConfig(
        widths=tuple(widths),
        blocks_per_level=per_level.pop(),
        attn_resolutions=tuple(attn),
        codebook_size=int(codebook_size),
        codebook_dim=int(codebook_dim),
        embed_dim=int(sd["feat_emb.weight"].shape[0]),
        heads=heads,
        layers=len(layer_ids),
        mlp_dim=int(sd["ft_layers.0.linear1.weight"].shape[0]),
        connect=tuple(connect),
    )


def _block_kinds(sd: Mapping[str, Tensor], prefix: str) -> list[tuple[str, int]]:
    """(kind, index) for each numbered block under ``prefix``: res, attn, down or plain."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    ids = sorted({int(m.group(1)) for k in sd if (m := pattern.match(k))})
    kinds = []
    for i in ids:
        p = f"{prefix}{i}."
        kind = ("res" if p + "conv1.weight" in sd else "attn" if p + "q.weight" in sd
                else "down" if p + "conv.weight" in sd else "plain")
        kinds.append((kind, i))
    return kinds


def check_state_dict(model: CodeFormer, sd: Mapping[str, Tensor], source: str) -> None:
    """Raise :class:`CheckpointError` naming missing, unexpected and wrong-shape entries."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k} {list(sd[k].shape)} (expected {list(shape)})"
        for k, shape in expected.items()
        if k in sd and tuple(sd[k].shape) != shape
    ]
    not_float = [k for k in expected if k in sd and not sd[k].is_floating_point()]
    groups = [
        (missing, "missing"), (unexpected, "unexpected"), (wrong, "wrong shape"),
        (not_float, "not floating point"),
    ]
    parts = [f"{len(names)} {label} ({_names(names)})" for names, label in groups if names]
    if parts:
        variant = variant_name(model.config) or "custom configuration"
        raise CheckpointError(
            f"{source}: does not fit CodeFormer ({variant}): {'; '.join(parts)}"
        )


def build_from_state_dict(
    sd: Mapping[str, Tensor], *, source: str = "state dict", heads: int = 8
) -> CodeFormer:
    """A float32-or-as-stored CPU :class:`CodeFormer` holding ``sd`` (strict, eval mode)."""
    try:
        config = infer_config(sd, heads=heads)
    except (KeyError, IndexError, ValueError, TypeError):
        config = CodeFormerConfig(heads=heads)  # not CodeFormer's layout: report against this
    with torch.device("meta"):
        model = CodeFormer.from_config(config)
    check_state_dict(model, sd, source)
    model.load_state_dict(sd, strict=True, assign=True)
    return model.eval().requires_grad_(False)


def load_restorer(
    weights: str | Path | None = None,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "auto",
    store: WeightStore | None = None,
    channels_last: bool | None = None,
    heads: int = 8,
    runtime: str = "auto",
    compile: bool = False,
) -> RestorerDescriptor:
    """Load CodeFormer ready for inference: the one way from a checkpoint to a device.

    Args:
        weights: any CodeFormer-compatible checkpoint (published, tiny, another width); None
            takes the verified published file from ``store``.
        device: ``auto`` (CUDA, MPS, CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        dtype: ``auto`` (the policy of :mod:`.placement`) or a dtype name or torch dtype.
        store: where the published file comes from when ``weights`` is None.
        channels_last: as in :func:`precision.convert` (default: NHWC for half precision).
        heads: attention heads (not readable from tensor shapes; 8 in every known file).
        runtime: what runs the stages: ``auto`` (see :func:`.runtime.resolve_runtime`: a CPU
            runtime when one is installed and the device is the CPU; ``$VIDRESTORE_RUNTIME``
            may name the one ``auto`` prefers), ``torch``, ``onnxruntime`` or ``openvino``. A
            CPU runtime keeps its exported graphs in ``store.home`` (else
            ``$VIDRESTORE_HOME``) under ``runtime/``.
        compile: compile the stages with ``torch.compile`` (:mod:`.compiled`); a PyTorch
            feature, so ``auto`` then means ``torch`` and a CPU runtime is refused.

    Returns the network in eval mode with gradients off, wrapped in a
    :class:`RestorerDescriptor` with its input contract, licence and source. Raises
    :class:`UsageError` for neither ``weights`` nor ``store`` or an unusable device,
    :class:`WeightsError` for a missing file and :class:`CheckpointError` (one line) for
    content that does not fit.
    """
    dev = placement.resolve_device(device)
    if compile and runtime not in ("auto", "torch"):
        raise UsageError(f"--compile compiles PyTorch's network; --runtime {runtime} runs "
                         "exported graphs instead (use one or the other)")
    prefer = preferred_runtime()
    native = not compile and computes_bfloat16(runtime, dev, prefer)
    dt = placement.resolve_dtype(dtype, dev, cpu_bfloat16=native)
    rt = "torch" if compile else resolve_runtime(runtime, dev, dt, prefer=prefer)
    license, source = None, ""
    if weights is not None:
        path = Path(weights)
        source = str(path)
    elif store is not None:
        path = store.ensure(PUBLISHED)
        spec = store.spec(PUBLISHED)
        license, source = spec.license, spec.origin
    else:
        raise UsageError("load_restorer: give a checkpoint path or a WeightStore")
    model = build_from_state_dict(read_state_dict(path), source=str(path), heads=heads)
    if rt != "torch":
        home = store.home if store is not None else default_home()
        return RestorerDescriptor(
            model=runtime_network(model, rt, dt, home), config=model.config,
            variant=variant_name(model.config), path=path, dtype=dt, device=dev,
            supported_dtypes=runtime_dtypes(rt), license=license, source=source, runtime=rt,
            input_dtype=torch.float32)
    precision.convert(model.to(dev), dt, channels_last=channels_last)
    if compile:
        compile_stages(model)
    return RestorerDescriptor(
        model=model, config=model.config, variant=variant_name(model.config), path=path,
        dtype=dt, device=model.device, supported_dtypes=precision.supported_dtypes(dev),
        license=license, source=source,
    )


def load_codeformer_checkpoint(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = torch.float32,
    channels_last: bool | None = None,
    heads: int = 8,
) -> CodeFormer:
    """The bare network of :func:`load_restorer` for the file ``path`` (default: float32 on the
    CPU), for code that wants the module itself (tests, benchmarks, checking a file)."""
    return load_restorer(
        path, device=device, dtype=dtype, channels_last=channels_last, heads=heads,
        runtime="torch",
    ).module


def load_codeformer(
    path: Path | str | None = None,
    *,
    store: WeightStore | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
) -> CodeFormer:
    """The bare network from ``path`` or the verified file of ``store`` (float32 unless
    ``dtype`` is given); kept for existing callers, new code uses :func:`load_restorer`."""
    return load_restorer(path, store=store, device=device, dtype=dtype or torch.float32,
                         runtime="torch").module


def load_state_into(net: torch.nn.Module, path: str | Path, what: str) -> None:
    """Read ``path`` safely (:func:`read_state_dict`) into ``net``, strictly.

    For the helper networks (face detectors, face parsing): any file that is not ``what``'s
    weights is one :class:`CheckpointError` line naming the missing, unexpected and wrong-shape
    entries, never a traceback from deep inside torch.
    """
    sd = read_state_dict(path)
    own = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    groups = [
        ([k for k in own if k not in sd], "missing"),
        ([k for k in sd if k not in own], "unexpected"),
        ([k for k, shape in own.items() if k in sd and tuple(sd[k].shape) != shape],
         "wrong shape"),
    ]
    parts = [f"{len(names)} {label} ({_names(names)})" for names, label in groups if names]
    if parts:
        raise CheckpointError(f"{path}: not {what} weights: {'; '.join(parts)}")
    net.load_state_dict(sd, strict=True)


def save_codeformer_checkpoint(model: CodeFormer, path: str | Path) -> Path:
    """Write ``model``'s float32 weights under ``params_ema``, as the published file does."""
    path = Path(path)
    sd = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()
    }
    torch.save({"params_ema": sd}, path)
    return path


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
