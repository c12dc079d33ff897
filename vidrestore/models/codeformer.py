"""The CodeFormer network with a stage API: encode -> predict -> lookup -> decode.

``forward`` is exactly those four stages in sequence, so callers that batch, cache or share
work between frames (for example one encoder pass reused for several fidelity weights, or code
indices chosen over a temporal window) call the stages themselves and get the same numbers.

Input: RGB ``[B, 3, 512, 512]`` in [-1, 1]. The token grid is fixed at 16x16 (256 tokens).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import UsageError
from . import precision
from .blocks import (
    AttnBlock,
    Downsample,
    Fuse,
    GroupNorm,
    LayerNorm,
    ResBlock,
    TransformerLayer,
    Upsample,
    conv3x3,
)

INPUT_SIZE = 512
TOKEN_SIDE = 16
#: Resolution levels from 512x512 down to the 16x16 token grid.
LEVELS = 6
#: Resolutions at which the fidelity fusion may connect encoder and generator.
FUSE_RESOLUTIONS = (32, 64, 128, 256)
#: Fidelity weight range of the published network.
FIDELITY_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class CodeFormerConfig:
    """Hyperparameters of a CodeFormer network; the defaults are the published model."""

    #: Channels per resolution level, from 512x512 down to 16x16 (six levels).
    widths: tuple[int, ...] = (64, 128, 128, 256, 256, 512)
    #: ResBlocks per level in the encoder and in the generator.
    blocks_per_level: int = 2
    #: Levels (by side length) with an AttnBlock after each ResBlock.
    attn_resolutions: tuple[int, ...] = (16,)
    codebook_size: int = 1024
    #: Width of a code vector, and of the encoder output ``lq_feat``.
    codebook_dim: int = 256
    #: Transformer width.
    embed_dim: int = 512
    heads: int = 8
    layers: int = 9
    mlp_dim: int = 1024
    #: Resolutions with a fidelity fusion block (a subset of 32, 64, 128, 256).
    connect: tuple[int, ...] = FUSE_RESOLUTIONS
    #: GroupNorm groups (``gcd(norm_groups, channels)`` for narrow layers).
    norm_groups: int = 32

    def __post_init__(self) -> None:
        if len(self.widths) != LEVELS or min(self.widths) < 1:
            raise UsageError(
                f"widths {self.widths}: need {LEVELS} positive widths (512 down to 16)"
            )
        bad = sorted(set(self.connect) - set(FUSE_RESOLUTIONS))
        if bad:
            raise UsageError(f"connect {bad}: fusion exists only at {FUSE_RESOLUTIONS}")
        if self.embed_dim % self.heads:
            raise UsageError(f"embed_dim {self.embed_dim} is not divisible by {self.heads} heads")
        # Resolution lists are kept sorted, whatever order was given.
        object.__setattr__(self, "connect", tuple(sorted(set(self.connect))))
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "attn_resolutions", tuple(sorted(set(self.attn_resolutions))))

    def resolution_width(self, resolution: int) -> int:
        """Channels of the level whose feature maps are ``resolution`` pixels wide."""
        return self.widths[(INPUT_SIZE // resolution).bit_length() - 1]


@dataclass
class Encoded:
    """Encoder output: ``lq_feat`` [B, codebook_dim, 16, 16] and the encoder features that the
    fidelity fusion reads, keyed by resolution."""

    lq_feat: Tensor
    skips: dict[int, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.lq_feat.shape[0]

    def select(self, index: int | slice | Sequence[int] | Tensor) -> Encoded:
        """The faces at ``index`` (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        elif not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.lq_feat.device)
        return Encoded(self.lq_feat[index], {r: s[index] for r, s in self.skips.items()})

    @staticmethod
    def cat(items: Iterable[Encoded]) -> Encoded:
        """Concatenate along the batch dimension (all items must carry the same skips)."""
        items = list(items)
        if not items:
            raise ValueError("Encoded.cat needs at least one item")
        keys = items[0].skips.keys()
        return Encoded(
            torch.cat([e.lq_feat for e in items]),
            {r: torch.cat([e.skips[r] for e in items]) for r in keys},
        )


