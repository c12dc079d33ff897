"""The CPU runtimes (OpenVINO, ONNX Runtime) against PyTorch and the goldens, their graph cache
and what ``--runtime`` picks.

Tolerances: float32 within 1e-4 absolute of the goldens (``lq_feat``, ``logits``, ``out``) and
of PyTorch through the engine, with identical codes; bfloat16 (OpenVINO, CPUs with native
bfloat16 only) with every code equal to float32's (the encoder and the prediction stay float32)
and the output within 0.1 max, 0.01 mean of the golden [measured 0.040, 0.0052].

The published-size graphs are exported once for the module (about half a minute), into one
folder both runtimes read: a graph file does not depend on the runtime or the precision.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from synth import texture_crop as _crop
from synth import tiny_checkpoint

from vidrestore.errors import UsageError
from vidrestore.models import CodeFormer, load_restorer, precision
from vidrestore.models.codeformer import VARIANTS
from vidrestore.models.runtime import (
    CPU_RUNTIMES,
    RUNTIME_ENV,
    RUNTIMES,
    GraphCache,
    RuntimeNetwork,
    preferred_runtime,
    resolve_runtime,
)
from vidrestore.models.runtime.graphs import ChannelStatsGroupNorm, export_graph, for_export
from vidrestore.restore.engine import FaceEngine, FaceItem
from vidrestore.restore.options import RUNTIMES as OPTION_RUNTIMES
from vidrestore.restore.options import RestoreOptions
from vidrestore.runtimes import installed
from vidrestore.testing.weights import synthetic_codeformer
from vidrestore.weights import WeightStore

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
ATOL = 1e-4
AVAILABLE = [r for r in CPU_RUNTIMES if installed(r)]  # in the order auto tries them
NATIVE_BF16 = precision.cpu_has_fast_bfloat16()

pytestmark = [
    pytest.mark.usefixtures("two_torch_threads"),
    pytest.mark.skipif(not AVAILABLE, reason="no CPU runtime installed "
                       "(pip install 'vidrestore[cpu]' or 'vidrestore[onnxruntime]')"),
]


@pytest.fixture
def auto_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` as on a user's machine: the suite's VIDRESTORE_RUNTIME=torch taken away."""
    monkeypatch.delenv(RUNTIME_ENV, raising=False)


# -- the published network against the goldens -----------------------------------------------
@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[CodeFormer, GraphCache]:
    """The published-size network with the goldens' weights, and a graph folder that holds its
    encode, predict and decode graphs once the first runtime has loaded them."""
    return synthetic_codeformer(), GraphCache(tmp_path_factory.mktemp("graphs"))


@pytest.fixture(scope="module")
def golden_input(golden_dir: Path) -> torch.Tensor:
    return torch.load(golden_dir / "input.pt", weights_only=True)


@pytest.fixture(scope="module")
def golden(golden_dir: Path) -> dict:
    return torch.load(golden_dir / "golden_w05.pt", weights_only=True)


@pytest.mark.parametrize("runtime", AVAILABLE)
def test_published_network_matches_the_goldens_in_float32(
        runtime: str, published: tuple[CodeFormer, GraphCache], golden_input: torch.Tensor,
        golden: dict) -> None:
    module, cache = published
    net = RuntimeNetwork(module, runtime=runtime, cache=cache)
    with torch.inference_mode():
        enc = net.encode(golden_input)
        logits = net.predict(enc.lq_feat)
        out = net.decode(net.lookup(enc.lq_feat, logits=logits), enc.skips, 0.5)
    assert enc.lq_feat.dtype == logits.dtype == out.dtype == torch.float32
    assert sorted(enc.skips) == [32, 64, 128, 256]
    assert torch.equal(logits.argmax(-1), golden["top_idx"])
    torch.testing.assert_close(enc.lq_feat, golden["lq_feat"], rtol=0, atol=ATOL)
    torch.testing.assert_close(logits, golden["logits"], rtol=0, atol=ATOL)
    torch.testing.assert_close(out, golden["out"], rtol=0, atol=ATOL)


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16 kernels "
                    "(AVX512-BF16 or AMX): the runtimes offer bfloat16 only where it has")
