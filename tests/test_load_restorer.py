"""``load_restorer``: the device/dtype policy, the descriptor's facts, its input contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from synth import tiny_checkpoint

from vidrestore.errors import CheckpointError, UsageError
from vidrestore.models import (
    RestorerDescriptor,
    auto_dtype,
    load_codeformer,
    load_restorer,
    resolve_device,
    resolve_dtype,
)
from vidrestore.restore.engine import FaceEngine, FaceItem
from vidrestore.restore.options import RestoreOptions
from vidrestore.weights import WeightSpec, WeightStore

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def _crops(dtype: type, n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    top = 256 if dtype is np.uint8 else 65536
    return [rng.integers(0, top, (512, 512, 3)).astype(dtype) for _ in range(n)]


def _old_to_network(crops: list[np.ndarray], device: torch.device, dtype: torch.dtype
                    ) -> torch.Tensor:
    """The engine's conversion before it moved behind the descriptor, as it was."""
    scale = 255.0 if crops[0].dtype == np.uint8 else 65535.0
    x = torch.from_numpy(np.stack(crops)).to(device)
    x = x.permute(0, 3, 1, 2).to(torch.float32).div_(scale / 2.0).sub_(1.0)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    return x.to(dtype).contiguous(memory_format=fmt)


def _old_from_network(out: torch.Tensor) -> np.ndarray:
    img = out.float().clamp_(-1.0, 1.0).add_(1.0).mul_(0.5)
    return img.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def test_auto_policy_on_the_cpu(no_gpu: None, weights: Path) -> None:
    assert resolve_device("auto") == CPU
    assert auto_dtype(CPU) == torch.float32
    assert resolve_dtype("auto", CPU) == torch.float32
    assert resolve_dtype("bf16", CPU) == torch.bfloat16  # explicit names as given
    desc = load_restorer(weights)
    assert desc.device == CPU and desc.dtype == torch.float32
    with pytest.raises(UsageError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="not a device"):
        resolve_device("gpu")


def test_auto_dtype_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert auto_dtype(torch.device("mps")) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert auto_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert auto_dtype(torch.device("cuda")) == torch.float16


def test_own_file_facts(weights: Path) -> None:
    desc = load_restorer(weights, device="cpu", dtype="bfloat16")
    assert isinstance(desc, RestorerDescriptor)
    assert desc.variant == "codeformer_tiny" and desc.path == weights
    assert desc.source == str(weights) and desc.license is None
    assert desc.dtype == torch.bfloat16 and desc.model.dtype == torch.bfloat16
    assert set(desc.supported_dtypes) >= {torch.float32, torch.bfloat16, torch.float16}
    assert not desc.model.training
    assert not any(p.requires_grad for p in desc.model.parameters())


def test_published_file_facts_come_from_the_manifest(weights: Path, tmp_path: Path) -> None:
    spec = WeightSpec(name="codeformer", file="codeformer.pth", size=None, sha256=None,
                      license="Some Licence 1.0", origin="somewhere, release 1", purpose="",
                      urls=("http://127.0.0.1:9/codeformer.pth",))
    (tmp_path / "codeformer.pth").write_bytes(weights.read_bytes())
    store = WeightStore(tmp_path, manifest={"codeformer": spec}, offline=True, progress=False)
    desc = load_restorer(store=store, device="cpu")
    assert (desc.license, desc.source) == ("Some Licence 1.0", "somewhere, release 1")
    assert desc.path == tmp_path / "codeformer.pth"
    with pytest.raises(UsageError, match="give a checkpoint path or a WeightStore"):
        load_restorer(device="cpu")


@pytest.mark.parametrize("pixels", [np.uint8, np.uint16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prepare_and_finish_equal_the_engine_conversion(weights: Path, pixels: type,
                                                        dtype: torch.dtype) -> None:
    desc = load_restorer(weights, device="cpu", dtype=dtype)
    crops = _crops(pixels)
    x = desc.prepare(crops)
    ref = _old_to_network(crops, CPU, dtype)
    assert x.dtype == dtype and x.shape == (2, 3, 512, 512)
    assert torch.equal(x, ref) and x.stride() == ref.stride()
    out = torch.linspace(-1.5, 1.5, 2 * 3 * 512 * 512).reshape(2, 3, 512, 512).to(dtype)
    img = desc.finish(out.clone())
    assert img.dtype == np.float32 and img.shape == (2, 512, 512, 3)
    assert np.array_equal(img, _old_from_network(out.clone()))


def test_engine_gives_the_same_faces_from_a_descriptor_or_a_module(weights: Path) -> None:
    def run(model: object) -> np.ndarray:
        eng = FaceEngine(model, RestoreOptions(temporal="off"), batch_size=2)  # type: ignore[arg-type]
        item = FaceItem(0, 1, _crops(np.uint8, 1)[0], np.eye(2, 3), False)
        eng.submit(0, [item])
        eng.drain()
        assert item.restored is not None
        return item.restored

    assert np.array_equal(run(load_restorer(weights, device="cpu")), run(load_codeformer(weights)))


def test_a_bad_file_is_one_checkpoint_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError) as err:
        load_restorer(bad, device="cpu")
    assert "bad.pth" in str(err.value) and "\n" not in str(err.value)


# -- --compile ------------------------------------------------------------------------------
def test_compile_compiles_the_stages_of_pytorchs_network(weights: Path) -> None:
    from vidrestore.models.compiled import is_compiled

    plain = load_restorer(weights, device="cpu", runtime="torch")
    desc = load_restorer(weights, device="cpu", runtime="auto", compile=True)
    assert desc.runtime == "torch" and is_compiled(desc.module) and not is_compiled(plain.module)
    # compiled in place: the state dict keeps its names and values
    assert list(desc.module.state_dict()) == list(plain.module.state_dict())
    with pytest.raises(UsageError, match="--compile compiles PyTorch's network; --runtime "
                                         "openvino runs exported graphs instead"):
        load_restorer(weights, device="cpu", runtime="openvino", compile=True)


@pytest.mark.slow
def test_compiled_stages_restore_as_eager(weights: Path, test_device: torch.device) -> None:
    import os

    if test_device.type == "cpu" and not os.environ.get("VIDRESTORE_SLOW_TESTS"):
        pytest.skip("compiling the network takes about a minute on a CPU; "
                    "set VIDRESTORE_SLOW_TESTS=1 to run it here (it runs on a GPU device)")
    crops = _crops(np.uint8, 3)
    out = {}
    for compiled in (False, True):
        desc = load_restorer(weights, device=test_device, dtype="float32", runtime="torch",
                             compile=compiled)
        engine = FaceEngine(desc, RestoreOptions(temporal="window", window=1),
                            device=desc.device, dtype=desc.dtype, batch_size=2)
        items = [FaceItem(0, k + 1, c, np.array([[1.0, 0, 0], [0, 1.0, 0]]), False)
                 for k, c in enumerate(crops)]
        engine.submit(0, items)
        engine.drain()
        out[compiled] = (np.stack([it.restored for it in items]),
                        np.stack([it.indices for it in items]))
    assert np.array_equal(out[True][1], out[False][1])  # the same codes
    assert np.abs(out[True][0] - out[False][0]).max() < 1e-4
