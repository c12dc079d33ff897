"""The contact sheet of ``vidrestore track --sheet``: one tile per reported track, on real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from synth import load_rgb, pan_frames, write_clip

import vidrestore.faces.api
from vidrestore.cli import cli
from vidrestore.errors import OutputError
from vidrestore.faces.align import TEMPLATE_512
from vidrestore.faces.api import track_video
from vidrestore.faces.detectors import YuNetDetector
from vidrestore.faces.records import FrameFaces, TrackedFace
from vidrestore.faces.sheet import (
    BACKGROUND,
    HEADER,
    PAD,
    TILE,
    SheetCollector,
    frontality,
    tile_boxes,
)
from vidrestore.io.frame import Frame
from vidrestore.testing.scenes import background


@pytest.fixture(scope="module")
def yunet(yunet_path: Path) -> YuNetDetector:
    return YuNetDetector(yunet_path)


@pytest.fixture(scope="module")
def two_faces(media_dir: Path) -> np.ndarray:
    """The two-people photo, shrunk so both faces fit a 480x272 frame."""
    photo = load_rgb(media_dir / "fr_two_people.jpg")
    return cv2.resize(photo, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def two_face_clip(tmp_path_factory, two_faces) -> Path:
    frames = pan_frames(two_faces, 20, (480, 272), step=(0.6, 0.2))
    return write_clip(tmp_path_factory.mktemp("sheet") / "two.mp4", frames, audio=False)


@pytest.fixture(scope="module")
def empty_clip(tmp_path_factory) -> Path:
    frames = pan_frames(background(400, 300, seed=3), 8, (320, 240))
    return write_clip(tmp_path_factory.mktemp("sheet") / "empty.mp4", frames, audio=False)


def read_sheet(path: Path) -> np.ndarray:
    """The sheet as 8-bit RGB (it must be a 3-channel 8-bit PNG)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def found_tiles(sheet: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The tiles on a sheet, found from the picture alone: solid non-background blocks below
    the header, as ``(x, y, w, h)`` in reading order."""
    ink = np.any(sheet != BACKGROUND, axis=2).astype(np.uint8)
    ink[:HEADER] = 0
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=4)
    blocks = [tuple(int(v) for v in stats[i, :4]) for i in range(1, n)
              if stats[i, 2] >= TILE and stats[i, 3] >= TILE]
    return sorted(blocks, key=lambda b: (b[1], b[0]))


def check_tiles(sheet: np.ndarray, count: int) -> list[np.ndarray]:
    """Exactly ``count`` tiles where the fixed geometry puts them, nothing but background
    elsewhere below the header (past the last tile included); returns the tiles' crops."""
    boxes = tile_boxes(count)
    assert found_tiles(sheet) == boxes
    outside = np.ones(sheet.shape[:2], bool)
    outside[:HEADER] = False
    for x, y, w, h in boxes:
        outside[y : y + h, x : x + w] = False
    assert np.all(sheet[outside] == BACKGROUND)
    crops = [sheet[y + PAD : y + PAD + TILE, x + PAD : x + PAD + TILE] for x, y, _, _ in boxes]
    for crop in crops:
        assert crop.std() > 20  # a picture, not a blank panel
    return crops


def assert_upright_centred_face(crop: np.ndarray, yunet: YuNetDetector) -> None:
    """YuNet finds one face in the tile, its eyes and nose near the template's places."""
    big = cv2.resize(crop, (2 * TILE, 2 * TILE), interpolation=cv2.INTER_CUBIC)
    faces = yunet.detect([big])[0]
    assert len(faces) == 1
    expected = TEMPLATE_512[:3] * (2 * TILE / 512)
    assert np.abs(faces[0].landmarks[:3] - expected).max() < 0.08 * 2 * TILE


def test_sheet_has_one_tile_per_track_of_two_faces(two_face_clip, tmp_path, yunet) -> None:
    sheet = tmp_path / "tracks.png"
    result = track_video(two_face_clip, tmp_path / "p.mp4", tmp_path / "t.json",
                         progress=False, detector=yunet, sheet=sheet)
    assert result.ids == [1, 2]
    picture = read_sheet(sheet)
    for crop in check_tiles(picture, len(result.tracks)):
        assert_upright_centred_face(crop, yunet)
    assert np.any(picture[:HEADER] != BACKGROUND)  # the header line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_sheet_of_a_real_clip_shows_a_detected_frame(media_dir, tmp_path, yunet,
                                                     monkeypatch) -> None:
    made: list[SheetCollector] = []

    class Spy(SheetCollector):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(vidrestore.faces.api, "SheetCollector", Spy)
    sheet = tmp_path / "s.png"
    result = track_video(media_dir / "vr_face_4.mp4", None, None, start=0, end=1.0,
                         progress=False, detector=yunet, sheet=sheet)
    assert result.ids == [1]
    [crop] = check_tiles(read_sheet(sheet), 1)
    [collector] = made
    pick = collector.picks[1]
    entry = next(f for f in result.track(1).frames if f.frame == pick.frame)
    assert not entry.interpolated and entry.score is not None and entry.landmarks_raw
    assert np.array_equal(crop, pick.crop) and pick.crop.dtype == np.uint8
    assert_upright_centred_face(crop, yunet)


