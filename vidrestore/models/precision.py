"""Half-precision policy for CodeFormer: what runs in the model dtype and what stays float32.

Convolutions, linear layers and the element-wise work run in the model's dtype (float32,
bfloat16 or float16). A few small operations are "float32 islands" because they overflow or
change which codebook entry wins when run in half precision:

- GroupNorm and LayerNorm statistics (variance of activations with absmax ~15 overflows or
  loses all precision in float16);
- attention scores and softmax, in the 16x16 AttnBlocks and the transformer (a dot product over
  512 channels reaches the float16 limit, and rounded scores move the softmax);
- the code prediction head ``idx_pred_layer`` (its parameters are kept in float32 and its
  input is upcast: logits decide ``argmax`` and must not flip on rounding), the codebook and
  the adain statistics.

The islands are written as functions that upcast, compute and cast back, so a model converted
with plain ``.to(dtype)`` still runs; :func:`convert` additionally keeps the parameters of the
prediction head and codebook in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UsageError

#: Accepted spellings of the supported compute dtypes.
DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}

#: Submodules whose parameters stay float32 whatever the model dtype.
FLOAT32_MODULES: tuple[str, ...] = ("quantize", "idx_pred_layer")


def parse_dtype(value: str | torch.dtype) -> torch.dtype:
    """Turn ``"bf16"``, ``"float16"``, ``torch.float32``... into a supported torch dtype."""
    if isinstance(value, torch.dtype):
        if value in DTYPE_NAMES.values():
            return value
        raise UsageError(f"dtype {value} is not supported; use float32, bfloat16 or float16")
    key = str(value).strip().lower().removeprefix("torch.")
    if key not in DTYPE_NAMES:
        raise UsageError(f"dtype {value!r} is not one of {', '.join(DTYPE_NAMES)}")
    return DTYPE_NAMES[key]


def supported_dtypes(device: str | torch.device) -> tuple[torch.dtype, ...]:
    """Dtypes the network runs in on ``device``; ``auto`` picks one of them, see
    :mod:`.placement`."""
    dev = torch.device(device)
    if dev.type == "cuda":
        bf16 = (torch.bfloat16,) if torch.cuda.is_bf16_supported() else ()
        return (torch.float32, torch.float16, *bf16)
    return (torch.float32, torch.bfloat16, torch.float16)


def cpu_has_fast_bfloat16() -> bool:
    """Whether oneDNN has native bfloat16 kernels here (AVX512-BF16 or AMX CPUs).

    Without them PyTorch runs half-precision convolutions with a reference kernel: measured
    4x slower than float32 for a 64-channel conv in channels_last on an AVX2 CPU, and
    ~20x slower for the narrow convs of the tiny variant.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def convert(
    model: nn.Module, dtype: str | torch.dtype, *, channels_last: bool | None = None
) -> nn.Module:
    """Cast ``model`` to ``dtype`` in place, keeping :data:`FLOAT32_MODULES` in float32.

    ``channels_last`` (default: only for half precision) stores conv weights NHWC, so every
    feature map downstream is NHWC too. On CPU, half-precision convolutions in NCHW fall back
    to a reference kernel that is ~100x slower (80 s instead of 0.8 s for one 64-channel
    256x256 conv on 2 cores), and NHWC is the layout tensor cores prefer. Float32 stays NCHW by
    default because it then matches the float32 reference bit for bit; NHWC float32 is ~10 %
    faster on CPU (27.2 vs 30.4 CPU s per face, one thread, w=0.5) and differs by ~4e-5.
    """
    dt = parse_dtype(dtype)
    model.to(dt)
    for name in FLOAT32_MODULES:
        sub = getattr(model, name, None)
        if sub is not None:
            sub.float()
    nhwc = dt != torch.float32 if channels_last is None else channels_last
    model.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    return model


def group_norm(x: Tensor, norm: nn.GroupNorm) -> Tensor:
    """GroupNorm with float32 statistics, result in the input dtype."""
    w = None if norm.weight is None else norm.weight.float()
    b = None if norm.bias is None else norm.bias.float()
    return F.group_norm(x.float(), norm.num_groups, w, b, norm.eps).to(x.dtype)


def layer_norm(x: Tensor, norm: nn.LayerNorm, *, out_dtype: torch.dtype | None = None) -> Tensor:
    """LayerNorm with float32 statistics, result in ``out_dtype`` (default: the input dtype)."""
    w = None if norm.weight is None else norm.weight.float()
    b = None if norm.bias is None else norm.bias.float()
    y = F.layer_norm(x.float(), norm.normalized_shape, w, b, norm.eps)
    return y.to(out_dtype or x.dtype)


def linear(x: Tensor, layer: nn.Linear) -> Tensor:
    """A float32 linear layer (the code prediction head): float32 in, float32 out."""
    b = None if layer.bias is None else layer.bias.float()
    return F.linear(x.float(), layer.weight.float(), b)


def attention(q: Tensor, k: Tensor, v: Tensor, scale: float, *, prescale: bool) -> Tensor:
    """softmax(q k^T * scale) v for [..., n, d] inputs, computed in float32.

    ``prescale`` scales ``q`` before the product (multi-head attention) rather than the scores
    after it (the convolutional AttnBlock); both orders are kept so float32 results match the
    reference to the last bit. The result comes back in the dtype of ``v``.
    """
    qf, kt = q.float(), k.float().transpose(-2, -1)
    scores = torch.matmul(qf * scale, kt) if prescale else torch.matmul(qf, kt) * scale
    return torch.matmul(scores.softmax(dim=-1), v.float()).to(v.dtype)
