"""CodeFormer parity with the published network, via the synthetic-weight goldens.

The published configuration is built with the synthetic weights, checked tensor by tensor
against ``synthetic_weights_check.json``, saved as a checkpoint (under ``params_ema``), read
back through the real loader and run on the golden input. One encoder pass serves all three
fidelity weights (the stage API), so the file runs one full forward plus two extra decodes.

Tolerances (golden README): ``top_idx`` identical; ``lq_feat``, ``logits`` and ``out`` within
1e-4 absolute (float32 noise between thread counts is ~1e-5).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vidrestore.errors import UsageError
from vidrestore.models import (
    CodeFormer,
    CodeFormerConfig,
    Encoded,
    load_codeformer_checkpoint,
)
from vidrestore.models.codeformer import VARIANTS
from vidrestore.testing.weights import synthetic_codeformer, synthetic_state_dict

ATOL = 1e-4
GOLDENS = {0.0: "golden_w0.pt", 0.5: "golden_w05.pt", 1.0: "golden_w1.pt"}


pytestmark = pytest.mark.usefixtures("two_torch_threads")


@pytest.fixture(scope="module")
def keys(golden_dir: Path) -> list:
    return json.loads((golden_dir / "codeformer_keys.json").read_text())


@pytest.fixture(scope="module")
def published_checkpoint(tmp_path_factory: pytest.TempPathFactory, golden_dir: Path) -> Path:
    """Synthetic published-size weights, verified against the check file, saved like the
    official release (state dict under ``params_ema``)."""
    with torch.device("meta"):
        skeleton = CodeFormer()
    sd = synthetic_state_dict(skeleton)
    checks = json.loads((golden_dir / "synthetic_weights_check.json").read_text())
    assert [c["name"] for c in checks] == list(sd)
    wrong = [
        c["name"]
        for c in checks
        if hashlib.sha256(sd[c["name"]].contiguous().numpy().tobytes()).hexdigest()
        != c["sha256_f32le"]
    ]
    assert wrong == [], f"{len(wrong)} synthetic tensors differ, first: {wrong[:3]}"
    path = tmp_path_factory.mktemp("ckpt") / "codeformer_synthetic.pth"
    torch.save({"params_ema": sd}, path)
    return path


@pytest.fixture(scope="module")
def golden_input(golden_dir: Path) -> torch.Tensor:
    return torch.load(golden_dir / "input.pt", weights_only=True)


@pytest.fixture(scope="module")
def goldens(golden_dir: Path) -> dict[float, dict]:
    return {w: torch.load(golden_dir / f, weights_only=True) for w, f in GOLDENS.items()}


@pytest.fixture(scope="module")
def exact_float32() -> Iterator[None]:
    """float32 as float32 on a GPU too (no TF32 convolutions or matmuls), as the goldens."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="module")
def model(published_checkpoint: Path, test_device: torch.device,
          exact_float32: None) -> CodeFormer:
    return load_codeformer_checkpoint(published_checkpoint, device=test_device)


@pytest.fixture(scope="module")
def stages(model: CodeFormer, golden_input: torch.Tensor) -> tuple[Encoded, torch.Tensor]:
    """The golden input's encoding and logits, back on the CPU."""
    with torch.inference_mode():
        enc = model.encode(golden_input.to(model.device))
        logits = model.predict(enc.lq_feat)
    return Encoded(enc.lq_feat.cpu(), {r: t.cpu() for r, t in enc.skips.items()}), logits.cpu()


def test_state_dict_names_shapes_and_order_match_contract(keys: list) -> None:
    with torch.device("meta"):
        sd = CodeFormer().state_dict()
    assert len(sd) == 515
    assert [[k, list(v.shape), "float32"] for k, v in sd.items()] == keys
    assert sum(v.numel() for v in sd.values()) == 94_112_707


def test_loaded_checkpoint_is_inference_ready(model: CodeFormer) -> None:
    assert model.config == CodeFormerConfig()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.dtype == torch.float32


