"""Upscaled output: real faces, the real YuNet detector, real Real-ESRGAN models (spandrel), the
tiny synthetic CodeFormer; real encodes through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from iomedia import ffprobe, get_clip, packets, stream, video_times
from synth import as_frames, load_rgb, pan_frames, write_clip

from vidrestore.errors import CheckpointError
from vidrestore.faces import FaceOptions, similarity_transform
from vidrestore.io.frame import Frame
from vidrestore.restore.blend import paste_face, template_mask
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.pipeline import Restorer
from vidrestore.upscale import (
    BackgroundDescriptor,
    Upscaler,
    load_background,
    output_affine,
    scaled_affine,
)
from vidrestore.upscale.tiling import run_tiled, windows

COMPACT = "realesr-animevideov3.ncnn-fp16.pth"
RRDB = "RealESRGAN_x4plus.ncnn-fp16.pth"


@pytest.fixture(scope="module")
def compact(mirror_dir: Path) -> BackgroundDescriptor:
    return load_background(mirror_dir / COMPACT, device="cpu")


@pytest.fixture(scope="module")
def photo(media_dir: Path) -> np.ndarray:
    img = load_rgb(media_dir / "fr_two_people.jpg")
    return cv2.resize(img, (450, 264), interpolation=cv2.INTER_AREA)


def _frames(photo: np.ndarray, n: int = 4, size: tuple[int, int] = (200, 120)) -> list[Frame]:
    return as_frames(pan_frames(photo, n, size, step=(0.6, 0.2)))


def _restore(ckpt: Path, detector, frames: list[Frame], background=None, **opts
             ) -> tuple[Restorer, list[tuple[Frame, Frame]]]:
    r = Restorer(RestoreOptions(weights=str(ckpt), batch_size=2, **opts), FaceOptions(),
                 detector=detector, keep_tracks=True, background=background)
    try:
        return r, list(r.process_pairs(frames))
    finally:
        r.close()


def _face_cover(r: Restorer, index: int, shape: tuple[int, ...], scale: int) -> np.ndarray:
    """Output pixels a paste of the faces of frame ``index`` may touch."""
    canvas = np.zeros(shape, np.uint8)
    ones = np.ones((512, 512, 3), np.float32)
    for faces in r.tracks.values():
        for f in faces:
            if f.frame_index == index:
                affine = output_affine(similarity_transform(f.landmarks), scale)
                paste_face(canvas, ones, template_mask(), affine)
    return canvas[..., 0] > 0


def _hf_energy(img: np.ndarray) -> float:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.mean(cv2.Laplacian(gray, cv2.CV_32F) ** 2))


# -- geometry and tiling -------------------------------------------------------------------------
def test_output_affine_keeps_pixel_centres() -> None:
    a = np.array([[2.0, 0.3, 5.0], [-0.3, 2.0, -7.0]])
    for s in (2, 3, 4):
        out = output_affine(a, s)
        for x, y in ((0.0, 0.0), (10.0, 3.5), (99.0, 40.0)):
            u = s * np.array([x, y]) + (s - 1) / 2  # where OpenCV's resize puts source (x, y)
            assert np.allclose(out[:, :2] @ u + out[:, 2], a[:, :2] @ [x, y] + a[:, 2])
    big = scaled_affine(a, 4)
    p = a[:, :2] @ [3.0, 4.0] + a[:, 2]
    assert np.allclose(big[:, :2] @ [3.0, 4.0] + big[:, 2], 4 * p + 1.5)


def test_tiles_partition_the_picture() -> None:
    for h, w, tile in ((120, 200, 50), (64, 64, 0), (97, 301, 40), (33, 500, 32)):
        cover = np.zeros((h, w), np.int32)
        for win in windows(h, w, tile, 24):
            y0, y1, x0, x1 = win.core
            wy0, wy1, wx0, wx1 = win.window
            cover[y0:y1, x0:x1] += 1
            assert wy0 <= y0 and wy1 >= y1 and wx0 <= x0 and wx1 >= x1
            assert min(wy0, wx0) >= 0 and wy1 <= h and wx1 <= w
        assert (cover == 1).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lanczos_is_lanczos_at_any_size_and_depth(media_dir: Path, dtype: type) -> None:
    img = load_rgb(media_dir / "fr_two_people.jpg")[:121, :203]  # odd sizes
    full = np.iinfo(dtype).max
    pic = (img.astype(np.uint32) * (full // 255)).astype(dtype)
    for scale in (2, 3, 4):
        out = Upscaler(scale).canvas(pic)
        assert out.dtype == dtype and out.shape == (121 * scale, 203 * scale, 3)
        opencv = cv2.resize(pic, (203 * scale, 121 * scale), interpolation=cv2.INTER_LANCZOS4)
        diff = np.abs(out.astype(np.float64) - opencv) / full
        assert diff.mean() < 1 / 255 and np.percentile(diff, 99) < 8 / 255
    flat = np.full((31, 47, 3), full // 3, dtype)
    assert np.array_equal(Upscaler(2).canvas(flat), np.full((62, 94, 3), full // 3, dtype))
    gray = np.repeat(pic[..., :1], 3, axis=2)
    out = Upscaler(2).canvas(gray)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_tiled_equals_untiled_compact(compact: BackgroundDescriptor, media_dir: Path) -> None:
    img = load_rgb(media_dir / "fr_two_people.jpg")[100:228, 280:472]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    whole = compact.run(x)
    tiled = run_tiled(compact.run, x, 4, tile=48, pad=24)
    assert tiled.shape == whole.shape == (1, 3, 128 * 4, 192 * 4)
    assert float((tiled - whole).abs().max()) <= 1 / 255
    quantized = np.rint(whole[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255)
    assert np.abs(Upscaler(4, compact, tile=48).canvas(img) - quantized).max() <= 1


def test_tiled_equals_untiled_rrdb(mirror_dir: Path, media_dir: Path) -> None:
    """The 23-block RRDB (Real-ESRGAN x4plus) reaches far: its default context still gives
    the untiled result within 1/255 (a strip of four tiles keeps this affordable)."""
    rrdb = load_background(mirror_dir / RRDB, device="cpu")
    img = load_rgb(media_dir / "fr_two_people.jpg")[130:178, 300:460]
    up_whole, up_tiled = Upscaler(4, rrdb), Upscaler(4, rrdb, tile=40)
    diff = np.abs(up_tiled.canvas(img).astype(int) - up_whole.canvas(img).astype(int))
    assert diff.max() <= 1


# -- the restorer ------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [2, 3])
def test_lanczos_background_is_exact_and_faces_are_restored(ckpt, detector, photo, scale
                                                            ) -> None:
    frames = _frames(photo)
    r, pairs = _restore(ckpt, detector, frames, upscale=scale)
    assert [o.index for _, o in pairs] == [f.index for f in frames]
    for src, out in pairs:
        w, h = src.size
        assert out.size == (w * scale, h * scale) and out.pts == src.pts
        lanczos = Upscaler(scale).canvas(src.pixels)
        cover = _face_cover(r, src.index, out.pixels.shape, scale)
        assert cover.any()
        assert np.array_equal(out.pixels[~cover], lanczos[~cover])
        changed = np.any(out.pixels != lanczos, axis=2)
        assert changed[cover].mean() > 0.5


def test_model_background_outside_faces(ckpt, detector, photo, compact) -> None:
    frames = _frames(photo, 3)
    r, pairs = _restore(ckpt, detector, frames, background=compact, upscale=2)
    up = Upscaler(2, compact)
    for src, out in pairs:
        canvas = up.canvas(src.pixels)
        cover = _face_cover(r, src.index, out.pixels.shape, 2)
        diff = np.abs(out.pixels.astype(int) - canvas.astype(int))
        assert diff[~cover].max() <= 1
        assert diff[cover].max() > 10


def test_upscaled_face_has_more_detail(ckpt, detector, photo) -> None:
    frames = _frames(photo, 3, (240, 150))
    _, once = _restore(ckpt, detector, frames, upscale=1)
    r2, twice = _restore(ckpt, detector, frames, upscale=2)
    for (src, one), (_, two) in zip(once, twice, strict=True):
        cover = _face_cover(r2, src.index, two.pixels.shape, 2)
        ys, xs = np.nonzero(cover)
        box = (slice(ys.min(), ys.max()), slice(xs.min(), xs.max()))
        resized = cv2.resize(one.pixels, two.size, interpolation=cv2.INTER_LANCZOS4)
        assert _hf_energy(two.pixels[box]) > 1.5 * _hf_energy(resized[box])


def test_face_upsample_runs_the_model_on_large_faces(ckpt, detector, media_dir, compact
                                                     ) -> None:
    img = load_rgb(media_dir / "fr_two_people.jpg")
    frames = as_frames(pan_frames(img, 2, (320, 320), step=(1, 0)))
    r, plain = _restore(ckpt, detector, frames, background=compact, upscale=4)
    _, upsampled = _restore(ckpt, detector, frames, background=compact, upscale=4,
                            face_upsample=True)
    faces = [f for fs in r.tracks.values() for f in fs if f.frame_index == 0]
    affine = output_affine(similarity_transform(faces[0].landmarks), 4)
    assert np.sqrt(abs(np.linalg.det(affine[:, :2]))) < 1  # the face is > 512 px out there
    cover = _face_cover(r, 0, plain[0][1].pixels.shape, 4)
    a, b = plain[0][1].pixels.astype(int), upsampled[0][1].pixels.astype(int)
    assert np.array_equal(a[~cover], b[~cover])
    assert np.abs(a - b)[cover].max() > 10


def test_gray_source_stays_gray(ckpt, detector, photo, compact) -> None:
    gray = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    frames = _frames(gray, 2)
    for bg in (None, compact):
        _, pairs = _restore(ckpt, detector, frames, background=bg, upscale=2)
        for _, out in pairs:
            p = out.pixels.astype(int)
            assert np.abs(p[..., 0] - p[..., 1]).max() <= 1
            assert np.abs(p[..., 1] - p[..., 2]).max() <= 1


def test_sixteen_bit_frames_stay_sixteen_bit(ckpt, detector, photo, compact) -> None:
    deep = [f.with_pixels(f.pixels.astype(np.uint16) * 257 + 100) for f in _frames(photo, 2)]
    for bg in (None, compact):
        _, pairs = _restore(ckpt, detector, deep, background=bg, upscale=2)
        for src, out in pairs:
            assert out.pixels.dtype == np.uint16
            assert out.size == (2 * src.size[0], 2 * src.size[1])
            assert len(np.unique(out.pixels[..., 1] % 257)) > 50  # not 8-bit values widened


def test_host_model_is_described_and_checked(mirror_dir: Path) -> None:
    import spandrel

    model = spandrel.ModelLoader().load_from_file(mirror_dir / COMPACT)
    desc = BackgroundDescriptor.of(model, name="host model")
    assert desc.scale == 4 and desc.architecture == "RealESRGAN Compact"
    assert desc.dtype == torch.float32 and torch.float16 in desc.supported_dtypes


# -- files and commands -----------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidrestore", *args], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, photo) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    return write_clip(folder / "faces.mp4", pan_frames(photo, 8, (160, 96), step=(0.6, 0.2)))


def test_cli_upscale_keeps_timing_and_audio(tmp_path, ckpt, face_clip, mirror_in_env) -> None:
    out, side = tmp_path / "out.mp4", tmp_path / "side.mp4"
    done = _cli("restore", str(face_clip), "-o", str(out), "--weights", str(ckpt),
                "--upscale", "2", "--compare", str(side), "--no-progress")
    assert done.returncode == 0, done.stderr
    src, dst = ffprobe(face_clip), ffprobe(out)
    assert (stream(dst, "video")["width"], stream(dst, "video")["height"]) == (320, 192)
    assert stream(ffprobe(side), "video")["width"] == 640
    assert video_times(out) == video_times(face_clip)
    a_src = [(p["pts"], p["size"]) for p in packets(face_clip, "a:0")]
    a_dst = [(p["pts"], p["size"]) for p in packets(out, "a:0")]
    assert a_src == a_dst and stream(src, "audio")["codec_name"] == "aac"


def test_cli_ten_bit_stays_ten_bit(tmp_path, tmp_path_factory, ckpt, mirror_in_env) -> None:
    src = get_clip(tmp_path_factory, "hevc10_mp4")
    out = tmp_path / "out.mkv"
    done = _cli("restore", str(src), "-o", str(out), "--weights", str(ckpt), "--upscale", "2",
                "--no-progress")
    assert done.returncode == 0, done.stderr
    v = stream(ffprobe(out), "video")
    assert v["pix_fmt"].endswith("10le") and (v["width"], v["height"]) == (256, 144)
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb48le")
    assert len(np.unique(first[..., 1] % 257)) > 20


@pytest.mark.parametrize("bad, words", [
    ("tiny", ["spandrel does not recognise"]),
    ("missing", ["is not lanczos, a model name"]),
    ("text", ["not a readable PyTorch checkpoint"]),
])
def test_bad_background_is_one_line_and_writes_nothing(tmp_path, ckpt, face_clip, bad, words,
                                                       mirror_in_env) -> None:
    paths = {"tiny": ckpt, "missing": tmp_path / "nope.pth", "text": tmp_path / "text.pth"}
    paths["text"].write_text("not a model")
    out = tmp_path / "out.mp4"
    done = _cli("restore", str(face_clip), "-o", str(out), "--weights", str(ckpt),
                "--upscale", "2", "--background", str(paths[bad]), "--report",
                str(tmp_path / "r.json"), "--no-progress")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), done.stderr
    if bad != "missing":
        assert str(paths[bad]) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.pth"]


def test_face_upsample_needs_a_model_and_output_size_is_bounded(tmp_path, ckpt, face_clip
                                                                ) -> None:
    done = _cli("restore", str(face_clip), "-o", str(tmp_path / "o.mp4"), "--weights",
                str(ckpt), "--face-upsample", "--no-progress")
    assert done.returncode != 0 and "needs a --background model" in done.stderr
    big = tmp_path / "big.mp4"
    write_clip(big, [np.zeros((2400, 3000, 3), np.uint8)] * 2, audio=False)
    done = _cli("restore", str(big), "-o", str(tmp_path / "o.mp4"), "--weights", str(ckpt),
                "--upscale", "4", "--no-progress")
    assert done.returncode != 0 and "12000x9600" in done.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_wrong_named_model_file_is_refused(tmp_path, mirror_dir) -> None:
    from vidrestore.upscale.model import load_named_file

    with pytest.raises(CheckpointError, match=r"x4 .* not realesrgan-x2"):
        load_named_file("realesrgan-x2", mirror_dir / COMPACT)


def test_pipe_output_is_upscaled(ckpt, photo, mirror_in_env) -> None:
    images = pan_frames(photo, 3, (160, 96), step=(0.6, 0.2))
    raw = b"".join(np.ascontiguousarray(i).tobytes() for i in images)
    done = subprocess.run(
        [sys.executable, "-m", "vidrestore", "pipe", "--size", "160x96", "--weights", str(ckpt),
         "--upscale", "2", "--no-progress"], input=raw, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    out = np.frombuffer(done.stdout, np.uint8).reshape(3, 192, 320, 3)
    lanczos = Upscaler(2).canvas(images[0])
    assert np.mean(out[0] == lanczos) > 0.5  # the background is the Lanczos picture


def test_cpu_warning_gives_the_expected_time(ckpt, detector, mirror_dir, caplog) -> None:
    from vidrestore.restore.api import warn_background_cost

    rrdb = load_background(mirror_dir / RRDB, device="cpu")
    r = Restorer(RestoreOptions(weights=str(ckpt), upscale=2), FaceOptions(), detector=detector,
                 background=rrdb)
    with caplog.at_level("WARNING"):
        warn_background_cost(r, 720, 480, 250)
    [record] = [m for m in caplog.messages if "on the CPU" in m]
    seconds = float(record.split("about ")[1].split(" s a frame")[0])
    assert seconds > 1 and "for 250 frames" in record
    caplog.clear()
    r.upscaler = Upscaler(2, None)
    warn_background_cost(r, 720, 480, 250)
    assert not caplog.messages


def test_batch_identity_counts_upscale(tmp_path) -> None:
    from vidrestore.batch.config import BatchConfig

    base = BatchConfig(tmp_path)
    same = BatchConfig(tmp_path, restore=RestoreOptions(bg_tile=128))
    up = BatchConfig(tmp_path, restore=RestoreOptions(upscale=2))
    assert "upscale" not in json.loads(base.options_json())["restore"]
    assert base.options_hash() == same.options_hash() != up.options_hash()


def test_damaged_model_names_what_spandrel_says(tmp_path, mirror_dir) -> None:
    sd = torch.load(mirror_dir / COMPACT, weights_only=True)["params"]
    del sd["body.3.weight"]
    torch.save({"params": sd}, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError) as err:
        load_background(tmp_path / "cut.pth", device="cpu")
    text = str(err.value)
    assert "\n" not in text and str(tmp_path / "cut.pth") in text and "spandrel" in text


def test_named_background_via_weights_import(tmp_path, ckpt, face_clip, mirror_dir) -> None:
    """``weights import`` takes a background model only once it loads as that model; the
    named choice then comes from the cache (the anime video model has no published hash)."""
    import os

    env = {**os.environ, "VIDRESTORE_HOME": str(tmp_path / "cache"), "VIDRESTORE_OFFLINE": "1",
           "VIDRESTORE_MIRROR": str(mirror_dir)}
    wrong = _cli("weights", "import", "realesr-animevideov3", str(ckpt), env=env)
    assert wrong.returncode != 0 and "spandrel" in wrong.stderr
    assert _cli("weights", "import", "realesr-animevideov3", str(mirror_dir / COMPACT),
                env=env).returncode == 0
    out = tmp_path / "out.mp4"
    done = _cli("restore", str(face_clip), "-o", str(out), "--weights", str(ckpt), "--upscale",
                "2", "--background", "realesr-animevideov3", "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    assert stream(ffprobe(out), "video")["width"] == 320
