"""Checkpoint loading: wrappers, configuration read from shapes, and precise refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vidrestore.errors import CheckpointError, UsageError, WeightsError
from vidrestore.models import (
    CodeFormer,
    CodeFormerConfig,
    load_codeformer_checkpoint,
    load_restorer,
    save_codeformer_checkpoint,
)
from vidrestore.models.codeformer import VARIANTS
from vidrestore.models.loader import canonicalize, infer_config
from vidrestore.testing.weights import synthetic_codeformer

TINY = VARIANTS["codeformer_tiny"]

#: Configurations a checkpoint may have (the published one, the tiny one, and fine-tuned or
#: pruned relatives), all of which must be recognised from tensor shapes alone.
CONFIGS = {
    "published": CodeFormerConfig(),
    "tiny": TINY,
    "no-fusion": replace(TINY, connect=()),
    "two-fusions": replace(TINY, connect=(64, 256)),
    "wider-deeper": replace(TINY, widths=(32, 32, 64, 64, 64, 96), layers=3, mlp_dim=192),
    "bigger-codebook": replace(TINY, codebook_size=100, codebook_dim=24, embed_dim=48),
    "three-blocks-two-attn": replace(TINY, blocks_per_level=3, attn_resolutions=(16, 32)),
}


@pytest.fixture(scope="module")
def tiny_model() -> CodeFormer:
    return synthetic_codeformer(TINY)


@pytest.fixture(scope="module")
def tiny_sd(tiny_model: CodeFormer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in tiny_model.state_dict().items()}


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    low = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(512, 512), mode="bilinear")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_configuration_is_read_from_tensor_shapes(name: str) -> None:
    config = CONFIGS[name]
    with torch.device("meta"):
        sd = CodeFormer.from_config(config).state_dict()
    assert infer_config(sd) == config


@pytest.mark.parametrize("layout", ["bare", "params_ema", "params", "module_prefix"])
def test_wrapped_checkpoints_load_strictly(layout: str, tiny_sd: dict, tmp_path: Path) -> None:
    sd = {"module." + k: v for k, v in tiny_sd.items()} if layout == "module_prefix" else tiny_sd
    content = {
        "bare": sd,
        "module_prefix": sd,
        "params_ema": {"params_ema": sd, "params": {}},  # published layout, ema preferred
        "params": {"params": sd, "iter": torch.tensor(5)},
    }[layout]
    path = tmp_path / "ckpt.pth"
    torch.save(content, path)
    model = load_codeformer_checkpoint(path)
    assert model.config == TINY
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, tiny_sd[k]), k


def test_round_trip_descriptor(tiny_model: CodeFormer, tmp_path: Path, face: torch.Tensor) -> None:
    path = save_codeformer_checkpoint(tiny_model, tmp_path / "tiny.pth")
    assert list(torch.load(path, weights_only=True)) == ["params_ema"]
    desc = load_restorer(path, device="cpu")
    assert desc.variant == "codeformer_tiny"
    assert desc.config == TINY
    assert desc.path == path
    assert (desc.input_size, desc.input_channels, desc.input_range) == (512, 3, (-1.0, 1.0))
    assert desc.fidelity_range == (0.0, 1.0)
    assert desc.dtype == torch.float32 and desc.device == torch.device("cpu")
    assert torch.float32 in desc.supported_dtypes and torch.bfloat16 in desc.supported_dtypes
    with torch.inference_mode():
        out, logits, lq_feat = desc.model(face, w=0.5)
        ref = tiny_model(face, w=0.5)
    assert torch.equal(out, ref[0]) and torch.equal(logits, ref[1]) and torch.equal(lq_feat, ref[2])


def test_custom_width_checkpoint_loads(tmp_path: Path) -> None:
    config = CONFIGS["three-blocks-two-attn"]
    source = synthetic_codeformer(config)
    desc = load_restorer(save_codeformer_checkpoint(source, tmp_path / "custom.pth"))
    assert desc.variant is None
    assert desc.config == config


def test_half_precision_load_keeps_float32_islands(tiny_model: CodeFormer, tmp_path: Path) -> None:
    path = save_codeformer_checkpoint(tiny_model, tmp_path / "tiny.pth")
    model = load_codeformer_checkpoint(path, dtype="bf16")
    assert model.dtype == torch.bfloat16
    assert model.encoder.blocks[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model.quantize.embedding.weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.idx_pred_layer.parameters())
    assert model.ft_layers[0].linear1.weight.dtype == torch.bfloat16
    nhwc = torch.channels_last
    assert not load_codeformer_checkpoint(path).generator.blocks[0].weight.is_contiguous(
        memory_format=nhwc)
    assert load_codeformer_checkpoint(path, channels_last=True).generator.blocks[0].weight \
        .is_contiguous(memory_format=nhwc)


def test_wrong_keys_are_listed_by_group(tiny_sd: dict, tmp_path: Path) -> None:
    sd = dict(tiny_sd)
    del sd["generator.blocks.5.q.bias"]
    del sd["ft_layers.1.norm2.weight"]
    sd["encoder.extra.weight"] = torch.zeros(3)
    torch.save({"params_ema": sd}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        load_codeformer_checkpoint(tmp_path / "bad.pth")
    msg = str(info.value)
    assert "\n" not in msg
    assert "bad.pth" in msg and "codeformer_tiny" in msg
    assert "2 missing (generator.blocks.5.q.bias, ft_layers.1.norm2.weight)" in msg
    assert "1 unexpected (encoder.extra.weight)" in msg


def test_wrong_shapes_are_listed(tiny_sd: dict, tmp_path: Path) -> None:
    sd = dict(tiny_sd)
    sd["generator.blocks.0.bias"] = torch.zeros(5)
    sd["fuse_convs_dict.64.scale.0.weight"] = torch.zeros(16, 16, 1, 1)
    torch.save(sd, tmp_path / "shapes.pth")
    with pytest.raises(CheckpointError, match=r"2 wrong shape \(generator.blocks.0.bias \[5\] "
                       r"\(expected \[32\]\), fuse_convs_dict.64.scale.0.weight \[16, 16, 1, 1\] "
                       r"\(expected \[16, 16, 3, 3\]\)\)"):
        load_codeformer_checkpoint(tmp_path / "shapes.pth")


def test_foreign_state_dict_is_reported_against_the_published_layout(tmp_path: Path) -> None:
    torch.save({"params_ema": {"conv.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError) as info:
        load_codeformer_checkpoint(tmp_path / "other.pth")
    msg = str(info.value)
    assert "(codeformer)" in msg
    assert "515 missing (position_emb, encoder.blocks.0.weight, encoder.blocks.0.bias, ... " \
           "512 more)" in msg
    assert "1 unexpected (conv.weight)" in msg


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([torch.zeros(2), torch.ones(2)], "holds a list, expected a mapping"),
        (torch.zeros(3), "holds a Tensor, expected a mapping"),
        ({"params_ema": {"a": torch.zeros(1)}, "epoch": 3}, r"1 unexpected \(a\)"),
        ({"weights": torch.zeros(1), "note": "hello", "n": 3}, "2 entries are not tensors"),
    ],
)
def test_non_state_dict_content_is_refused(content: object, message: str, tmp_path: Path) -> None:
    torch.save(content, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=message):
        load_codeformer_checkpoint(tmp_path / "odd.pth")


class Payload:
    """A class the weights-only unpickler must refuse to rebuild."""

    def __init__(self) -> None:
        self.x = 1


def test_pickled_objects_are_not_executed(tmp_path: Path) -> None:
    torch.save({"params_ema": Payload()}, tmp_path / "pickle.pth")
    with pytest.raises(CheckpointError, match="weights-only loader: it holds the Python object "
                       r"test_codeformer_loader.Payload, not only tensors"):
        load_codeformer_checkpoint(tmp_path / "pickle.pth")


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"junk\.pth: not a readable PyTorch checkpoint"):
        load_codeformer_checkpoint(tmp_path / "junk.pth")
    good = tmp_path / "good.pth"
    torch.save({"a": torch.zeros(1000)}, good)
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"cut.pth: not a readable PyTorch checkpoint \("
                       "PytorchStreamReader failed"):
        load_codeformer_checkpoint(tmp_path / "cut.pth")
    with pytest.raises(WeightsError, match=r"nowhere\.pth: checkpoint file not found"):
        load_codeformer_checkpoint(tmp_path / "nowhere.pth")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"unknown checkpoint extension '\.onnx'"):
        load_codeformer_checkpoint(tmp_path / "model.onnx")
    with pytest.raises(UsageError, match="dtype 'int8' is not one of"):
        load_codeformer_checkpoint(tmp_path / "junk.pth", dtype="int8")


def test_canonicalize_strips_prefix_only_when_common() -> None:
    t = torch.zeros(1)
    assert list(canonicalize({"module.a": t, "module.b": t})) == ["a", "b"]
    assert list(canonicalize({"module.a": t, "b": t})) == ["module.a", "b"]


def test_safetensors_checkpoint_loads(tiny_sd: dict, tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.torch")
    path = tmp_path / "tiny.safetensors"
    st.save_file(tiny_sd, str(path))
    model = load_codeformer_checkpoint(path)
    assert model.config == TINY
    for k, v in model.state_dict().items():
        assert torch.equal(v, tiny_sd[k]), k
