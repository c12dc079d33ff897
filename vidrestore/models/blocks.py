"""CodeFormer building blocks. Attribute names are the checkpoint's state-dict names."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import precision


class GroupNorm(nn.GroupNorm):
    """GroupNorm (eps 1e-6) with float32 statistics.

    The published network uses 32 groups; narrower test variants use ``gcd(32, channels)``
    groups so any width works and the published widths are unchanged.
    """

    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__(math.gcd(groups, channels), channels, eps=1e-6, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return precision.group_norm(x, self)


class LayerNorm(nn.LayerNorm):
    """LayerNorm (eps 1e-5) with float32 statistics."""

    def forward(self, x: Tensor) -> Tensor:
        return precision.layer_norm(x, self)


def swish(x: Tensor) -> Tensor:
    """x * sigmoid(x) in one fused pass (one rounding in half precision)."""
    return F.silu(x)


def conv3x3(cin: int, cout: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=padding)


class ResBlock(nn.Module):
    """norm-swish-conv twice, plus a 1x1 ``conv_out`` skip when the width changes."""

    def __init__(self, cin: int, cout: int, groups: int = 32) -> None:
        super().__init__()
        self.norm1 = GroupNorm(cin, groups)
        self.conv1 = conv3x3(cin, cout)
        self.norm2 = GroupNorm(cout, groups)
        self.conv2 = conv3x3(cout, cout)
        self.conv_out = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.in_channels, self.out_channels = cin, cout

    def forward(self, x: Tensor) -> Tensor:
        h: Tensor = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        skip: Tensor = x if self.conv_out is None else self.conv_out(x)
        return skip + h


class Downsample(nn.Module):
    """Zero-pad right and bottom by one pixel, then a stride-2 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv3x3(channels, channels, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))
        return out


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return out


class AttnBlock(nn.Module):
    """Single-head self-attention over the h*w positions of a feature map (1x1 conv q/k/v)."""

    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__()
        self.norm = GroupNorm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        q = self.q(n).reshape(b, c, h * w).transpose(1, 2)
        k = self.k(n).reshape(b, c, h * w).transpose(1, 2)
        v = self.v(n).reshape(b, c, h * w).transpose(1, 2)
        out = precision.attention(q, k, v, c**-0.5, prescale=False)
        projected: Tensor = self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))
        return x + projected


class SelfAttention(nn.Module):
    """Multi-head self-attention with packed input projections (checkpoint layout of
    ``nn.MultiheadAttention``); queries and keys may differ from values (position embedding)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)

    def forward(self, qk: Tensor, v: Tensor) -> Tensor:
        """``qk``, ``v``: [B, N, dim] (batch first) -> [B, N, dim]."""
        b, n, dim = v.shape
        wq, wk, wv = self.in_proj_weight.chunk(3)
        bq, bk, bv = self.in_proj_bias.chunk(3)
        d = dim // self.heads

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, n, self.heads, d).transpose(1, 2)

        q = split(F.linear(qk, wq, bq))
        k = split(F.linear(qk, wk, bk))
        val = split(F.linear(v, wv, bv))
        out = precision.attention(q, k, val, d**-0.5, prescale=True)
        projected: Tensor = self.out_proj(out.transpose(1, 2).reshape(b, n, dim))
        return projected


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer; the position embedding is added to queries and keys only."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        # Creation order fixes the state-dict order: self_attn, linear1, linear2, norm1, norm2.
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, dim)
        self.norm1 = LayerNorm(dim)
        self.norm2 = LayerNorm(dim)

    def forward(self, t: Tensor, pos: Tensor) -> Tensor:
        a: Tensor = self.norm1(t)
        t = t + self.self_attn(a + pos, a)
        b: Tensor = self.norm2(t)
        mlp: Tensor = self.linear2(F.gelu(self.linear1(b)))
        return t + mlp


class Fuse(nn.Module):
    """Controllable feature fusion: encoder and decoder features predict a scale and shift
    that move the decoder feature by ``w * (dec * scale + shift)``."""

    def __init__(self, channels: int, groups: int = 32) -> None:
        super().__init__()
        self.encode_enc = ResBlock(2 * channels, channels, groups)
        self.scale = self._branch(channels)
        self.shift = self._branch(channels)

    @staticmethod
    def _branch(channels: int) -> nn.Sequential:
        act = nn.LeakyReLU(0.2, inplace=True)
        return nn.Sequential(conv3x3(channels, channels), act, conv3x3(channels, channels))

    def forward(self, enc: Tensor, dec: Tensor, w: float | Tensor) -> Tensor:
        e = self.encode_enc(torch.cat([enc, dec], dim=1))
        residual: Tensor = w * (dec * self.scale(e) + self.shift(e))
        return dec + residual