def test_the_pick_prefers_detected_sharp_frontal_faces_and_is_8_bit(two_faces,
                                                                    yunet) -> None:
    det = max(yunet.detect([two_faces])[0], key=lambda d: d.score)
    raw = det.landmarks
    assert frontality(TEMPLATE_512) > 0.97
    profile = raw.copy()
    profile[2] = raw[1]  # nose tip on an eye: seen from the side
    assert frontality(profile) == 0.0
    sharp = two_faces.astype(np.uint16) * 257
    soft = cv2.GaussianBlur(sharp, (0, 0), 0.8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)

    def face(n: int, score: float | None, points: np.ndarray | None) -> TrackedFace:
        return TrackedFace(7, n, det.box, score, points, raw, points is None)

    collector = SheetCollector()
    cases = [(blurred, face(0, 0.95, raw)),       # detected but blurred
             (sharp, face(1, None, None)),        # sharper, but bridged
             (sharp, face(2, 0.95, profile)),     # sharper, detected, not frontal
             (soft, face(3, 0.9, raw)),           # the one to show
             (sharp, face(4, None, None))]        # a bridged frame never wins
    for n, (pixels, f) in enumerate(cases):
        collector.add(FrameFaces(Frame(n, n, 1 / 25, pixels), [f], False))
    pick = collector.picks[7]
    assert pick.frame == 3 and not pick.interpolated
    plain = SheetCollector()  # the sharp bridged frame alone would have been shown
    plain.add(FrameFaces(Frame(1, 1, 1 / 25, sharp), [cases[1][1]], False))
    assert plain.picks[7].quality > pick.quality
    assert pick.crop.dtype == np.uint8 and pick.crop.shape == (TILE, TILE, 3)
    assert_upright_centred_face(pick.crop, yunet)


def test_a_clip_without_faces_gives_a_sheet_that_says_so(empty_clip, tmp_path,
                                                         yunet) -> None:
    sheet = tmp_path / "none.png"
    result = track_video(empty_clip, None, None, progress=False, detector=yunet, sheet=sheet)
    assert result.tracks == ()
    picture = read_sheet(sheet)
    assert found_tiles(picture) == []
    assert np.any(picture[:HEADER] != BACKGROUND) and np.any(picture[HEADER:] != BACKGROUND)


def test_a_failed_sheet_leaves_no_output_anywhere(empty_clip, tmp_path, yunet,
                                                  monkeypatch) -> None:
    def fail(*_: object, **__: object) -> None:
        raise OutputError("no sheet today")

    monkeypatch.setattr(vidrestore.faces.api, "render_sheet", fail)
    with pytest.raises(OutputError, match="no sheet today"):
        track_video(empty_clip, tmp_path / "p.mp4", tmp_path / "t.json", progress=False,
                    detector=yunet, sheet=tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []


def test_cli_sheet_and_its_refusals(two_face_clip, tmp_path, mirror_dir, monkeypatch) -> None:
    monkeypatch.setenv("VIDRESTORE_MIRROR", str(mirror_dir))
    runner = CliRunner()
    sheet = tmp_path / "tracks.png"
    res = runner.invoke(cli, ["track", str(two_face_clip), "--sheet", str(sheet),
                              "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 face track(s)" in res.output and f"sheet: {sheet}" in res.output
    check_tiles(read_sheet(sheet), 2)
    before = sheet.read_bytes()
    out, rep = tmp_path / "p.mp4", tmp_path / "t.json"
    refused = [
        [str(sheet)],                                      # exists, no --overwrite
        [str(tmp_path / "no" / "s.png"), "--overwrite"],   # missing folder
        [str(two_face_clip), "--overwrite"],               # the input
        [str(rep), "--overwrite"],                         # another output of the run
        [str(tmp_path / "s.jpg"), "--overwrite"],          # not a PNG
    ]
    for args in refused:
        res = runner.invoke(cli, ["track", str(two_face_clip), "-o", str(out), "--report",
                                  str(rep), "--no-progress", "--sheet", *args])
        assert res.exit_code == 4 and len(res.output.strip().splitlines()) == 1, res.output
        assert not out.exists() and not rep.exists()
    assert sheet.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.png"]
    res = runner.invoke(cli, ["track", str(two_face_clip), "--sheet", str(sheet),
                              "--overwrite", "--no-progress", "--json"])
    assert res.exit_code == 0 and '"sheet": ' in res.output
