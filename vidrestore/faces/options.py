"""Options of the face stage (detection, tracking, smoothing): one definition for every host."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import opt, validate

DETECTORS = ("yunet", "retinaface")


@dataclass(frozen=True)
class FaceOptions:
    """How faces are found, followed and steadied."""

    detector: str = opt(
        "yunet", "Face detector: 'yunet' (fast, default) or 'retinaface' (ResNet-50, as in the "
        "published CodeFormer pipeline; best on a GPU).", choices=DETECTORS)
    score_threshold: float = opt(
        0.7, "Detections scoring below this are ignored.", min=0.05, max=0.99)
    nms_threshold: float = opt(
        0.3, "Overlap (IoU) above which two detections are taken for the same face.",
        min=0.05, max=0.95)
    detect_size: int = opt(
        640, "Long side in pixels of the picture the detector sees: larger frames are shrunk to "
        "it; smaller faces are found by --scan-every and followed in crops at full resolution.",
        min=128, max=4096)
    dither: bool = opt(
        True, "Shift the detector's sampling grid from frame to frame, so its position-dependent "
        "landmark error becomes noise the smoother removes (steadier, more accurate landmarks).")
    min_face: float = opt(
        20.0, "Faces narrower than this many frame pixels are neither tracked nor restored.",
        min=4.0, max=4096.0)
    scan_every: int = opt(
        15, "Frames between full-resolution scans (in tiles) for faces too small to be seen at "
        "--detect-size; also done on the first frame and after each scene cut. 0 = never.",
        min=0, max=1000)
    smooth: float = opt(
        1.0, "Landmark smoothing strength: 0 = raw detections, 1 = default, higher = steadier.",
        min=0.0, max=20.0)
    register: bool = opt(
        True, "Also follow each face by registering its pixels to a reference view of it, so "
        "the alignment moves with the face itself and not with the detector's pose-dependent "
        "landmark error (e.g. under-reported head roll).")
    lookahead: int = opt(
        12, "Frames each frame waits for, so its landmarks are smoothed with what follows and "
        "gaps up to this long are interpolated (ignored in causal mode).", min=0, max=120)
    max_gap: int = opt(
        5, "Frames a face may go undetected and keep its track; such gaps are bridged (a face "
        "hidden longer gets its ID back if it reappears where it was heading).", min=0, max=120)
    min_hits: int = opt(
        2, "Detections a new track needs before it is reported (a track still present at the end "
        "of the input is always reported).", min=1, max=30)
    confirm_score: float = opt(
        0.85, "Causal mode: a new face detected with at least this score is restored from its "
        "first frame; a less certain one waits for --min-hits detections. 1 = always wait.",
        min=0.05, max=1.0)
    causal: bool = opt(
        False, "No look-ahead: every frame is final as soon as it is pushed (live streams); "
        "smoothing is a forward filter and gaps are coasted, not interpolated.")
    cut_threshold: float = opt(
        0.2, "Scene-cut threshold: colour-histogram distance (0-1) between consecutive frames "
        "that starts a new scene, where tracks end. 1 = never cut.", min=0.0, max=1.0)
    detect_every: int = opt(
        1, "Run the detector on every Nth frame only, while every face is followed by "
        "registration (--register) in between: faster, above all on the CPU. The detector "
        "still runs on the next frame whenever a face is lost and after each scene cut; a face "
        "that enters is found up to N-1 frames late. 1 = every frame.", min=1, max=30)
    batch: int = opt(
        1, "Frames per detector call (a batch of frames waits to be complete).", min=1, max=64,
        flag="--detect-batch")

    def __post_init__(self) -> None:
        validate(self)
