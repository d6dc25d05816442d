"""The full-size JPEG encoded in strips on two threads and joined by restart markers:
the same pixels as one encode, a valid baseline JPEG, and one piece when a join fails."""

from __future__ import annotations

import io
import itertools
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from livecam import jpegstrips, render
from livecam.camera.base import Frame
from livecam.config import VariantConfig
from livecam.render import Renderer, planes_encoder
from livecam.testimage import photo_like

np = pytest.importorskip("numpy")
pytest.importorskip("cv2")
simplejpeg = pytest.importorskip("simplejpeg")
if not planes_encoder():
    pytest.skip("simplejpeg cannot encode planes here", allow_module_level=True)

from livecam import planes, pyramid  # noqa: E402 - needs numpy and OpenCV

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def yuv(size: tuple[int, int]) -> Any:
    rgb = np.ascontiguousarray(np.asarray(photo_like(*size)))
    return planes.from_rgb(rgb, pyramid.Buffers(), "test")[0]


def encode_in_strips(pixels: Any, parts: int, quality: int = 85) -> bytes:
    w, h = pixels.size
    edges, interval = jpegstrips.plan(w, h, parts)
    strips = [
        simplejpeg.encode_jpeg_yuv_planes(*pixels.rows(a, b), quality, False)
        for a, b in itertools.pairwise(edges)
    ]
    return jpegstrips.join(strips, h, interval)


def pixels_of(data: bytes) -> Any:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize(
    ("size", "parts"),
    [((1920, 1080), 4), ((1441, 1081), 3), ((640, 480), 2), ((33, 17), 2), ((48, 200), 7)],
)
def test_joined_strips_decode_as_one_encode_does(size: tuple[int, int], parts: int) -> None:
    pixels = yuv(size)
    whole = simplejpeg.encode_jpeg_yuv_planes(*pixels, 85, False)
    joined = encode_in_strips(pixels, parts)
    assert np.array_equal(pixels_of(joined), pixels_of(whole))  # Pillow's libjpeg
    assert np.array_equal(simplejpeg.decode_jpeg(joined), simplejpeg.decode_jpeg(whole))
    # A marker and a partial byte each, and a DC coded afresh; give and take.
    assert abs(len(joined) - len(whole)) < 64 * parts + len(whole) // 1000


def test_the_join_is_one_baseline_scan_with_a_restart_interval() -> None:
    joined = encode_in_strips(yuv((640, 480)), 3)
    edges, interval = jpegstrips.plan(640, 480, 3)
    assert joined.startswith(b"\xff\xd8") and joined.endswith(b"\xff\xd9")
    assert joined.count(b"\xff\xda") == 1  # one SOS
    assert joined.count(b"\xff\xd8") == 1 and joined.count(b"\xff\xd9") == 1
    dri = joined.index(b"\xff\xdd")
    assert joined[dri + 2 : dri + 6] == b"\x00\x04" + interval.to_bytes(2, "big")
    markers = [bytes((0xFF, 0xD0 + k)) for k in range(len(edges) - 2)]
    assert all(joined.count(m) == 1 for m in markers)
    with Image.open(io.BytesIO(joined)) as image:
        assert image.size == (640, 480)
        assert "progressive" not in image.info


def test_plan_cuts_whole_mcu_rows_within_the_restart_interval_limit() -> None:
    edges, interval = jpegstrips.plan(1920, 1080, 4)
    assert edges == [0, 272, 544, 816, 1080] and interval == 17 * 120
    assert jpegstrips.plan(100, 16, 4) == ([0, 16], 7)  # one MCU row: one strip
    # A last strip of a single row would be encoded 4:2:2: the strips get longer.
    edges, _ = jpegstrips.plan(64, 16 * 4 + 1, 5)
    assert edges[-1] - edges[-2] >= 2
    # 16 bits of MCUs per interval: a very wide frame gets more strips than asked.
    edges, interval = jpegstrips.plan(20000, 8000, 2)
    assert interval <= 0xFFFF and len(edges) - 1 > 2
    assert all(e % 16 == 0 for e in edges[:-1]) and edges[-1] == 8000
    # Where no cut fits 16 bits, one piece.
    assert jpegstrips.plan(65535, 496, 2)[0] == [0, 496]