@pytest.mark.skipif("openvino" not in AVAILABLE, reason="bfloat16 runs in OpenVINO, "
                    "which is not installed")
def test_bfloat16_keeps_every_float32_code(published: tuple[CodeFormer, GraphCache],
                                           golden_input: torch.Tensor, golden: dict) -> None:
    """Only the decoder runs in bfloat16: the codes are float32's (an encoder in bfloat16
    changes 5 of the 256 golden codes)."""
    module, cache = published
    bf16 = RuntimeNetwork(module, runtime="openvino", precision=torch.bfloat16, cache=cache)
    with torch.inference_mode():
        enc = bf16.encode(golden_input)
        logits = bf16.predict(enc.lq_feat)
        out = bf16.decode(bf16.lookup(enc.lq_feat, logits=logits), enc.skips, 0.5)
    assert torch.equal(logits.argmax(-1), golden["top_idx"])
    err = (out - golden["out"]).abs()
    assert err.max() < 0.1 and err.mean() < 0.01, (err.max(), err.mean())


# -- the tiny network through the engine -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the module's tiny graphs (exported once, reused after)."""
    return tmp_path_factory.mktemp("tiny-home")


def _engine_run(model, temporal: str) -> list[np.ndarray]:
    """Two tracks over two frames, track 2 at fidelity 0 (the plain decoder graph)."""
    options = RestoreOptions(temporal=temporal, window=1, fidelity=0.5)
    eng = FaceEngine(model, options, batch_size=2)
    items = []
    for f in range(2):
        frame = [FaceItem(f, 1, _crop(f), np.eye(2, 3), False),
                 FaceItem(f, 2, _crop(50), np.eye(2, 3), False, fidelity=0.0)]
        eng.submit(f, frame)
        items += frame
    eng.drain()
    return [it.restored for it in items]


@pytest.fixture(scope="module")
def engine_runs(tiny: Path, tiny_home: Path):
    """The engine's faces per (runtime, temporal mode), each network loaded once."""
    nets: dict[str, object] = {}
    runs: dict[tuple[str, str], list[np.ndarray]] = {}

    def run(runtime: str, temporal: str) -> list[np.ndarray]:
        if runtime not in nets:
            nets[runtime] = load_restorer(tiny, device="cpu", dtype="float32",
                                          runtime=runtime, store=WeightStore(tiny_home))
        if (runtime, temporal) not in runs:
            runs[runtime, temporal] = _engine_run(nets[runtime], temporal)
        return runs[runtime, temporal]

    return run


@pytest.mark.parametrize("runtime", AVAILABLE)
@pytest.mark.parametrize("temporal", ["window", "recurrent"])
def test_engine_output_equals_pytorch(runtime: str, temporal: str, engine_runs) -> None:
    want, got = engine_runs("torch", temporal), engine_runs(runtime, temporal)
    assert len(got) == 4 and all(g is not None for g in got)
    for a, b in zip(want, got, strict=True):
        assert np.abs(a - b).max() <= ATOL


