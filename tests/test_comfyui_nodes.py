"""The ComfyUI node pack, loaded and driven the way ComfyUI does it, without ComfyUI installed.

The plugin folder is imported as ComfyUI imports a custom node folder (a module made from its
``__init__.py`` under the folder's name); node classes are used through their class attributes,
``INPUT_TYPES`` and ``FUNCTION``, with ``IMAGE`` batches ``[B, H, W, C]`` float32 in 0..1 and one
instance per node kept across executions. The host's own modules (``comfy``, ``folder_paths``)
are replaced by small stand-ins in a temporary folder only in the tests that are about them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from synth import load_rgb, panned_face_clip, tiny_checkpoint

from vidrestore.faces.options import DETECTORS, FaceOptions
from vidrestore.io import VideoReader
from vidrestore.restore.options import TEMPORAL_MODES, RestoreOptions

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "plugins" / "comfyui"
W, H, N = 256, 192, 5
CHUNKS = ((0, 2), (2, 3), (3, 5))  # uneven on purpose
COMFY_ROOTS = ("comfy", "folder_paths")


def _import_plugin(name: str) -> ModuleType:
    """What ComfyUI's custom node loader does with a folder in ``custom_nodes``."""
    spec = importlib.util.spec_from_file_location(name, PLUGIN / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _forget(prefixes: tuple[str, ...]) -> None:
    for mod in list(sys.modules):
        if mod.split(".")[0] in prefixes:
            del sys.modules[mod]


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    return _import_plugin("ComfyUI-vidrestore")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("nodes-ckpt") / "tiny.pth")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    return panned_face_clip(tmp_path_factory.mktemp("nodes") / "faces.mp4", media_dir, N, (W, H),
                            audio=False)


@pytest.fixture(scope="module")
def images(clip: Path) -> torch.Tensor:
    """The clip as a video loader hands it to the graph: 8-bit frames divided by 255."""
    with VideoReader(clip) as reader:
        pixels = np.stack([f.pixels for f in reader])
    return torch.from_numpy(pixels).float() / 255.0


@pytest.fixture(scope="module")
def model(plugin: ModuleType, weights: Path) -> Any:
    return plugin.nodes.load_model(str(weights), "cpu", "float32")


@pytest.fixture(scope="module", autouse=True)
def _yunet_from_mirror(mirror_in_env: Path) -> None:
    """YuNet from the shared mirror, for the module fixtures too."""


def _node(plugin: ModuleType, name: str) -> Any:
    return plugin.NODE_CLASS_MAPPINGS[name]


def _defaults(cls: Any) -> dict[str, Any]:
    """Widget values as the front end sends them when nothing is changed."""
    spec = cls.INPUT_TYPES()
    out = {}
    for section in ("required", "optional"):
        for name, (kind, *rest) in spec.get(section, {}).items():
            opts = rest[0] if rest else {}
            if "default" in opts:
                out[name] = opts["default"]
            elif isinstance(kind, list):
                out[name] = kind[0]
    return out


def _call(node: Any, **inputs: Any) -> Any:
    values = {**_defaults(type(node)), **inputs}
    return getattr(node, type(node).FUNCTION)(**values)


def _restore(plugin: ModuleType, node: Any, images: torch.Tensor, model: Any, **inputs: Any
             ) -> tuple[torch.Tensor, str]:
    node = node or _node(plugin, "VidrestoreRestoreFaces")()
    return _call(node, images=images, model=model, **inputs)


# -- declarations ---------------------------------------------------------------------------------
def test_node_declarations_follow_comfyui_conventions(plugin: ModuleType) -> None:
    assert set(plugin.NODE_CLASS_MAPPINGS) == set(plugin.NODE_DISPLAY_NAME_MAPPINGS)
    for cls in plugin.NODE_CLASS_MAPPINGS.values():
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"} and "required" in spec
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES)
        assert callable(getattr(cls, cls.FUNCTION)) and cls.CATEGORY == "vidrestore"
        for section in ("required", "optional"):
            for name, (kind, *rest) in spec.get(section, {}).items():
                opts = rest[0] if rest else {}
                if isinstance(kind, list):  # combo: the default must be one of the values
                    assert opts.get("default", kind[0]) in kind, name
                elif kind in ("INT", "FLOAT"):
                    assert opts["min"] <= opts["default"] <= opts.get("max", float("inf")), name


