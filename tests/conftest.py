"""Shared fixtures: where the shared test assets live, and skips when they are absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDRESTORE_SHARED", REPO.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test assets not found at {path} (set VIDRESTORE_SHARED)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ``shared/`` folder beside the checkout."""
    return _need(SHARED)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return _need(SHARED / "golden")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return _need(SHARED / "media")


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    return _need(SHARED / "weights-mirror")


@pytest.fixture(scope="session")
def yunet_path(mirror_dir: Path) -> Path:
    return _need(mirror_dir / "face_detection_yunet_2026may.onnx")


@pytest.fixture(scope="module")
def detector(yunet_path: Path):
    """The real YuNet detector with the default face options."""
    from vidrestore.faces import FaceOptions, create_detector

    return create_detector("yunet", FaceOptions(), model_path=yunet_path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CodeFormer variant with synthetic weights, as a checkpoint file."""
    from synth import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="session", autouse=True)
def _fresh_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The whole session runs as on a new machine, module and session fixtures included: an empty
    home (no ``~/.cache``, no user config), an empty weights cache, no mirror, and model files
    never fetched from the network (``VIDRESTORE_OFFLINE``). Tests that need the shared mirror
    ask for it (``mirror_in_env``, or a store of their own).

    ``--runtime auto`` means PyTorch here (``VIDRESTORE_RUNTIME=torch``): the suite pins
    PyTorch's results bit for bit, and each process would otherwise export the graphs of a CPU
    runtime anew (seconds per command-line run). ``test_runtime.py`` covers the runtimes and
    what ``auto`` picks without this setting."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "VIDRESTORE_MIRROR"):
            mp.delenv(name, raising=False)
        mp.setenv("VIDRESTORE_HOME", str(home / "vidrestore-weights"))
        mp.setenv("VIDRESTORE_OFFLINE", "1")
        mp.setenv("VIDRESTORE_RUNTIME", "torch")
        yield


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own empty weights cache unless it sets one itself."""
    monkeypatch.setenv("VIDRESTORE_HOME", str(tmp_path_factory.mktemp("vrhome")))


@pytest.fixture(scope="module")
def mirror_in_env(mirror_dir: Path) -> Iterator[Path]:
    """``VIDRESTORE_MIRROR`` at the shared mirror for a whole module, its module fixtures too."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIDRESTORE_MIRROR", str(mirror_dir))
        yield mirror_dir


@pytest.fixture(scope="module")
def two_torch_threads() -> Iterator[None]:
    """Torch on 2 threads for a module: the goldens were made so; other counts differ by ~1e-5."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


TEST_DEVICE_ENV = "VIDRESTORE_TEST_DEVICE"


@pytest.fixture(scope="session")
def test_device():
    """The device the network tests run on: ``$VIDRESTORE_TEST_DEVICE`` (default ``cpu``), so
    the parity, precision, compile and engine tests run on a GPU unchanged
    (``VIDRESTORE_TEST_DEVICE=cuda make test``); skipped when that device is not there."""
    import torch

    name = os.environ.get(TEST_DEVICE_ENV, "cpu").strip() or "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"${TEST_DEVICE_ENV}={name}, but torch sees no CUDA device")
    if device.type == "mps" and not torch.backends.mps.is_available():
        pytest.skip(f"${TEST_DEVICE_ENV}={name}, but torch sees no MPS device")
    return device
