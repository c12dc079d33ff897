"""The temporal engine and the paste-back on the real (tiny, synthetic-weight) network."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from synth import texture_crop as _crop
from synth import tiny_checkpoint

from vidrestore.models import CodeFormer, load_codeformer
from vidrestore.restore.blend import (
    is_gray,
    paste_box,
    paste_face,
    shrunk_for_paste,
    template_mask,
)
from vidrestore.restore.engine import FaceEngine, FaceItem
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.temporal import RecurrentFilter, carry_probs, gaussian_weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, test_device: torch.device) -> CodeFormer:
    path = tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")
    return load_codeformer(path, device=test_device)


def _run(model: CodeFormer, crops: list[list[tuple[int, np.ndarray]]], **opts) -> list:
    """Feed frames of (track_id, crop) pairs; return the items per frame once drained."""
    eng = FaceEngine(model, RestoreOptions(**opts), device=model.device, dtype=torch.float32,
                     batch_size=opts.get("batch_size") or 3)
    frames = []
    for f, faces in enumerate(crops):
        items = [FaceItem(f, tid, c, np.array([[1.0, 0, 0], [0, 1.0, 0]]), False)
                 for tid, c in faces]
        eng.submit(f, items)
        frames.append(items)
    eng.drain()
    return frames


def test_identical_faces_give_identical_output_in_window_mode(tiny) -> None:
    crop = _crop(1)
    frames = _run(tiny, [[(1, crop.copy())] for _ in range(7)], temporal="window", window=2)
    outs = [f[0].restored for f in frames]
    assert all(o is not None and o.shape == (512, 512, 3) for o in outs)
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])


def test_window_reduces_code_flicker_on_noisy_static_face(tiny) -> None:
    base = _crop(2)
    crops = [[(1, _crop(100 + i, base, noise=14.0))] for i in range(10)]

    def flips(mode: str) -> int:
        eng_frames = _run(tiny, crops, temporal=mode, window=3)
        idx = [f[0].indices for f in eng_frames]
        return int(sum((a != b).sum() for a, b in itertools.pairwise(idx)))

    off, win, rec = flips("off"), flips("window"), flips("recurrent")
    assert off > 0, "noise should flip some codes per frame"
    assert win < off and rec < off


def test_window_does_not_cross_segments_or_tracks(tiny) -> None:
    a, b = _crop(3), _crop(4)
    # track 1 shows face a on frames 0-3, then (after a gap at frame 4) face b on frames 5-8;
    # track 2 always shows face b.
    frames = []
    for f in range(9):
        faces = [(2, b)]
        if f < 4:
            faces.insert(0, (1, a))
        elif f > 4:
            faces.insert(0, (1, b))
        frames.append(faces)
    out = _run(tiny, frames, temporal="window", window=4)
    ref_b = out[0][1].restored
    for f in range(5, 9):
        # after the gap, track 1's window holds only face b: same as track 2's output
        assert np.array_equal(out[f][0].restored, ref_b)
    ref_a = _run(tiny, [[(1, a)]], temporal="off")[0][0].restored
    for f in range(4):
        assert np.array_equal(out[f][0].restored, ref_a)


@pytest.mark.parametrize("mode", ["window", "off"])
def test_last_faces_of_a_track_do_not_wait_for_the_next_face(tiny, mode) -> None:
    """A track ending on a short batch is finished within a bounded number of frames, without
    waiting for more faces or the end of input (else every later frame would be held back)."""
    batch, window = 3, 2
    eng = FaceEngine(tiny, RestoreOptions(temporal=mode, window=window), device=tiny.device,
                     dtype=torch.float32, batch_size=batch)
    items = [FaceItem(f, 1, _crop(7), np.array([[1.0, 0, 0], [0, 1.0, 0]]), False)
             for f in range(4)]  # 4 faces: one full batch of 3 and one face left over
    for f in range(60):
        eng.submit(f, items[f : f + 1] if f < len(items) else [])
        if all(it.restored is not None for it in items):
            break
    assert all(it.restored is not None for it in items)
    bound = len(items) - 1 + batch + 2 * batch + (window if mode == "window" else 0)
    assert f <= bound, f"the last face was finished only at frame {f} (bound {bound})"
    assert not eng._segments, "the ended track's window faces are still held"


def test_off_mode_equals_plain_forward(tiny) -> None:
    crop = _crop(5)
    out = _run(tiny, [[(1, crop)]], temporal="off", fidelity=0.7)[0][0].restored
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    with torch.inference_mode():
        ref = tiny(x.to(tiny.device), w=0.7, adain=True)[0].cpu()
    ref_img = ((ref.clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 0).numpy()
    # a batch of 3 against one face: the same kernels on the CPU, maybe not on a GPU
    assert np.abs(out - ref_img).max() < (1e-5 if tiny.device.type == "cpu" else 1e-3)


def test_recurrent_follows_changes_and_smooths_agreement() -> None:
    k = 8
    filt = RecurrentFilter(gain=0.3)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    p0 = torch.full((256, k), 1.0 / k)
    p0[:, 0] += 0.5
    p0 /= p0.sum(-1, keepdim=True)
    filt.update(1, p0, ident)
    p1 = p0.clone()
    p1[:128] = torch.nn.functional.one_hot(torch.full((128,), 5), k).float()  # changed half
    p1[128:, 1] += 0.05  # small disagreement on the other half
    p1 /= p1.sum(-1, keepdim=True)
    fused = filt.update(1, p1, ident)
    assert (fused[:128].argmax(-1) == 5).all(), "changed positions follow the new frame"
    moved = (fused[128:] - p0[128:]).abs().sum(-1)
    full = (p1[128:] - p0[128:]).abs().sum(-1)
    assert (moved < 0.6 * full).all(), "agreeing positions keep most of the state"


def test_carry_probs_shifts_the_grid() -> None:
    k = 4
    p = torch.zeros(256, k)
    p[:, 0] = 1.0
    p[16 * 8 + 8] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # token (row 8, col 8)
    # current aligned face is the previous one moved right by one token (32 px)
    cur_to_prev = np.array([[1.0, 0, -32.0], [0, 1.0, 0]])
    moved = carry_probs(p, cur_to_prev)
    assert moved[16 * 8 + 9].argmax() == 1 and moved[16 * 8 + 8].argmax() == 0


def test_gaussian_weights_are_normalised_and_centred() -> None:
    w = gaussian_weights([-2, -1, 0, 1, 2], 2)
    assert abs(sum(w) - 1) < 1e-9 and w[2] == max(w) and abs(w[0] - w[4]) < 1e-12


def test_paste_touches_only_the_masked_region() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    before = frame.copy()
    face = np.ones((512, 512, 3), np.float32)
    mask = template_mask()
    # a face of ~128 px at (150, 100): frame -> aligned scale 4
    affine = np.array([[4.0, 0.0, -4 * 150.0], [0.0, 4.0, -4 * 100.0]])
    paste_face(frame, face, mask, affine)
    changed = np.any(frame != before, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 5000
    assert xs.min() >= 150 and xs.max() < 150 + 128 and ys.min() >= 100 and ys.max() < 100 + 128
    # centre of the face fully replaced by white
    assert (frame[100 + 70, 150 + 64] == 255).all()


@pytest.mark.parametrize("scale", [1.3, 2.0, 2.7, 3.99, 4.0, 7.5])
def test_a_face_shrunk_once_pastes_as_the_face_itself(scale: float) -> None:
    """The region paste shrinks each face once for both its box and its paste: shrinking
    again must change nothing, so the pixels are those of pasting the face as it came."""
    rng = np.random.default_rng(1)
    face = rng.random((512, 512, 3), dtype=np.float32)
    mask = template_mask()
    c, s_ = scale * np.cos(0.2), scale * np.sin(0.2)
    affine = np.array([[c, -s_, -c * 90 + s_ * 60], [s_, c, -s_ * 90 - c * 60]])
    once = shrunk_for_paste(face, mask, affine)
    twice = shrunk_for_paste(*once)
    assert all(np.array_equal(a, b) for a, b in zip(once, twice, strict=True))
    assert once[1].shape[0] < 512 if scale >= 2 else once[1] is mask
    frame = rng.integers(0, 256, (400, 500, 3), dtype=np.uint8)
    direct, prepared = frame.copy(), frame.copy()
    box = paste_face(direct, face, mask, affine)
    assert box is not None and box == paste_box(*once[1:], 500, 400)
    assert paste_face(prepared, *once) == box
    assert np.array_equal(direct, prepared) and not np.array_equal(direct, frame)


def test_paste_keeps_16_bit_and_gray() -> None:
    frame = np.full((200, 200, 3), 1000, np.uint16)
    face = np.zeros((512, 512, 3), np.float32)
    face[..., 0] = 1.0  # pure red face
    affine = np.array([[4.0, 0.0, -4 * 36.0], [0.0, 4.0, -4 * 36.0]])
    paste_face(frame, face, template_mask(), affine, gray=True)
    c = frame[36 + 70, 36 + 64]
    assert c.dtype == np.uint16 and c[0] == c[1] == c[2]
    assert abs(int(c[0]) - round(0.299 * 65535)) <= 2
    assert is_gray(frame) and not is_gray(np.dstack([frame[..., 0] // 2, frame[..., 1:]]))


def test_tiny_checkpoint_round_trip(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path / "t.pth")
    m = load_codeformer(path)
    assert sum(p.numel() for p in m.parameters()) < 5_000_000
