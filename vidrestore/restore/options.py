"""Options of the restore stage: one definition shared by the API, the CLI and the nodes."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from ..options import opt, validate

TEMPORAL_MODES = ("window", "recurrent", "off")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
MASKS = ("auto", "parse", "template")
GRAY_MODES = ("auto", "on", "off")


@dataclass
class RestoreOptions:
    """How faces are restored and pasted back."""

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
        "float16 on MPS, float32 on the CPU.", choices=DTYPES)
    batch_size: int = opt(0, "Faces per network batch; 0 = automatic.", min=0, max=512)
    mask: str = opt(
        "auto", "Paste-back mask: 'parse' (face parsing network), 'template' (feathered fixed "
        "shape), or 'auto' (parsing when its model file is present).", choices=MASKS)
    grayscale: str = opt(
        "auto", "Keep black-and-white sources black-and-white: auto-detect, force on, or off.",
        choices=GRAY_MODES)

    def __post_init__(self) -> None:
        if self.faces is not None:
            self.faces = tuple(int(i) for i in self.faces)
            bad = [i for i in self.faces if i < 1]
            if bad:
                raise UsageError(f"--faces: {bad[0]} is not a track ID (IDs count from 1)")
        if self.track_settings is not None:
            from .tracksettings import format_track_settings, load_track_settings

            # a file is read here, once: the options then hold what it says
            self.track_settings = format_track_settings(
                load_track_settings(self.track_settings)) or None
        validate(self)
