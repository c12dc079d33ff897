"""Exact boxes of decoded pictures, and restored frames made from boxes alone."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter
from synth import load_rgb, pan_frames, write_clip

from vidrestore.faces import FaceOptions
from vidrestore.io import VideoReader, VideoWriter, WriterOptions
from vidrestore.io.color import to_rgb
from vidrestore.io.region import PictureRegions, supports_regions
from vidrestore.restore.options import RestoreOptions
from vidrestore.restore.pipeline import Restorer

FORMATS = [("yuv420p", ()), ("yuv422p", ()), ("yuvj444p", ()),
           ("yuv420p", ("-colorspace", "bt709", "-color_range", "tv", "-vf", "setsar=4/3"))]


def _clip(tmp: Path, pix_fmt: str, extra: tuple[str, ...]) -> Path:
    import subprocess

    out = tmp / f"{pix_fmt}_{len(extra)}.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=25:d=0.2", *extra, "-pix_fmt", pix_fmt,
                    "-c:v", "libx264", "-preset", "ultrafast", str(out)], check=True)
    return out


@pytest.mark.parametrize(("pix_fmt", "extra"), FORMATS)
def test_a_box_converts_as_the_whole_picture_does(tmp_path: Path, pix_fmt: str,
                                                  extra: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    regions, whole = PictureRegions(), VideoReformatter()
    with av.open(str(_clip(tmp_path, pix_fmt, extra))) as c:
        for picture in c.decode(video=0):
            assert picture.format.name == pix_fmt and supports_regions(picture)
            full = to_rgb(whole, picture, deep=False)
            w, h = picture.width, picture.height
            boxes = [(0, 0, w, h), (0, 0, 1, 1), (w - 3, h - 5, w, h)]
            for _ in range(12):
                x0, y0 = int(rng.integers(0, w - 1)), int(rng.integers(0, h - 1))
                boxes.append((x0, y0, int(rng.integers(x0 + 1, w + 1)),
                              int(rng.integers(y0 + 1, h + 1))))
            for x0, y0, x1, y1 in boxes:
                assert np.array_equal(regions(picture, (x0, y0, x1, y1)), full[y0:y1, x0:x1])
            # cutting boxes out leaves the picture as it was
            assert np.array_equal(to_rgb(VideoReformatter(), picture, deep=False), full)
    with pytest.raises(ValueError, match="not inside"):
        regions(picture, (0, 0, w + 1, h))


def test_a_copied_picture_loses_its_chroma_siting(tmp_path: Path) -> None:
    """Why boxes are cut by FFmpeg's crop filter: the same samples in a new picture convert
    otherwise (the decoder's chroma siting is gone)."""
    with av.open(str(_clip(tmp_path, "yuv420p", ()))) as c:
        picture = next(c.decode(video=0))
    copy = av.VideoFrame.from_ndarray(picture.to_ndarray(), format="yuv420p")
    copy.colorspace, copy.color_range = picture.colorspace, picture.color_range
    a, b = (to_rgb(VideoReformatter(), p, deep=False) for p in (picture, copy))
    assert not np.array_equal(a, b)


@pytest.fixture(scope="module")
def faces_clip(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    img = cv2.resize(load_rgb(media_dir / "fr_two_people.jpg"), (450, 264),
                     interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("region") / "faces.mp4"
    return write_clip(path, pan_frames(img, 8, (400, 240), step=(0.6, 0.2)), audio=False)


def _restored(clip: Path, ckpt: Path, detector, *, whole: bool) -> list:
    r = Restorer(RestoreOptions(weights=str(ckpt), batch_size=2), FaceOptions(),
                 detector=detector)
    with VideoReader(clip, lazy_rgb=True) as reader:
        frames = list(reader)
    if whole:
        for f in frames:
            f.pixels  # noqa: B018 - converted whole before the restorer sees them
    return list(r.process_pairs(frames))


def test_faces_restored_from_boxes_alone_equal_the_whole_picture_way(
        faces_clip: Path, ckpt: Path, detector, tmp_path: Path) -> None:
    by_box = _restored(faces_clip, ckpt, detector, whole=False)
    whole = _restored(faces_clip, ckpt, detector, whole=True)
    assert len(by_box) == len(whole) == 8
    for (src, out), (_, ref) in zip(by_box, whole, strict=True):
        assert src.regions  # the source picture was never converted whole...
        assert out.patches is not None and len(out.patches) >= 1  # ...nor the output
        assert ref.patches is None and ref.changed
        assert np.array_equal(out.pixels, ref.pixels)  # converted now: the same values
    # and the writer converts the patches back as it converts the boxes of whole pixels
    outputs = []
    for name, pairs in (("box", _restored(faces_clip, ckpt, detector, whole=False)),
                        ("whole", whole)):
        dst = tmp_path / f"{name}.mkv"
        with VideoWriter(dst, source=pairs[0][0].source and probe_info(faces_clip),
                         options=WriterOptions(codec="ffv1")) as w:
            for _, out in pairs:
                w.write(out)
        with av.open(str(dst)) as c:
            outputs.append([f.to_ndarray() for f in c.decode(video=0)])
    assert len(outputs[0]) == 8
    assert all(np.array_equal(a, b) for a, b in zip(*outputs, strict=True))


def probe_info(path: Path):
    from vidrestore.io import probe

    return probe(path)