def test_inputs_are_generated_from_the_option_dataclasses(plugin: ModuleType) -> None:
    req = _node(plugin, "VidrestoreRestoreFaces").INPUT_TYPES()["required"]
    fields = {f.name: f for f in dataclasses.fields(RestoreOptions)}
    assert req["fidelity"] == ("FLOAT", {
        "tooltip": fields["fidelity"].metadata["help"], "default": 0.5, "step": 0.01,
        "min": 0.0, "max": 1.0})
    assert req["temporal"][0] == list(TEMPORAL_MODES)
    assert req["window"][1]["max"] == fields["window"].metadata["max"]
    assert req["detector"][0] == list(DETECTORS)
    assert req["min_face"][1]["min"] == 4.0
    settings = _node(plugin, "VidrestoreFaceSettings")
    names = set(settings.INPUT_TYPES()["required"])
    face_fields = {f.name for f in dataclasses.fields(FaceOptions)}
    assert names == face_fields - {"causal", "detector", "min_face"}
    built = _call(settings(), smooth=3.0, max_gap=9)[0]
    assert built == FaceOptions(smooth=3.0, max_gap=9)


def test_node_texts_speak_of_inputs_not_command_line_flags(plugin: ModuleType) -> None:
    texts = []
    for cls in plugin.NODE_CLASS_MAPPINGS.values():
        texts.append(cls.DESCRIPTION)
        texts.extend(getattr(cls, "OUTPUT_TOOLTIPS", ()))
        assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES), cls
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, (_, *rest) in spec.get(section, {}).items():
                opts = rest[0] if rest else {}
                assert opts.get("tooltip"), (cls.__name__, name)
                texts.append(opts["tooltip"])
    for text in texts:
        assert "--" not in text and "``" not in text and "`" not in text, text
        assert "vidrestore track" not in text, text
    settings = _node(plugin, "VidrestoreFaceSettings").INPUT_TYPES()["required"]
    assert "scan_every" in settings["detect_size"][1]["tooltip"]  # the input's own name
    assert "the Track Faces node" in _node(plugin, "VidrestoreRestoreFaces").INPUT_TYPES()[
        "optional"]["faces"][1]["tooltip"]


def test_blend_input_softens_or_leaves_the_faces(plugin: ModuleType, images: torch.Tensor,
                                                 model: Any) -> None:
    untouched, _ = _restore(plugin, None, images, model, blend=0.0)
    assert torch.equal(untouched, images)
    full, _ = _restore(plugin, None, images, model)
    half, _ = _restore(plugin, None, images, model, blend=0.5)
    moved = (full - images).abs() >= 8 / 255
    assert moved.sum() > 1000
    assert ((half - (images + full) / 2).abs()[moved]).max() <= 1.0 / 255 + 1e-6


def test_errors_name_the_node_input(plugin: ModuleType, images: torch.Tensor, model: Any
                                    ) -> None:
    from vidrestore.errors import UsageError

    with pytest.raises(UsageError, match=r"^device: 'gpu' is not a device"):
        _call(_node(plugin, "VidrestoreLoadCodeFormer")(), device="gpu")
    with pytest.raises(UsageError, match=r"^faces: 0 is not a track ID \(IDs count from 1\)$"):
        _restore(plugin, None, images, model, faces="2,0")
    # a track that never appears would silently restore nothing: the run says so instead
    with pytest.raises(UsageError, match=r"^faces: track 7 never appeared in these frames "
                       r"\(tracks found: 1; the Track Faces node shows them\)$"):
        _restore(plugin, None, images, model, faces="7")