@pytest.mark.skipif("openvino" not in AVAILABLE, reason="needs OpenVINO")
def test_openvino_gives_a_face_the_same_values_in_any_batch(tiny: Path, tiny_home: Path) -> None:
    desc = load_restorer(tiny, device="cpu", dtype="float32", runtime="openvino",
                         store=WeightStore(tiny_home))
    net = desc.model

    def restored(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            enc = net.encode(x)
            code = net.lookup(enc.lq_feat, logits=net.predict(enc.lq_feat))
            return net.decode(code, enc.skips, 0.5)

    x = desc.prepare([_crop(k) for k in (4, 5, 6)])
    together = restored(x)
    assert together.shape == (3, 3, 512, 512)
    for k in range(3):
        assert torch.equal(restored(x[k : k + 1]), together[k : k + 1])


@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_a_short_batch_is_padded_only_where_the_batch_changes_results(
        runtime: str, tiny: Path, tiny_home: Path) -> None:
    """With ``--batch-size 3`` a lone face goes through the network as a batch of 3 in PyTorch
    (its kernels may depend on the batch), as itself in OpenVINO (face by face)."""
    if runtime != "torch" and runtime not in AVAILABLE:
        pytest.skip(f"{runtime} is not installed")
    from vidrestore.restore.engine import FaceEngine, FaceItem

    desc = load_restorer(tiny, device="cpu", dtype="float32", runtime=runtime,
                         store=WeightStore(tiny_home))
    assert desc.per_item == (runtime == "openvino")
    seen: list[int] = []
    net = desc.model
    encode = net.encode

    def counted(x: torch.Tensor) -> object:
        seen.append(int(x.shape[0]))
        return encode(x)

    net.encode = counted  # type: ignore[method-assign]
    try:
        engine = FaceEngine(desc, RestoreOptions(temporal="off"), batch_size=3)
        item = FaceItem(0, 1, _crop(2), np.eye(2, 3), True)
        engine.submit(0, [item])
        engine.drain()
    finally:
        del net.encode
    assert seen == [1 if runtime == "openvino" else 3]
    assert item.restored is not None and item.restored.shape == (512, 512, 3)


def test_runtime_descriptor_facts(tiny: Path, tiny_home: Path) -> None:
    runtime = AVAILABLE[0]
    desc = load_restorer(tiny, device="cpu", dtype="float32", runtime=runtime,
                         store=WeightStore(tiny_home))
    assert desc.variant == "codeformer_tiny" and desc.device == CPU
    assert desc.dtype == torch.float32 and desc.model.dtype == torch.float32
    assert isinstance(desc.module, CodeFormer) and desc.module is desc.model.module
    assert torch.float32 in desc.supported_dtypes
    x = desc.prepare([_crop(1)])
    assert x.dtype == torch.float32 and x.shape == (1, 3, 512, 512)
    with pytest.raises(UsageError, match=r"expected \[B, 3, 512, 512\]"):
        desc.model.encode(torch.zeros(1, 3, 256, 256))
    with pytest.raises(UsageError, match="outside"):
        desc.model.decode(torch.zeros(1, 16, 16, 16), {}, 1.5)
    with pytest.raises(UsageError, match="needs encoder skips"):
        desc.model.decode(torch.zeros(1, 16, 16, 16), {}, 0.5)
    # the same weights in memory make the same graphs
    net = RuntimeNetwork(synthetic_codeformer(VARIANTS["codeformer_tiny"]), runtime=runtime,
                         cache=GraphCache(tiny_home / "runtime"))
    assert net.key == desc.model.key


@pytest.mark.skipif(not NATIVE_BF16 or "openvino" not in AVAILABLE,
                    reason="bfloat16 needs OpenVINO and native bfloat16 kernels")
def test_bfloat16_descriptor_feeds_float32(tiny: Path, tiny_home: Path) -> None:
    desc = load_restorer(tiny, device="cpu", dtype="bfloat16", runtime="openvino",
                         store=WeightStore(tiny_home))
    assert desc.dtype == torch.bfloat16 and desc.model.dtype == torch.float32
    assert desc.prepare([_crop(2)]).dtype == torch.float32  # the encoder runs float32
    assert torch.bfloat16 in desc.supported_dtypes


# -- the graphs -----------------------------------------------------------------------------
@pytest.mark.parametrize(("channels", "groups", "affine"),
                         [(64, 32, True), (96, 32, True), (12, 4, False), (8, 1, True)])
def test_the_exported_group_norm_equals_pytorchs(channels: int, groups: int,
                                                 affine: bool) -> None:
    norm = torch.nn.GroupNorm(groups, channels, eps=1e-6, affine=affine)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, channels, 17, 9) * 4 + 2  # a mean far from 0, as activations have
    with torch.no_grad():
        assert (ChannelStatsGroupNorm(norm)(x) - norm(x)).abs().max() <= 1e-5