def test_strips_that_are_not_one_image_are_refused() -> None:
    pixels = yuv((256, 64))
    top, bottom = pixels.rows(0, 32), pixels.rows(32, 64)
    good = simplejpeg.encode_jpeg_yuv_planes(*top, 85, False)
    other_quality = simplejpeg.encode_jpeg_yuv_planes(*bottom, 60, False)
    with pytest.raises(ValueError, match="other tables"):
        jpegstrips.join([good, other_quality], 64, 32)
    progressive = io.BytesIO()
    photo_like(256, 32).save(progressive, "JPEG", progressive=True)
    with pytest.raises(ValueError, match="marker 0xc2"):
        jpegstrips.join([good, progressive.getvalue()], 64, 32)
    with pytest.raises(ValueError, match="SOI"):
        jpegstrips.join([good, b"not a jpeg"], 64, 32)
    with pytest.raises(ValueError, match="EOI"):
        jpegstrips.join([good, good[:-2]], 64, 32)
    with pytest.raises(ValueError, match="no strips"):
        jpegstrips.join([], 64, 32)
    with pytest.raises(ValueError, match="out of range"):
        jpegstrips.join([good, good], 64, 0)
    assert jpegstrips.join([good], 32, 32) == good
    # Heights and interval must add up, else the file would be broken: refused.
    interval = 2 * 16  # two MCU rows of 16 MCUs
    second = simplejpeg.encode_jpeg_yuv_planes(*bottom, 85, False)
    assert jpegstrips.join([good, second], 64, interval)  # the right figures join
    with pytest.raises(ValueError, match="not the interval"):
        jpegstrips.join([good, second], 64, interval - 1)
    with pytest.raises(ValueError, match="32 MCUs, not the interval's 48"):
        jpegstrips.join([good, second], 64, 48)
    with pytest.raises(ValueError, match="64 rows high, not 80"):
        jpegstrips.join([good, second], 80, interval)


# --- in the renderer -----------------------------------------------------------------------

# A frame that outweighs its smaller outputs (as 12 MP does the default variants).
BIG = (2400, 1800)
SMALL = (VariantConfig("live.jpeg"), VariantConfig("live320x240.jpeg", 320, 240))


def camera_frame(size: tuple[int, int]) -> Frame:
    array = np.array(photo_like(*size).convert("RGBX"))
    view = Image.frombuffer("RGBX", size, array, "raw", "RGBX", 0, 1)
    return Frame(view, NOW, array=array)


def test_the_renderer_encodes_a_large_frame_in_strips_with_the_same_pixels() -> None:
    frame = camera_frame(BIG)
    with_strips, one_piece = Renderer(SMALL, threads=2), Renderer(SMALL, threads=1)
    try:
        a = {r.name: r.data for r in with_strips.render(frame)}
        b = {r.name: r.data for r in one_piece.render(frame)}
    finally:
        with_strips.close()
        one_piece.close()
    assert b"\xff\xdd" in a["live.jpeg"][:2000] and b"\xff\xdd" not in b["live.jpeg"][:2000]
    assert np.array_equal(pixels_of(a["live.jpeg"]), pixels_of(b["live.jpeg"]))
    assert a["live320x240.jpeg"] == b["live320x240.jpeg"]


def test_a_frame_whose_variants_weigh_as_much_is_encoded_in_one_piece() -> None:
    variants = (VariantConfig("live.jpeg"), VariantConfig("live1280x720.jpeg", 1280, 720))
    renderer = Renderer(variants, threads=2)
    try:
        out = renderer.render(camera_frame((1920, 1080)))
    finally:
        renderer.close()
    assert b"\xff\xdd" not in out[0].data[:2000]


def test_strips_that_do_not_join_are_encoded_in_one_piece(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: object) -> bytes:
        raise ValueError("strip 1 has other tables or settings than strip 0")

    monkeypatch.setattr(render.jpegstrips, "join", refuse)
    renderer = Renderer(SMALL, threads=2)
    frame = camera_frame(BIG)
    try:
        with caplog.at_level(logging.WARNING, logger="livecam.render"):
            first = renderer.render(frame)[0].data
            renderer.render(frame)
    finally:
        renderer.close()
    assert b"\xff\xdd" not in first[:2000]
    assert pixels_of(first).shape == (BIG[1], BIG[0], 3)
    warnings = [r for r in caplog.records if "could not join" in r.getMessage()]
    assert len(warnings) == 1  # once, not per frame