class Encoder(nn.Module):
    """Image [B,3,512,512] -> ``lq_feat`` [B,codebook_dim,16,16] plus per-level features."""

    def __init__(self, cfg: CodeFormerConfig) -> None:
        super().__init__()
        g = cfg.norm_groups
        blocks: list[nn.Module] = [conv3x3(3, cfg.widths[0])]
        #: resolution -> index of the block whose output feeds the fusion (last ResBlock).
        self.skip_after: dict[int, int] = {}
        cin, res = cfg.widths[0], INPUT_SIZE
        for level, width in enumerate(cfg.widths):
            for _ in range(cfg.blocks_per_level):
                blocks.append(ResBlock(cin, width, g))
                cin = width
                self.skip_after[res] = len(blocks) - 1
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(cin, g))
            if level != len(cfg.widths) - 1:
                blocks.append(Downsample(cin))
                res //= 2
        blocks += [ResBlock(cin, cin, g), AttnBlock(cin, g), ResBlock(cin, cin, g)]
        blocks += [GroupNorm(cin, g), conv3x3(cin, cfg.codebook_dim)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, keep: Iterable[int] = ()) -> tuple[Tensor, dict[int, Tensor]]:
        wanted = {self.skip_after[r]: r for r in keep}
        skips: dict[int, Tensor] = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                skips[wanted[i]] = x
        return x, skips


class Generator(nn.Module):
    """Code features [B,codebook_dim,16,16] -> RGB [B,3,512,512] (blocks only; the fusion is
    applied by :meth:`CodeFormer.decode`)."""

    def __init__(self, cfg: CodeFormerConfig) -> None:
        super().__init__()
        g = cfg.norm_groups
        cin = cfg.widths[-1]
        blocks: list[nn.Module] = [conv3x3(cfg.codebook_dim, cin)]
        blocks += [ResBlock(cin, cin, g), AttnBlock(cin, g), ResBlock(cin, cin, g)]
        #: block index -> resolution, for the fusion after the first ResBlock of a level.
        self.fuse_after: dict[int, int] = {}
        res = TOKEN_SIDE
        for level in reversed(range(len(cfg.widths))):
            width = cfg.widths[level]
            for i in range(cfg.blocks_per_level):
                blocks.append(ResBlock(cin, width, g))
                cin = width
                if i == 0:
                    self.fuse_after[len(blocks) - 1] = res
                if res in cfg.attn_resolutions:
                    blocks.append(AttnBlock(cin, g))
            if level != 0:
                blocks.append(Upsample(cin))
                res *= 2
        blocks += [GroupNorm(cin, g), conv3x3(cin, 3)]
        self.blocks = nn.ModuleList(blocks)


class Codebook(nn.Module):
    """The learned code vectors (``quantize.embedding.weight``, [codebook_size, codebook_dim])."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        # N(0, 1) as nn.Embedding's own init, drawn by randn: on the meta device, Embedding's
        # normal_ would import torch._dynamo (about 2 s) for nothing.
        self.embedding = nn.Embedding(size, dim, _weight=torch.randn(size, dim))


def adaptive_instance_norm(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Give ``content`` the per-sample, per-channel mean and std of ``style`` ([B,C,H,W]).

    std = sqrt(unbiased variance over H*W + eps), as the published inference computes it.
    """

    def mean_std(t: Tensor) -> tuple[Tensor, Tensor]:
        flat = t.flatten(2)
        std = (flat.var(dim=2) + eps).sqrt()
        return flat.mean(dim=2)[..., None, None], std[..., None, None]

    c_mean, c_std = mean_std(content)
    s_mean, s_std = mean_std(style)
    return (content - c_mean) / c_std * s_std + s_mean