def test_encoder_and_code_logits_match_golden(
    stages: tuple[Encoded, torch.Tensor], goldens: dict[float, dict]
) -> None:
    enc, logits = stages
    golden = goldens[0.5]
    assert logits.dtype == torch.float32
    assert logits.shape == (1, 256, 1024)
    assert enc.lq_feat.shape == (1, 256, 16, 16)
    assert sorted(enc.skips) == [32, 64, 128, 256]
    assert torch.equal(logits.argmax(-1), golden["top_idx"])
    torch.testing.assert_close(enc.lq_feat, golden["lq_feat"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logits, golden["logits"], rtol=0, atol=ATOL)
    for w in (0.0, 1.0):  # lq_feat, logits and codes do not depend on w
        assert torch.equal(goldens[w]["top_idx"], golden["top_idx"])


@pytest.mark.parametrize("w", sorted(GOLDENS))
def test_restored_image_matches_golden(
    w: float, model: CodeFormer, stages: tuple[Encoded, torch.Tensor], goldens: dict[float, dict]
) -> None:
    enc, logits = stages
    dev = model.device
    with torch.inference_mode():
        code_feat = model.lookup(enc.lq_feat.to(dev), logits=logits.to(dev), adain=True)
        skips = {r: t.to(dev) for r, t in enc.skips.items()} if w > 0 else {}
        out = model.decode(code_feat, skips, w).cpu()
    assert out.shape == (1, 3, 512, 512)
    torch.testing.assert_close(out, goldens[w]["out"], rtol=0, atol=ATOL)


def test_fidelity_weight_changes_the_image(goldens: dict[float, dict]) -> None:
    """Guards the goldens themselves: w=0 and w=1 must differ, or the w tests prove nothing."""
    assert (goldens[0.0]["out"] - goldens[1.0]["out"]).abs().mean() > 0.05


# --- stage API on the tiny variant (same code paths, fast) ----------------------------------


@pytest.fixture(scope="module")
def tiny() -> CodeFormer:
    return synthetic_codeformer(VARIANTS["codeformer_tiny"])


def test_pattern_recipe_reproduces_golden_input(golden_input: torch.Tensor) -> None:
    torch.testing.assert_close(smooth_pattern(), golden_input, rtol=0, atol=1e-6)


def smooth_pattern() -> torch.Tensor:
    """The smooth RGB pattern of the golden input recipe, [1, 3, 512, 512] in [-1, 1]."""
    u = (torch.arange(512, dtype=torch.float64) + 0.5) / 512 * 2 - 1
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    blob = torch.exp(-(xx**2 + yy**2) / 0.35)
    pi = torch.pi
    c0 = 0.6 * blob + 0.3 * torch.sin(5 * pi * xx) * torch.cos(3 * pi * yy) - 0.2
    c1 = 0.5 * blob + 0.3 * torch.cos(4 * pi * (xx + yy)) + 0.1 * yy - 0.1
    c2 = 0.4 * blob + 0.3 * torch.sin(7 * pi * xx * yy) - 0.3 * xx
    return (1.4 * torch.stack([c0, c1, c2])).clamp(-1, 1).float()[None]


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """Two different inputs: the pattern mirrored, and darkened."""
    x = smooth_pattern()
    return torch.cat([x.flip(-1), (x - 0.5).clamp(-1, 1)])


@pytest.mark.parametrize("w", [0.0, 0.7])
def test_forward_is_the_stages_in_sequence(tiny: CodeFormer, faces: torch.Tensor, w: float) -> None:
    with torch.inference_mode():
        out, logits, lq_feat = tiny(faces, w=w, adain=True)
        enc = tiny.encode(faces)
        lg = tiny.predict(enc.lq_feat)
        staged = tiny.decode(tiny.lookup(enc.lq_feat, logits=lg), enc.skips, w)
    assert torch.equal(lq_feat, enc.lq_feat)
    assert torch.equal(logits, lg)
    assert torch.equal(out, staged)
    assert out.shape == (2, 3, 512, 512)


def test_batch_equals_one_face_at_a_time(tiny: CodeFormer, faces: torch.Tensor) -> None:
    with torch.inference_mode():
        batched = tiny(faces, w=0.5)[0]
        single = torch.cat([tiny(f[None], w=0.5)[0] for f in faces])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


def test_lookup_by_indices_probs_and_logits_agree(tiny: CodeFormer, faces: torch.Tensor) -> None:
    with torch.inference_mode():
        enc = tiny.encode(faces, skips=False)
        logits = tiny.predict(enc.lq_feat)
        idx = logits.argmax(-1)
        by_logits = tiny.lookup(enc.lq_feat, logits=logits)
        by_idx = tiny.lookup(enc.lq_feat, indices=idx)
        one_hot = torch.nn.functional.one_hot(idx, tiny.config.codebook_size).float()
        by_probs = tiny.lookup(enc.lq_feat, probs=one_hot)
        soft = tiny.lookup(enc.lq_feat, probs=logits.softmax(-1), adain=False)
        plain = tiny.lookup(enc.lq_feat, indices=idx, adain=False)
    assert enc.skips == {}
    assert torch.equal(by_logits, by_idx)
    torch.testing.assert_close(by_probs, by_idx, rtol=0, atol=1e-6)
    assert by_idx.shape == (2, tiny.config.codebook_dim, 16, 16)
    # adain, in float64 from the spec: give the code features lq_feat's per-channel mean and
    # std, std = sqrt(unbiased variance over the 16x16 grid + 1e-5)
    code, ref = plain.double().flatten(2), enc.lq_feat.double().flatten(2)

    def std(t: torch.Tensor) -> torch.Tensor:
        return (t.var(2, keepdim=True) + 1e-5).sqrt()

    mean = ref.mean(2, keepdim=True)
    expected = (code - code.mean(2, keepdim=True)) / std(code) * std(ref) + mean
    torch.testing.assert_close(by_idx.double().flatten(2), expected, rtol=0, atol=1e-5)
    # without adain the rows are the codebook's; soft assignment blends them
    codebook = tiny.quantize.embedding.weight
    assert torch.equal(plain[1, :, 3, 5], codebook[idx[1, 3 * 16 + 5]])
    assert not torch.allclose(soft, plain)


def test_encoded_select_and_cat_round_trip(tiny: CodeFormer, faces: torch.Tensor) -> None:
    with torch.inference_mode():
        enc = tiny.encode(faces)
        again = Encoded.cat([enc.select(1), enc.select(slice(0, 1)), enc.select([1])])
        picked = enc.select(torch.tensor([1, 0]))
    assert len(again) == 3
    assert torch.equal(again.lq_feat, enc.lq_feat[[1, 0, 1]])
    for r in enc.skips:
        assert torch.equal(again.skips[r], enc.skips[r][[1, 0, 1]])
        assert torch.equal(picked.skips[r], enc.skips[r][[1, 0]])


def test_stage_arguments_are_checked(tiny: CodeFormer, faces: torch.Tensor) -> None:
    with torch.inference_mode():
        enc = tiny.encode(faces[:1])
        logits = tiny.predict(enc.lq_feat)
        with pytest.raises(UsageError, match="exactly one"):
            tiny.lookup(enc.lq_feat, logits=logits, indices=logits.argmax(-1))
        with pytest.raises(UsageError, match="exactly one"):
            tiny.lookup(enc.lq_feat)
        code = tiny.lookup(enc.lq_feat, logits=logits)
        with pytest.raises(UsageError, match=r"needs encoder skips at \[32, 64, 128, 256\]"):
            tiny.decode(code, {}, 0.5)
        with pytest.raises(UsageError, match="outside"):
            tiny.decode(code, enc.skips, 1.5)
        with pytest.raises(UsageError, match=r"\[B, 3, 512, 512\]"):
            tiny.encode(faces[:, :, :256, :256])
        # w = 0 runs without skips and equals the full forward at w = 0
        assert torch.equal(tiny.decode(code, {}, 0.0), tiny(faces[:1], w=0.0)[0])