# -- restoring ------------------------------------------------------------------------------------
def test_node_equals_the_restore_command(plugin: ModuleType, images: torch.Tensor, model: Any,
                                         clip: Path, weights: Path, mirror_dir: Path,
                                         tmp_path: Path) -> None:
    out, report = _restore(plugin, None, images, model, fidelity=0.7, window=3)
    assert out.shape == images.shape and out.dtype == torch.float32

    env = {"PYTHONPATH": str(REPO), "VIDRESTORE_MIRROR": str(mirror_dir), "PATH": "/usr/bin:/bin",
           "VIDRESTORE_HOME": str(tmp_path / "home"), "VIDRESTORE_OFFLINE": "1",
           "VIDRESTORE_RUNTIME": "torch"}
    # The command reads the node's own frames (a video file would have its faces found in the
    # reader's fast conversion of the decoded pictures, which the node never sees).
    given = tmp_path / "in"
    given.mkdir()
    for i, picture in enumerate(np.rint(images.numpy() * 255).astype(np.uint8), 1):
        cv2.imwrite(str(given / f"f_{i:03d}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    run = subprocess.run([sys.executable, "-m", "vidrestore", "restore",
                          str(given / "f_%03d.png"), "--fps", "25", "-o",
                          str(tmp_path / "seq" / "f_%03d.png"), "--weights", str(weights),
                          "--device", "cpu", "--dtype", "float32", "--fidelity", "0.7",
                          "--window", "3", "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    cli = np.stack([load_rgb(tmp_path / "seq" / f"f_{i:03d}.png") for i in range(1, N + 1)])
    node = np.rint(out.numpy() * 255).astype(np.uint8)
    assert np.array_equal(node, cli)  # bit-exact: 8-bit in, 8-bit out, same library
    assert not np.array_equal(node, np.rint(images.numpy() * 255).astype(np.uint8))
    tracks = json.loads(report)  # the report of the batch is JSON in the tracks schema
    assert tracks["schema"] == 1 and tracks["tracks"], tracks.keys()
    assert {t["id"] for t in tracks["tracks"]} == set(range(1, len(tracks["tracks"]) + 1))


@pytest.fixture(scope="module")
def whole(plugin: ModuleType, images: torch.Tensor, model: Any) -> torch.Tensor:
    """The clip as one batch of a chunked (causal) session, in recurrent mode."""
    return _restore(plugin, None, images, model, temporal="recurrent", session="clip")[0]


def test_chunks_continue_one_video(plugin: ModuleType, images: torch.Tensor, model: Any,
                                   whole: torch.Tensor) -> None:
    node = _node(plugin, "VidrestoreRestoreFaces")()
    parts, reports = [], []
    for a, b in CHUNKS:
        out, report = _restore(plugin, node, images[a:b], model, temporal="recurrent",
                               session="clip")
        parts.append(out)
        reports.append(json.loads(report))
    assert torch.equal(torch.cat(parts), whole)
    # frame numbers and the track ID continue from chunk to chunk
    frames = [[f["frame"] for t in r["tracks"] for f in t["frames"]] for r in reports]
    assert frames[1:] == [list(range(a, b)) for a, b in CHUNKS[1:]]
    assert {t["id"] for r in reports for t in r["tracks"]} == {1}
    # the last chunk on its own (tracks and temporal state start again) is not the same
    alone = _restore(plugin, None, images[CHUNKS[-1][0]:], model, temporal="recurrent",
                     session="clip")[0]
    assert not torch.equal(alone, parts[-1])


def test_meta_batch_chunks_and_restart(plugin: ModuleType, images: torch.Tensor, model: Any,
                                       whole: torch.Tensor) -> None:
    """The video helpers' batch manager: chunk k is execution k, ``requeue`` counts them."""
    manager = SimpleNamespace(unique_id="3", total_frames=N)
    node = _node(plugin, "VidrestoreRestoreFaces")()

    def chunk(k: int, a: int, b: int) -> torch.Tensor:
        prompt = {"3": {"class_type": "VHS_BatchManager", "inputs": {"requeue": k}}}
        return _restore(plugin, node, images[a:b], model, temporal="recurrent",
                        meta_batch=manager, prompt=prompt)[0]

    parts = [chunk(k, a, b) for k, (a, b) in enumerate(CHUNKS)]
    assert torch.equal(torch.cat(parts), whole)
    assert node.slot.current is None  # total_frames reached: the video is done
    # queued again and cancelled after two chunks; then queued once more: requeue 0 restarts
    chunk(0, *CHUNKS[0])
    chunk(1, *CHUNKS[1])
    assert node.slot.current is not None and node.slot.current.next_index == CHUNKS[1][1]
    again = chunk(0, *CHUNKS[0])
    assert torch.equal(again, parts[0])
    assert node.slot.current.next_index == CHUNKS[0][1]


def test_frames_without_faces_and_float_pictures(plugin: ModuleType, model: Any) -> None:
    rng = np.random.default_rng(5)
    plain = torch.from_numpy(rng.integers(0, 256, (3, 64, 80, 3)).astype(np.float32) / 255.0)
    out, report = _restore(plugin, None, plain, model)
    assert torch.equal(out, plain)  # 8-bit pictures round-trip exactly
    assert json.loads(report)["tracks"] == []  # no face, no track
    smooth = torch.from_numpy(rng.random((2, 64, 80, 4), dtype=np.float32))  # RGBA, not 8-bit
    out, _ = _restore(plugin, None, smooth, model)
    assert torch.equal(out[..., 3], smooth[..., 3])  # alpha passed through
    err = (out[..., :3] - smooth[..., :3]).abs().max().item()
    assert err <= 0.5 / 65535 + 1e-7  # kept at 16 bits, not rounded to 8


# -- the host's interrupt, progress bar and model folder ------------------------------------------
def _fake_comfy(root: Path, stop_after: int) -> None:
    """``comfy`` stand-ins with the real modules' interface (the real host runs in
    test_comfyui_host.py): Cancel pressed after ``stop_after`` checks, bar updates recorded."""
    pkg = root / "comfy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "model_management.py").write_text(textwrap.dedent(f"""
        class InterruptProcessingException(Exception):
            pass

        calls = 0

        interrupt_processing = False  # Cancel pressed (set by a test's model)

        def throw_exception_if_processing_interrupted():
            global calls, interrupt_processing
            calls += 1
            if calls > {stop_after} or interrupt_processing:
                interrupt_processing = False
                raise InterruptProcessingException()

        def get_torch_device():
            return "cpu"
    """))
    (pkg / "utils.py").write_text(textwrap.dedent("""
        import time

        updates = []
        times = []

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total = total
                self.current = 0

            def update_absolute(self, value, total=None, preview=None):
                self.total = total if total is not None else self.total
                self.current = min(value, self.total)
                updates.append((self.current, self.total))
                times.append(time.monotonic())

            def update(self, value):
                self.update_absolute(self.current + value)
    """))


def _run_with_cancel(plugin: ModuleType, images: torch.Tensor, model: Any, root: Path,
                     stop_after: int, **inputs: Any) -> tuple[ModuleType, ModuleType, Any]:
    _fake_comfy(root, stop_after)
    sys.path.insert(0, str(root))
    try:
        import comfy.model_management as mm
        import comfy.utils as cu

        node = _node(plugin, "VidrestoreRestoreFaces")()
        try:
            _restore(plugin, node, images, model, **inputs)
        except mm.InterruptProcessingException:
            node.cancelled = True
        return mm, cu, node
    finally:
        sys.path.remove(str(root))
        _forget(COMFY_ROOTS)


@pytest.mark.parametrize("inputs", [{}, {"temporal": "recurrent", "session": "s"}],
                         ids=["whole-window", "session-recurrent"])
def test_cancel_and_progress_work_through_the_whole_run(plugin: ModuleType, images: torch.Tensor,
                                                        model: Any, tmp_path: Path,
                                                        inputs: dict[str, Any]) -> None:
    mm, cu, node = _run_with_cancel(plugin, images, model, tmp_path / "all", 10**6,
                                    batch_size=1, **inputs)
    values = [v for v, _ in cu.updates]
    assert not hasattr(node, "cancelled")
    # the bar moves on every step (each frame read and each network batch of one face) ...
    assert values == sorted(values) and len(set(values)) == len(values) == mm.calls
    assert cu.updates[-1][0] == cu.updates[-1][1]  # ... and ends full
    assert len(cu.updates) == N + 2 * N  # one face on every frame: 2 network passes each
    # Cancel is honoured at the very last step too: in the whole run that is the tail after the
    # last frame was read (look-ahead and window), where no frame comes out for a while
    mm, cu, node = _run_with_cancel(plugin, images, model, tmp_path / "last", mm.calls - 1,
                                    batch_size=1, **inputs)
    assert node.cancelled and node.slot.current is None  # half-done state is not continued
    assert len(cu.updates) == mm.calls - 1


def test_model_folder_is_registered_and_listed(tmp_path: Path, weights: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    (models / "facerestore_models").mkdir(parents=True)
    (models / "facerestore_models" / "codeformer-tiny.pth").write_bytes(weights.read_bytes())
    (models / "facerestore_models" / "notes.txt").write_text("not a network")
    (models / "facerestore_models" / "another-net.pth").write_bytes(b"listed after CodeFormer")
    (tmp_path / "folder_paths.py").write_text(textwrap.dedent(f"""
        import os
        models_dir = {str(models)!r}
        folder_names_and_paths = {{}}

        def add_model_folder_path(name, path, is_default=False):
            folder_names_and_paths.setdefault(name, ([], set()))[0].append(path)

        def get_filename_list(name):
            return sorted(f for p in folder_names_and_paths[name][0] for f in os.listdir(p))

        def get_full_path(name, file):
            for p in folder_names_and_paths[name][0]:
                if os.path.isfile(os.path.join(p, file)):
                    return os.path.join(p, file)
            return None
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        fresh = _import_plugin("ComfyUI-vidrestore-folders")
        import folder_paths

        assert folder_paths.folder_names_and_paths["facerestore_models"][0] == [
            str(models / "facerestore_models")]
        loader = fresh.NODE_CLASS_MAPPINGS["VidrestoreLoadCodeFormer"]
        choices = loader.INPUT_TYPES()["required"]["model_name"][0]
        # the user's own files first, CodeFormer's leading (the default), the cache entry last
        assert choices == ["codeformer-tiny.pth", "another-net.pth",
                           "codeformer.pth (vidrestore weights cache)"]
        (loaded,) = _call(loader(), device="cpu")  # the default: no download
        assert loaded.device == torch.device("cpu") and loaded.dtype == torch.float32
        assert loaded.source.endswith("codeformer-tiny.pth")
        assert sum(p.numel() for p in loaded.model.parameters()) > 0
    finally:
        _forget(COMFY_ROOTS)
        _forget(("ComfyUI-vidrestore-folders",))


# -- track preview --------------------------------------------------------------------------------
def test_track_preview_draws_and_reports(plugin: ModuleType, images: torch.Tensor) -> None:
    preview, report = _call(_node(plugin, "VidrestoreTrackFaces")(), images=images)
    assert preview.shape == images.shape
    changed = (preview != images).any(dim=-1)
    assert changed.any(dim=(1, 2)).all()  # every frame has its face marked
    assert changed.float().mean() < 0.2  # boxes and labels, not a repaint
    tracks = json.loads(report)
    assert tracks


def test_example_workflow_fits_the_nodes(plugin: ModuleType) -> None:
    """Our nodes in the example have every required input, with values the server accepts."""
    graph = json.loads((PLUGIN / "example_workflow.json").read_text())
    ours = {k: v for k, v in graph.items() if v["class_type"] in plugin.NODE_CLASS_MAPPINGS}
    assert {v["class_type"] for v in ours.values()} == {"VidrestoreLoadCodeFormer",
                                                        "VidrestoreRestoreFaces"}
    kinds = {v["class_type"] for v in graph.values()}
    assert {"VHS_LoadVideo", "VHS_VideoCombine"} <= kinds
    load = next(v for v in graph.values() if v["class_type"] == "VHS_LoadVideo")
    assert load["inputs"]["format"] == "None"  # frames keep their size (no multiple of 8)
    assert "force_size" not in load["inputs"]  # an input VHS has removed
    combine = next(v for v in graph.values() if v["class_type"] == "VHS_VideoCombine")
    loader = next(k for k, v in graph.items() if v["class_type"] == "VHS_LoadVideo")
    assert combine["inputs"]["audio"] == [loader, 2]  # the original sound
    for node in ours.values():
        spec = plugin.NODE_CLASS_MAPPINGS[node["class_type"]].INPUT_TYPES()
        inputs = node["inputs"]
        assert set(spec["required"]) <= set(inputs)
        for name, value in inputs.items():
            kind, *rest = spec["required"].get(name) or spec["optional"][name]
            opts = rest[0] if rest else {}
            if isinstance(value, list) and len(value) == 2 and value[0] in graph:
                continue  # a link
            if name == "model_name":  # a file of models/facerestore_models, not a download
                assert value == "codeformer.pth"
            elif isinstance(kind, list):
                assert value in kind, name
            elif kind in ("INT", "FLOAT"):
                assert opts["min"] <= value <= opts.get("max", float("inf")), name


# -- upscaled output ------------------------------------------------------------------------------
ANIME = "realesr-animevideov3.ncnn-fp16.pth"  # real, trained compact x4 weights (fast on a CPU)
BACKGROUND_THREAD = "vidrestore-background"


@pytest.fixture(scope="module")
def anime(mirror_dir: Path) -> Path:
    path = mirror_dir / ANIME
    if not path.is_file():
        pytest.skip(f"{path} is not in the mirror")
    return path


def _as_host_loads(model: Any) -> Any:
    """What ComfyUI's Load Upscale Model adds: a model patcher (its device management) that
    refers to the network."""
    model.patcher = SimpleNamespace(model=model.model, load_device=torch.device("cpu"))
    return model


def _host_model(path: Path) -> Any:
    """An ``UPSCALE_MODEL`` as Load Upscale Model makes it: the file's state dict to spandrel."""
    import spandrel

    sd = torch.load(path, map_location="cpu", weights_only=True)
    return _as_host_loads(spandrel.ModelLoader().load_from_state_dict(sd).eval())


def _compact(scale: int, seed: int = 0) -> Any:
    """A very small RealESRGAN compact network with random weights, as the host loads it."""
    import spandrel
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(seed)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=1, upscale=scale)
    return _as_host_loads(spandrel.ModelLoader().load_from_state_dict(net.state_dict()).eval())


def _background_threads(timeout: float = 5.0) -> list[Any]:
    """The node's run-ahead threads still alive after ``timeout`` s (closed ones end)."""
    import threading
    import time

    deadline = time.monotonic() + timeout
    while True:
        alive = [t for t in threading.enumerate() if t.name.startswith(BACKGROUND_THREAD)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _pixels(images: torch.Tensor) -> np.ndarray:
    return np.rint(images[..., :3].numpy() * 255).astype(np.uint8)


def test_upscale_inputs_come_from_the_options(plugin: ModuleType) -> None:
    spec = _node(plugin, "VidrestoreRestoreFaces").INPUT_TYPES()
    opt = spec["optional"]
    fields = {f.name: f for f in dataclasses.fields(RestoreOptions)}
    assert opt["upscale_model"][0] == "UPSCALE_MODEL"  # core's Load Upscale Model
    assert opt["upscale"][0] == "INT" and opt["upscale"][1]["default"] == 1
    assert (opt["upscale"][1]["min"], opt["upscale"][1]["max"]) == (
        fields["upscale"].metadata["min"], fields["upscale"].metadata["max"])
    assert opt["bg_tile"][1]["max"] == fields["bg_tile"].metadata["max"]
    assert opt["face_upsample"][0] == "BOOLEAN" and opt["face_upsample"][1]["default"] is False
    assert opt["background"][0] == ["lanczos", "realesrgan-x2", "realesrgan-x4",
                                    "realesr-animevideov3"]
    assert "upscale_model" in opt["upscale"][1]["tooltip"]
    # new inputs are optional and last: saved workflows (widget values in order) stay valid
    names = list(opt)
    assert names[-4:] == ["upscale", "background", "face_upsample", "bg_tile"]
    assert not {"upscale", "background", "face_upsample", "bg_tile"} & set(spec["required"])


def test_upscale_model_is_the_background(plugin: ModuleType, images: torch.Tensor, model: Any,
                                         anime: Path) -> None:
    from vidrestore.restore.pipeline import Restorer
    from vidrestore.upscale import Upscaler, load_background

    few = images[:2]
    host_model = _host_model(anime)
    weights = {k: v.clone() for k, v in host_model.model.state_dict().items()}
    out, report = _restore(plugin, None, few, model, upscale=2, upscale_model=host_model)
    assert out.shape == (2, 2 * H, 2 * W, 3) and out.dtype == torch.float32
    # the host's model is left as the host keeps it (other nodes use it): place, type, weights
    assert host_model.device == torch.device("cpu") and host_model.dtype == torch.float32
    assert all(torch.equal(v, weights[k]) for k, v in host_model.model.state_dict().items())
    video = json.loads(report)["video"]  # tracks stay in source coordinates
    assert (video["width"], video["height"]) == (W, H)

    # the library with the same options and the same file gives the very same frames
    plugin_convert = sys.modules[plugin.__name__ + ".convert"]
    frames = plugin_convert.frames_from_images(few, np.dtype(np.uint8))
    ref = Restorer(RestoreOptions(upscale=2, device="cpu", dtype="float32"), FaceOptions(),
                   model=model, background=load_background(anime, device="cpu"))
    try:
        expected = np.stack([f.pixels for f in ref.process(frames)])
    finally:
        ref.close()
    assert np.array_equal(_pixels(out), expected)
    # the library's background there is the model's: away from the face not Lanczos's
    corner = (slice(0, 40), slice(2 * W - 40, 2 * W))
    lanczos = Upscaler(2).canvas(_pixels(few)[0])
    assert np.abs(_pixels(out)[0][corner].astype(int) - lanczos[corner]).mean() > 0.5
    assert not _background_threads()  # a whole batch lets its thread go


def test_upscaled_chunks_continue_one_video(plugin: ModuleType, images: torch.Tensor,
                                            model: Any) -> None:
    host_model = _compact(2)
    inputs = {"temporal": "recurrent", "session": "up", "upscale": 2,
              "upscale_model": host_model}
    whole = _restore(plugin, None, images, model, **inputs)[0]
    assert whole.shape == (N, 2 * H, 2 * W, 3)
    node = _node(plugin, "VidrestoreRestoreFaces")()
    parts, state = [], None
    for a, b in CHUNKS:
        parts.append(_restore(plugin, node, images[a:b], model, **inputs)[0])
        state = state or node.slot.current.state
        assert node.slot.current.state is state  # the same video, chunk after chunk
    assert torch.equal(torch.cat(parts), whole)
    # the restorer works on its own copy of the host's model, without the host's patcher
    own = state.upscaler.model.model
    assert own is not host_model and own.model is not host_model.model
    assert own.patcher is None and host_model.patcher.model is host_model.model
    # another model (even with the same weights) or other upscale settings: another video
    for change in ({"upscale_model": _compact(2)}, {"bg_tile": 64}, {"upscale": 3}):
        before = node.slot.current.state
        out = _restore(plugin, node, images[:1], model, **{**inputs, **change})[0]
        assert node.slot.current.state is not before
        assert out.shape[1:3] == (H * change.get("upscale", 2), W * change.get("upscale", 2))
    assert len(_background_threads(0.5)) <= 1  # replaced videos let their threads go
    node.slot.drop()
    assert not _background_threads()


def test_upscaled_lanczos_keeps_16_bits_and_alpha(plugin: ModuleType, model: Any) -> None:
    import cv2

    rng = np.random.default_rng(7)
    smooth = torch.from_numpy(rng.random((2, 48, 64, 4), dtype=np.float32))  # RGBA, not 8-bit
    out, _ = _restore(plugin, None, smooth, model, upscale=3)
    assert out.shape == (2, 144, 192, 4)
    convert = sys.modules[plugin.__name__ + ".convert"]
    for i in range(2):
        wide = convert.to_pixels(smooth[i], np.dtype(np.uint16))
        rgb = cv2.resize(wide, (192, 144), interpolation=cv2.INTER_LANCZOS4)
        assert torch.equal(out[i, ..., :3], convert.to_image(rgb))
        alpha = cv2.resize(smooth[i, ..., 3].numpy(), (192, 144),
                           interpolation=cv2.INTER_LANCZOS4)
        assert np.allclose(out[i, ..., 3].numpy(), np.clip(alpha, 0, 1), atol=1e-6)


def test_upscale_errors_are_one_line(plugin: ModuleType, images: torch.Tensor, model: Any
                                     ) -> None:
    from vidrestore.errors import CheckpointError, UsageError

    node = _node(plugin, "VidrestoreRestoreFaces")()
    with pytest.raises(CheckpointError, match=r"^upscale_model: spandrel reads it as RealESRGAN "
                       r"Compact, a restoration model without upscaling, not a "
                       r"super-resolution model$"):
        _restore(plugin, node, images[:1], model, upscale=2, upscale_model=_compact(1),
                 session="bad")
    assert node.slot.current is None
    with pytest.raises(UsageError, match=r"^face_upsample needs a background model: connect "
                       r"upscale_model"):
        _restore(plugin, node, images[:1], model, upscale=2, face_upsample=True)
    # with a model connected, face_upsample is accepted (whatever background says)
    out = _restore(plugin, node, images[:1], model, upscale=2, face_upsample=True,
                   upscale_model=_compact(2))[0]
    assert out.shape == (1, 2 * H, 2 * W, 3)


def test_named_background_comes_from_the_weights_cache(plugin: ModuleType, images: torch.Tensor,
                                                       model: Any, anime: Path) -> None:
    from vidrestore.weights import WeightStore

    few = images[:1]
    WeightStore.from_env().import_file("realesr-animevideov3", anime)  # a copy, in tmp
    named = _restore(plugin, None, few, model, upscale=2, background="realesr-animevideov3")[0]
    hosted = _restore(plugin, None, few, model, upscale=2, upscale_model=_host_model(anime),
                      background="realesrgan-x4")[0]  # the connected model wins
    assert named.shape == (1, 2 * H, 2 * W, 3) and torch.equal(named, hosted)


def _slow_model(seconds: float, *, cancel_at: int = 0
                ) -> tuple[Any, list[tuple[float, float]], list[float]]:
    """A compact x2 network whose every call takes ``seconds``; the ``cancel_at``-th call
    presses ComfyUI's Cancel as it starts. Returns it, the calls' (start, end) times and when
    Cancel was pressed."""
    import time

    host_model = _compact(2)
    calls: list[tuple[float, float]] = []
    pressed: list[float] = []

    def slow(module: Any, args: Any) -> None:
        t0 = time.monotonic()
        if len(calls) + 1 == cancel_at:
            sys.modules["comfy.model_management"].interrupt_processing = True
            pressed.append(t0)
        time.sleep(seconds)
        calls.append((t0, time.monotonic()))

    host_model.model.register_forward_pre_hook(slow)  # copied with the network
    return host_model, calls, pressed


def test_progress_and_cancel_while_the_background_is_slow(plugin: ModuleType,
                                                          images: torch.Tensor, model: Any,
                                                          tmp_path: Path) -> None:
    import time

    few, n = images[:3], 3
    host_model, calls, _ = _slow_model(0.4)
    _, cu, node = _run_with_cancel(plugin, few, model, tmp_path / "all", 10**6,
                                   batch_size=1, upscale=2, upscale_model=host_model)
    assert not hasattr(node, "cancelled") and len(calls) == n  # one call per frame
    values = [v for v, _ in cu.updates]
    assert values == sorted(values)
    # the bar counts the background's calls too, and ends full
    assert cu.updates[-1] == (n + 2 * n + n, n + 2 * n + n)
    # it is redrawn while each background is made (the node waits for the model's thread)
    during = [sum(a < t < b for t in cu.times) for a, b in calls]
    assert min(during) >= 1 and sum(during) >= 2 * n, during

    # Cancel pressed while a background is made: honoured within a poll, not after the call
    host_model, calls, pressed = _slow_model(2.0, cancel_at=2)
    _, cu, node = _run_with_cancel(plugin, few, model, tmp_path / "cancel", 10**6,
                                   batch_size=1, upscale=2, upscale_model=host_model)
    ended = time.monotonic()
    assert node.cancelled and node.slot.current is None
    assert pressed and ended - pressed[0] < 1.0, (calls, ended - pressed[0])
    assert not _background_threads()  # the call in progress ends, no other one starts
    assert len(calls) == 2, calls