def check_input(x: Tensor) -> None:
    """Refuse anything but an RGB batch ``[B, 3, 512, 512]``, in one line."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
        raise UsageError(
            f"CodeFormer input has shape {tuple(x.shape)}; expected [B, 3, 512, 512]"
        )


def fuses(config: CodeFormerConfig, skips: Mapping[int, Tensor], w: float) -> bool:
    """Whether decoding at fidelity ``w`` runs the fusion (``w > 0``); refuses a ``w`` outside
    [0, 1] and, when fusing, missing encoder skips."""
    if not FIDELITY_RANGE[0] <= w <= FIDELITY_RANGE[1]:
        raise UsageError(f"fidelity weight w={w} is outside [0, 1]")
    fuse = w > 0
    if fuse and (missing := sorted(set(config.connect) - set(skips))):
        raise UsageError(f"decode with w={w} needs encoder skips at {missing}")
    return fuse


class CodeFormer(nn.Module):
    """CodeFormer face restoration network; see the module docstring for the stage API.

    The state-dict names, shapes and order of the default configuration are those of the
    published checkpoint, which therefore loads with ``load_state_dict(strict=True)``.
    """

    def __init__(
        self,
        *,
        widths: Sequence[int] = CodeFormerConfig.widths,
        blocks_per_level: int = CodeFormerConfig.blocks_per_level,
        attn_resolutions: Sequence[int] = CodeFormerConfig.attn_resolutions,
        codebook_size: int = CodeFormerConfig.codebook_size,
        codebook_dim: int = CodeFormerConfig.codebook_dim,
        embed_dim: int = CodeFormerConfig.embed_dim,
        heads: int = CodeFormerConfig.heads,
        layers: int = CodeFormerConfig.layers,
        mlp_dim: int = CodeFormerConfig.mlp_dim,
        connect: Sequence[int] = CodeFormerConfig.connect,
        norm_groups: int = CodeFormerConfig.norm_groups,
    ) -> None:
        super().__init__()
        cfg = CodeFormerConfig(
            widths=tuple(widths), blocks_per_level=blocks_per_level,
            attn_resolutions=tuple(attn_resolutions), codebook_size=codebook_size,
            codebook_dim=codebook_dim, embed_dim=embed_dim, heads=heads, layers=layers,
            mlp_dim=mlp_dim, connect=tuple(connect), norm_groups=norm_groups,
        )
        self.config = cfg
        tokens = TOKEN_SIDE * TOKEN_SIDE
        # Attribute order is the checkpoint's state-dict order.
        self.position_emb = nn.Parameter(torch.zeros(tokens, embed_dim))
        self.encoder = Encoder(cfg)
        self.quantize = Codebook(codebook_size, codebook_dim)
        self.generator = Generator(cfg)
        self.feat_emb = nn.Linear(codebook_dim, embed_dim)
        self.ft_layers = nn.ModuleList(
            TransformerLayer(embed_dim, heads, mlp_dim) for _ in range(layers)
        )
        self.idx_pred_layer = nn.Sequential(
            LayerNorm(embed_dim), nn.Linear(embed_dim, codebook_size, bias=False)
        )
        self.fuse_convs_dict = nn.ModuleDict(
            {str(r): Fuse(cfg.resolution_width(r), cfg.norm_groups) for r in cfg.connect}
        )

    @classmethod
    def from_config(cls, config: CodeFormerConfig) -> CodeFormer:
        return cls(**asdict(config))

    @property
    def _stem(self) -> nn.Conv2d:
        """The encoder's first convolution, whose weight tells the dtype and device."""
        stem = self.encoder.blocks[0]
        assert isinstance(stem, nn.Conv2d)
        return stem

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype (of the convolutions); some parts stay float32, see ``precision``."""
        return self._stem.weight.dtype

    @property
    def device(self) -> torch.device:
        return self._stem.weight.device

    # --- stages -------------------------------------------------------------------------

    def encode(self, x: Tensor, *, skips: bool = True) -> Encoded:
        """RGB [B,3,512,512] in [-1,1] -> :class:`Encoded` (skips only if ``skips``)."""
        check_input(x)
        keep = self.config.connect if skips else ()
        lq_feat, kept = self.encoder(x.to(device=self.device, dtype=self.dtype), keep)
        return Encoded(lq_feat, kept)

    def predict(self, lq_feat: Tensor) -> Tensor:
        """``lq_feat`` -> code logits [B, 256, codebook_size], always float32."""
        tokens = lq_feat.to(self.dtype).flatten(2).transpose(1, 2)
        t = self.feat_emb(tokens)
        pos = self.position_emb.to(t.dtype)
        for layer in self.ft_layers:
            t = layer(t, pos)
        norm, head = self.idx_pred_layer
        assert isinstance(norm, nn.LayerNorm) and isinstance(head, nn.Linear)
        return precision.linear(precision.layer_norm(t, norm, out_dtype=torch.float32), head)

    def lookup(
        self,
        lq_feat: Tensor,
        *,
        logits: Tensor | None = None,
        indices: Tensor | None = None,
        probs: Tensor | None = None,
        adain: bool = True,
    ) -> Tensor:
        """Code features [B, codebook_dim, 16, 16] from exactly one of ``logits`` (top-1 code
        per token), ``indices`` ([B, 256] int64) or ``probs`` ([B, 256, K], probability-weighted
        code vectors). ``adain`` gives them the per-channel mean/std of ``lq_feat``."""
        given = sum(t is not None for t in (logits, indices, probs))
        if given != 1:
            raise UsageError(f"lookup takes exactly one of logits, indices, probs; got {given}")
        codebook = self.quantize.embedding.weight.float()
        if logits is not None:
            indices = logits.argmax(dim=-1)
        if indices is not None:
            feat = codebook[indices.to(device=codebook.device, dtype=torch.long)]
        else:
            assert probs is not None  # exactly one of the three was given
            feat = torch.matmul(probs.to(device=codebook.device, dtype=torch.float32), codebook)
        b = feat.shape[0]
        feat = feat.reshape(b, TOKEN_SIDE, TOKEN_SIDE, -1).permute(0, 3, 1, 2).contiguous()
        if adain:
            feat = adaptive_instance_norm(feat, lq_feat.float())
        return feat.to(self.dtype).contiguous()

    def decode(self, code_feat: Tensor, skips: dict[int, Tensor], w: float = 0.5) -> Tensor:
        """Code features -> RGB [B,3,512,512], unclamped. The fidelity fusion runs only when
        ``w > 0`` and then needs ``skips`` for every connected resolution."""
        fuse = fuses(self.config, skips, w)
        return self.generate(code_feat.to(self.dtype), skips, w, fuse=fuse)

    def generate(
        self, code_feat: Tensor, skips: dict[int, Tensor], w: float | Tensor, *, fuse: bool
    ) -> Tensor:
        """:meth:`decode` without its checks and casts, the fusion on when ``fuse``; ``w`` may
        be a tensor, which an exported graph takes as an input."""
        x = code_feat
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            res = self.generator.fuse_after.get(i)
            if fuse and res in self.config.connect:
                x = self.fuse_convs_dict[str(res)](skips[res].to(x.dtype), x, w)
        return x

    def forward(
        self, x: Tensor, w: float = 0.5, adain: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``out, logits, lq_feat`` for RGB ``x`` [B,3,512,512] in [-1,1]."""
        enc = self.encode(x, skips=w > 0)
        logits = self.predict(enc.lq_feat)
        code_feat = self.lookup(enc.lq_feat, logits=logits, adain=adain)
        return self.decode(code_feat, enc.skips, w), logits, enc.lq_feat


