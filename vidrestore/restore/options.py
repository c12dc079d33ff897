"""Options of the restore stage: one definition shared by the API, the CLI and the nodes."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..options import opt, validate

TEMPORAL_MODES = ("window", "recurrent", "off")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: What ``--runtime`` takes (resolved by :func:`vidrestore.models.runtime.resolve_runtime`; the
#: names live here, where importing them costs no torch).
RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
MASKS = ("auto", "parse", "template")
GRAY_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class RestoreOptions:
    """How faces are restored and pasted back (frozen: checked once, when made; derive
    variants with :func:`dataclasses.replace`)."""

    fidelity: float = opt(
        0.5, "CodeFormer fidelity weight w: 0 = strongest restoration, 1 = closest to the input.",
        min=0.0, max=1.0)
    temporal: str = opt(
        "window", "Temporal mode: 'window' smooths code choices over neighbouring frames of each "
        "track; 'recurrent' is causal (no look-ahead); 'off' restores every frame on its own.",
        choices=TEMPORAL_MODES)
    window: int = opt(
        4, "Frames on each side of a frame whose code predictions are combined ('window' mode).",
        min=0, max=30)
    recurrent_gain: float = opt(
        0.35, "'recurrent' mode: weight of a new frame where it agrees with the carried state "
        "(1 = no smoothing); disagreeing positions follow the new frame.", min=0.05, max=1.0)
    blend: float = opt(
        1.0, "How much of the restored face replaces the original inside the paste mask: 0 = "
        "untouched, 1 = fully restored. Mixed in the video's own (gamma-encoded) values, as the "
        "mask's feathered edge is, so a partial blend looks like a softer restoration and "
        "keeps the edge's look.", min=0.0, max=1.0)
    faces: tuple[int, ...] | None = opt(
        None, "Restore only these track IDs (from `vidrestore track`); default: every face.")
    track_settings: str | None = opt(
        None, "Per-track settings: '3:fidelity=0.8,blend=0.6;5:skip' (IDs from `vidrestore "
        "track`; keys fidelity, blend, skip), or a .json/.toml file with the same.")
    weights: str | None = opt(
        None, "A CodeFormer-compatible checkpoint file (default: the verified official file).")
    device: str = opt("auto", "Compute device: auto, cpu, cuda, cuda:N or mps.")
    dtype: str = opt(
        "auto", "Network precision; auto = bfloat16 on CUDA (float16 on GPUs without it), "
        "float16 on MPS; on the CPU bfloat16 where OpenVINO runs the network with native bfloat16 "
        "kernels (the codes stay float32's), else float32.", choices=DTYPES)
    runtime: str = opt(
        "auto", "What runs the network: auto = a CPU runtime (OpenVINO, else ONNX Runtime; "
        "about twice PyTorch's speed, within 1e-4 of it) when one is installed and the device "
        "is the CPU, else PyTorch; torch = always PyTorch. The CPU runtimes compute float32, "
        "and OpenVINO bfloat16 on CPUs with native bfloat16.", choices=RUNTIMES)
    compile: bool = opt(
        False, "Compile the network with torch.compile (PyTorch's runtime: 'auto' then means "
        "torch): faster batches after a first one that waits for the compilation (about a "
        "minute on a CPU); results equal within float rounding.")
    batch_size: int = opt(0, "Faces per network batch; 0 = automatic (on a GPU by its free "
                          "memory, 4 to 32; on the CPU 2, or 1 in OpenVINO, which runs a batch "
                          "face by face).", min=0, max=512)
    mask: str = opt(
        "auto", "Paste-back mask: 'parse' (face parsing network), 'template' (feathered fixed "
        "shape), or 'auto' (parsing when its model file is present).", choices=MASKS)
    grayscale: str = opt(
        "auto", "Keep black-and-white sources black-and-white: auto-detect, force on, or off.",
        choices=GRAY_MODES)
    upscale: int = opt(
        1, "Output size as a multiple of the source's (1-4). Faces are pasted at the output "
        "resolution (more of the 512 px restored detail kept); the rest of the frame is "
        "upscaled by --background.", min=1, max=4)
    background: str = opt(
        "lanczos", "How the frame around the faces is upscaled: 'lanczos' (fast everywhere), a "
        "model name (realesrgan-x2, realesrgan-x4, realesr-animevideov3; fetched and verified "
        "on first use) or a super-resolution checkpoint file of any architecture spandrel "
        "knows (ESRGAN, compact, SwinIR, HAT, DAT, SPAN, ...). A model also runs at "
        "--upscale 1: the background is enhanced at the source's size.")
    bg_tile: int = opt(
        0, "Tile side in source pixels for the background model (lower it if memory runs "
        "out); 0 = automatic from free memory.", min=0, max=8192)
    face_upsample: bool = opt(
        False, "Upsample restored faces that are larger than 512 px in the output with the "
        "background model before pasting, instead of enlarging them in the warp (needs a "
        "--background model).")

    def __post_init__(self) -> None:
        if self.faces is not None:
            object.__setattr__(self, "faces", tuple(int(i) for i in self.faces))
            bad = [i for i in self.faces if i < 1]
            if bad:
                raise UsageError(f"--faces: {bad[0]} is not a track ID (IDs count from 1)")
        if self.track_settings is not None:
            from .tracksettings import format_track_settings, load_track_settings

            # a file is read here, once: the options then hold what it says
            object.__setattr__(self, "track_settings", format_track_settings(
                load_track_settings(self.track_settings)) or None)
        validate(self)