def test_graphs_have_no_reshaped_group_norm_and_leave_the_network_alone() -> None:
    import onnx

    net = CodeFormer.from_config(VARIANTS["codeformer_tiny"])
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    model = onnx.load_from_string(export_graph(net, "encode"))
    ops = {node.op_type for node in model.graph.node}
    assert "Conv" in ops and "InstanceNormalization" not in ops
    assert [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)] == norms
    copy = for_export(net)
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in copy.modules())
    shared = {p.data_ptr() for p in net.parameters()}
    assert {p.data_ptr() for p in copy.parameters()} == shared


# -- the graph cache ------------------------------------------------------------------------
def _graph_files(home: Path) -> dict[str, os.stat_result]:
    return {p.name: p.stat() for p in sorted((home / "runtime").glob("*.onnx"))}


def _naming_outside(graph: bytes) -> bytes:
    """``graph`` with its weights moved to "external data" in ``../outside.bin``."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, convert_model_to_external_data

    model = onnx.load_model_from_string(graph)
    convert_model_to_external_data(model, location="../outside.bin", size_threshold=0)
    for t in _get_all_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            t.ClearField("raw_data")
    return model.SerializeToString()


def test_graphs_are_reused_and_a_bad_file_is_exported_again(
        tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = AVAILABLE[0]
    store = WeightStore(tmp_path / "home")
    first = load_restorer(tiny, device="cpu", runtime=runtime, store=store)
    files = _graph_files(store.home)
    stem = first.model.graph_stem("encode")
    assert sorted(files) == sorted(f"{g}-{first.model.key}.onnx" for g in ("encode", "predict"))
    x = first.prepare([_crop(3)])
    with torch.inference_mode():
        want = first.model.encode(x).lq_feat

    load_restorer(tiny, device="cpu", runtime=runtime, store=store)  # from the files
    again = _graph_files(store.home)
    assert {n: (s.st_ino, s.st_mtime_ns) for n, s in again.items()} == {
        n: (s.st_ino, s.st_mtime_ns) for n, s in files.items()}

    path = store.home / "runtime" / f"{stem}.onnx"
    good = path.read_bytes()
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF  # one byte in the weights: it would still load
    for bad, why in ((bytes(damaged), "content no longer has its hash"),
                     (b"not a graph", "the runtime refuses it"),
                     (_naming_outside(good), "it names a weights file outside its folder")):
        path.write_bytes(bad)
        if why != "content no longer has its hash":  # a sidecar that agrees
            sidecar = path.with_name(path.name + ".sha256")
            sidecar.write_text(hashlib.sha256(bad).hexdigest() + "\n")
        caplog.clear()
        net = load_restorer(tiny, device="cpu", runtime=runtime, store=store).model
        refused = "names weight files outside itself" in caplog.text
        assert refused == why.startswith("it names"), why
        assert path.read_bytes() == good, why
        with torch.inference_mode():
            assert torch.equal(net.encode(x).lq_feat, want), why


def test_earlier_exports_of_a_graph_are_removed_once_unused_for_a_day(
        tiny: Path, tmp_path: Path) -> None:
    from vidrestore.models.runtime.cache import STALE_SECONDS

    runtime = AVAILABLE[0]
    store = WeightStore(tmp_path / "home")
    net = load_restorer(tiny, device="cpu", runtime=runtime, store=store).model
    folder = store.home / "runtime"
    weights, build = net.key.split("-")
    old = time.time() - STALE_SECONDS - 60
    recent = time.time() - STALE_SECONDS / 2

    def plant(stem: str, when: float) -> Path:
        graph, sidecar = folder / f"{stem}.onnx", folder / f"{stem}.onnx.sha256"
        graph.write_bytes(b"an earlier export")
        sidecar.write_text("0" * 64 + "\n")
        for p in (graph, sidecar):
            os.utime(p, (when, when))
        return graph

    other_build = "f" * 16 if build != "f" * 16 else "e" * 16
    stale = [plant(f"encode-{weights}-{other_build}", old), plant("encode-" + "a" * 32, old)]
    kept = [plant(f"encode-{weights}-{other_build[:-1]}0", recent),  # used within the day
            plant(f"encode-{'0' * 16}-{other_build}", old),  # other weights
            plant(f"decode_plain-{weights}-{other_build}", old)]  # a graph not loaded here
    used = folder / f"{net.graph_stem('encode')}.onnx.sha256"
    os.utime(used, (old, old))
    load_restorer(tiny, device="cpu", runtime=runtime, store=store)
    assert not any(p.exists() or p.with_name(p.name + ".sha256").exists() for p in stale)
    assert all(p.exists() and p.with_name(p.name + ".sha256").exists() for p in kept)
    assert time.time() - used.stat().st_mtime < 60  # this use is recorded


def test_an_unwritable_cache_folder_costs_only_the_reuse(tiny: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file where the cache folder should be")
    desc = load_restorer(tiny, device="cpu", runtime=AVAILABLE[0], store=WeightStore(home))
    with torch.inference_mode():
        assert desc.model.predict(torch.zeros(1, 16, 16, 16)).shape == (1, 256, 64)


# -- choosing the runtime -------------------------------------------------------------------
def test_the_options_offer_the_runtimes() -> None:
    assert OPTION_RUNTIMES == RUNTIMES
    with pytest.raises(UsageError, match="--runtime"):
        RestoreOptions(runtime="tensorrt")


def test_auto_takes_a_cpu_runtime_on_the_cpu_only(auto_env: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    f32 = torch.float32
    assert resolve_runtime("auto", CPU, f32) == AVAILABLE[0]
    assert resolve_runtime("auto", torch.device("cuda"), f32) == "torch"
    assert resolve_runtime("auto", CPU, torch.float16) == "torch"
    if "openvino" in AVAILABLE:  # bfloat16: the one runtime that computes it, else PyTorch
        want = "openvino" if NATIVE_BF16 else "torch"
        assert resolve_runtime("auto", CPU, torch.bfloat16) == want
    assert resolve_runtime("torch", CPU, f32) == "torch"
    for runtime in AVAILABLE:
        assert resolve_runtime(runtime, CPU, f32) == runtime
        with pytest.raises(UsageError, match=f"--runtime {runtime}: it runs on the CPU"):
            resolve_runtime(runtime, torch.device("cuda"), f32)
        with pytest.raises(UsageError, match="does not compute in float16"):
            resolve_runtime(runtime, CPU, torch.float16)
    if "onnxruntime" in AVAILABLE:
        with pytest.raises(UsageError, match="does not compute in bfloat16"):
            resolve_runtime("onnxruntime", CPU, torch.bfloat16)
    with pytest.raises(UsageError, match="not one of auto, torch, onnxruntime, openvino"):
        resolve_runtime("tensorrt", CPU, f32)
    assert preferred_runtime() == "auto"
    assert resolve_runtime("auto", CPU, f32, prefer="torch") == "torch"
    assert resolve_runtime(AVAILABLE[-1], CPU, f32, prefer="torch") == AVAILABLE[-1]  # a name
    assert resolve_runtime("auto", CPU, f32, prefer=AVAILABLE[-1]) == AVAILABLE[-1]
    with pytest.raises(UsageError, match=RUNTIME_ENV):
        resolve_runtime("auto", CPU, f32, prefer="bogus")
    monkeypatch.setenv(RUNTIME_ENV, " Torch ")
    assert preferred_runtime() == "torch"


@pytest.mark.skipif("openvino" not in AVAILABLE, reason="needs OpenVINO")
def test_auto_dtype_on_the_cpu_is_bfloat16_where_openvino_computes_it(
        auto_env: None, tiny: Path, tiny_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def loaded(**kw: str) -> tuple[str, torch.dtype]:
        desc = load_restorer(tiny, device="cpu", store=WeightStore(tiny_home), **kw)
        return desc.runtime, desc.dtype

    f32, bf16 = torch.float32, torch.bfloat16
    assert loaded() == ("openvino", bf16 if NATIVE_BF16 else f32)
    assert loaded(runtime="openvino") == ("openvino", bf16 if NATIVE_BF16 else f32)
    assert loaded(dtype="float32") == ("openvino", f32)  # a named dtype as given
    assert loaded(runtime="torch") == ("torch", f32)
    if "onnxruntime" in AVAILABLE:
        assert loaded(runtime="onnxruntime") == ("onnxruntime", f32)
    monkeypatch.setenv(RUNTIME_ENV, "torch")  # what auto means, for every host
    assert loaded() == ("torch", f32)
    monkeypatch.delenv(RUNTIME_ENV)
    monkeypatch.setattr(precision, "cpu_has_fast_bfloat16", lambda: False)
    assert loaded() == ("openvino", f32)


def test_runtime_torch_is_honoured_from_the_command_line_to_the_network(
        auto_env: None, tiny: Path, tiny_home: Path, detector) -> None:
    from vidrestore.cli.optgen import build
    from vidrestore.cli.restore_cmd import restore
    from vidrestore.restore.pipeline import Restorer

    def options(*flags: str) -> RestoreOptions:
        ctx = restore.make_context("restore", ["in.mp4", "-o", "out.mp4", "--weights",
                                               str(tiny), "--device", "cpu", *flags])
        return build(RestoreOptions, ctx.params)

    assert options().runtime == "auto"
    store = WeightStore(tiny_home)
    torch_run = Restorer(options("--runtime", "torch"), store=store, detector=detector)
    assert torch_run.model.runtime == "torch" and isinstance(torch_run.model.model, CodeFormer)
    auto_run = Restorer(options(), store=store, detector=detector)
    assert auto_run.model.runtime == AVAILABLE[0]
    assert isinstance(auto_run.model.model, RuntimeNetwork)
    # OpenVINO runs a batch face by face: a batch of one saves the padding of short batches
    assert torch_run.engine.batch_size == 2
    assert auto_run.engine.batch_size == (1 if AVAILABLE[0] == "openvino" else 2)
    assert Restorer(options("--batch-size", "3"), store=store,
                    detector=detector).engine.batch_size == 3
    with pytest.raises(click.BadParameter, match="tensorrt"):
        options("--runtime", "tensorrt")


NO_RUNTIME = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from vidrestore.errors import UsageError
    from vidrestore.models import load_restorer
    desc = load_restorer(sys.argv[2], device="cpu")
    try:
        load_restorer(sys.argv[2], device="cpu", runtime="openvino")
        refused = None
    except UsageError as exc:
        refused = str(exc)
    print(json.dumps({"runtime": desc.runtime, "refused": refused}))
""")


def test_without_the_runtime_packages_auto_is_pytorch(tiny: Path, tmp_path: Path) -> None:
    """A Python that sees this environment's packages except onnx, onnxruntime and openvino."""
    links = tmp_path / "site-links"
    links.mkdir()
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        for entry in Path(site).iterdir():
            name = entry.name.lower()
            if (name.startswith(("vidrestore", "__editable__", "onnx", "openvino"))
                    or name.endswith(".pth") or (links / entry.name).exists()):
                continue
            (links / entry.name).symlink_to(entry)
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    (Path(site.stdout.strip()) / "project-deps.pth").write_text(f"{links}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDRESTORE_", "PYTHON"))}
    env.update(HOME=str(tmp_path), VIDRESTORE_HOME=str(tmp_path / "home"))
    run = subprocess.run([python, "-I", "-c", NO_RUNTIME, str(REPO), str(tiny)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["runtime"] == "torch"
    assert "not installed (pip install 'vidrestore[cpu]'" in out["refused"]