# --- named variants -------------------------------------------------------------------------

#: Named configurations: the published network and a small one of the same topology.
VARIANTS: dict[str, CodeFormerConfig] = {
    "codeformer": CodeFormerConfig(),
    "codeformer_tiny": CodeFormerConfig(
        widths=(8, 8, 16, 16, 32, 32), codebook_size=64, codebook_dim=16, embed_dim=32,
        heads=8, layers=2, mlp_dim=64,
    ),
}


def codeformer(**overrides: Any) -> CodeFormer:
    """The published CodeFormer (94.1 M parameters, about 10 s per face on 2 CPU cores)."""
    return create_codeformer("codeformer", **overrides)


def codeformer_tiny(**overrides: Any) -> CodeFormer:
    """Same topology, 512x512 input and 16x16 tokens with narrow layers: for tests and demos."""
    return create_codeformer("codeformer_tiny", **overrides)


def create_codeformer(name: str = "codeformer", **overrides: Any) -> CodeFormer:
    """Build a named variant, optionally with some fields changed (weights are random)."""
    if name not in VARIANTS:
        raise UsageError(f"unknown CodeFormer variant {name!r}; known: {', '.join(VARIANTS)}")
    return CodeFormer.from_config(replace(VARIANTS[name], **overrides))


def variant_name(config: CodeFormerConfig) -> str | None:
    """The name of the variant whose configuration is ``config``, if any."""
    return next((name for name, cfg in VARIANTS.items() if cfg == config), None)
