"""The text overlay, on decoded pixels of both render paths: legible to a real OCR engine
(tesseract) in every default variant, no tofu for °, ², é and CJK, each position, the
outline and the box, the time zone, the per-variant opt-out, and the shared frame left
as it was."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageChops

from livecam import config
from livecam.camera.base import Frame, Planes
from livecam.camera.picam import lores_size
from livecam.camera.testpattern import TestPatternCamera
from livecam.config import DEFAULT_VARIANTS, OverlayConfig, VariantConfig
from livecam.loop import Publisher
from livecam.render import Renderer, fast
from livecam.render.overlay import MISSING, Overlay, overlay_for
from livecam.targets.local import LocalTarget
from livecam.testimage import photo_like

WHEN = datetime(2026, 12, 7, 14, 5, 9, tzinfo=UTC)
PATHS = ["planes", "pillow"]
GREY = (128, 128, 128)


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def render(
    image: Image.Image,
    path: str,
    variants: tuple[VariantConfig, ...] = (VariantConfig("v.jpeg"),),
    seq: int = 1,
    title: str = "Roof",
    **overlay: Any,
) -> dict[str, Image.Image]:
    ov = overlay_for(OverlayConfig(**{"enabled": True, **overlay}), title)
    r = Renderer(variants, fast=path == "planes", overlay=ov)
    if path == "planes":
        frame = Frame(None, WHEN, Planes(*(np.array(p) for p in fast.planes_of(image))))
    else:
        frame = Frame(image, WHEN)
    return {x.name: decode(x.data) for x in r.render(frame, seq=seq)}


def ink(image: Image.Image, background: tuple[int, int, int] = GREY) -> Image.Image:
    """Where `image` differs visibly from a flat `background` (JPEG noise aside)."""
    diff = ImageChops.difference(image, Image.new("RGB", image.size, background)).convert("L")
    return diff.point(lambda v: 255 if v > 40 else 0)


# --- legibility: a real OCR engine ---------------------------------------------------


def ocr_line(image: Image.Image, line: int) -> str:
    """tesseract's reading of one line of light text `line` pixels high: binarised (the
    text's own white against the rest) and scaled to the size it reads best, as OCR
    set-ups do."""
    grey = image.convert("L")
    scale = max(1, round(48 / line))
    grey = grey.resize((grey.width * scale, grey.height * scale), Image.Resampling.LANCZOS)
    binary = grey.point(lambda v: 0 if v > 215 else 255)
    buf = io.BytesIO()
    binary.save(buf, format="PNG")
    whitelist = "tessedit_char_whitelist=0123456789-: ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    result = subprocess.run(
        ["tesseract", "stdin", "stdout", "--psm", "7", "-c", whitelist],
        input=buf.getvalue(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return result.stdout.decode().strip()


def test_camera_frame(size: tuple[int, int]) -> Frame:
    camera = TestPatternCamera(*size, now=lambda: WHEN, lores=lores_size(size, DEFAULT_VARIANTS))
    return camera.capture()


test_camera_frame.__test__ = False  # type: ignore[attr-defined]


@pytest.mark.skipif(not shutil.which("tesseract"), reason="needs tesseract-ocr (system-deps)")
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("scene", ["test camera", "photo"])
def test_default_overlay_reads_back_in_every_default_variant(scene: str, path: str) -> None:
    size = (2028, 1520)
    ov = Overlay(OverlayConfig(enabled=True), "livecam")
    r = Renderer(DEFAULT_VARIANTS, fast=path == "planes", overlay=ov)
    frame = test_camera_frame(size) if scene == "test camera" else Frame(photo_like(*size), WHEN)
    with frame:
        if path == "pillow" and frame.image is not None:
            frame = Frame(frame.image.convert("RGB"), WHEN)
        out = r.render(frame, seq=7)
    expected = WHEN.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    assert len(out) == 3
    for variant in out:
        image = decode(variant.data)
        stamp = ov.stamp(expected, image.size)
        assert stamp is not None
        x0, y0, x1, y1 = stamp.bounds
        m = (y1 - y0) // 3
        crop = image.crop((max(0, x0 - m), max(0, y0 - m), x1 + m, min(image.height, y1 + m)))
        text = ocr_line(crop, y1 - y0)
        assert re.sub(r"\D", "", text) == re.sub(r"\D", "", expected), (variant.name, text)
        assert text.replace(" ", "") == expected.replace(" ", ""), (variant.name, text)


def test_caption_beyond_latin_has_no_tofu() -> None:
    """°, ², é from DejaVu Sans, the CJK character from a fallback font; none is drawn
    as a font's missing-glyph box."""
    caption = "25°C 3 m² café 日本"
    ov = Overlay(OverlayConfig(enabled=True, text="{title}"), caption)
    stamp = ov.stamp(ov.text(WHEN, 1, {}), (640, 480))
    assert stamp is not None
    px = 24  # 0.05 of 480
    for ch in "°²é日本":
        index = ov._font_for(ch)
        piece = ov._piece(ch, index, px)
        assert piece.fg.getbbox() is not None, ch  # it has ink
        for font in range(len(ov._files)):  # ... and is no font's missing glyph
            tofu = ov._piece(MISSING, font, px)
            assert piece.fg.tobytes() != tofu.fg.tobytes() or piece.fg.size != tofu.fg.size, ch
        assert piece in [p for p, _, _ in stamp.pieces]
    assert ov._font_for("日") > 0, "a CJK font (fonts-droid-fallback, system-deps) is needed"
    for path in PATHS:
        grey = Image.new("RGB", (640, 480), GREY)
        out = render(grey, path, title=caption, text="{title}")["v.jpeg"]
        for piece, x, y in stamp.pieces:
            box = (x, y, x + piece.fg.width, y + piece.fg.height)
            if piece.fg.getbbox():
                assert ink(out.crop(box)).getbbox(), (path, box)


# --- where and how it is drawn ---------------------------------------------------------

POSITIONS = {
    # position: (x range of the caption's centre, y range), as fractions of the size
    "top-left": ((0.0, 0.5), (0.0, 0.2)),
    "top-right": ((0.5, 1.0), (0.0, 0.2)),
    "bottom-left": ((0.0, 0.5), (0.8, 1.0)),
    "bottom-right": ((0.5, 1.0), (0.8, 1.0)),
    "top": ((0.45, 0.55), (0.0, 0.2)),
    "bottom": ((0.45, 0.55), (0.8, 1.0)),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("position", sorted(POSITIONS))
def test_each_position_draws_there_and_nowhere_else(path: str, position: str) -> None:
    w, h = 640, 480
    out = render(Image.new("RGB", (w, h), GREY), path, text="88:88", position=position)
    left, top, right, bottom = ink(out["v.jpeg"]).getbbox() or (0, 0, 0, 0)
    (xa, xb), (ya, yb) = POSITIONS[position]
    cx, cy = (left + right) / 2 / w, (top + bottom) / 2 / h
    assert xa <= cx <= xb and ya <= cy <= yb, (left, top, right, bottom)
    assert 0.03 * h < bottom - top < 0.1 * h  # size = 0.05 of the height, plus the outline
    margin = min(left, top, w - right, h - bottom)
    assert 0 < margin < 0.05 * h  # near its edges, inside the image
    if "left" in position or "right" in position:
        assert min(left, w - right) < 0.05 * w


@pytest.mark.parametrize("path", PATHS)
def test_outline_box_and_none(path: str) -> None:
    image = Image.new("RGB", (640, 480), GREY)
    dark = {}
    for background in ("outline", "box", "none"):
        out = render(image, path, text="88:88", position="top-left", background=background)
        region = np.asarray(out["v.jpeg"].convert("L").crop((0, 0, 320, 60)))
        assert (region > 220).sum() > 100, background  # the white text
        dark[background] = int((region < 70).sum())
    assert dark["none"] == 0
    assert dark["outline"] > 100  # black around the letters
    assert dark["box"] > 3 * dark["outline"]  # the whole box, 60% black over grey
    out = render(image, path, text="88:88", position="top-left", background="box")["v.jpeg"]
    corner = out.convert("L").getpixel((12, 12))
    assert isinstance(corner, int) and abs(corner - round(128 * 0.4)) < 12


@pytest.mark.parametrize("path", PATHS)
def test_colour(path: str) -> None:
    out = render(Image.new("RGB", (640, 480), GREY), path, text="88", size=0.2, colour="#ff0000")[
        "v.jpeg"
    ]
    stamp = np.asarray(out)
    red = (stamp[..., 0] > 200) & (stamp[..., 1] < 80) & (stamp[..., 2] < 80)
    assert red.sum() > 500


@pytest.mark.parametrize("path", PATHS)
def test_time_zone(path: str) -> None:
    """14:05 UTC is 23:05 in Tokyo: the same pixels as that text written out."""
    image = Image.new("RGB", (640, 480), GREY)
    tokyo = render(image, path, text="%H:%M %Z", timezone="Asia/Tokyo")["v.jpeg"]
    literal = render(image, path, text="23:05 JST", timezone="UTC")["v.jpeg"]
    utc = render(image, path, text="%H:%M %Z", timezone="UTC")["v.jpeg"]
    assert tokyo.tobytes() == literal.tobytes()
    assert tokyo.tobytes() != utc.tobytes()


@pytest.mark.parametrize("path", PATHS)
def test_a_variant_opts_out(path: str) -> None:
    image = photo_like(640, 480)
    variants = (
        VariantConfig("stamped.jpeg", 320, 240),
        VariantConfig("clean.jpeg", 320, 240, quality=80, overlay=False),
        VariantConfig("full.jpeg"),
        VariantConfig("full-clean.jpeg", quality=80, overlay=False),
    )
    out = render(image, path, variants, text="88:88")
    r = Renderer(variants, fast=path == "planes")
    frame = Frame(None, WHEN, fast.planes_of(image)) if path == "planes" else Frame(image, WHEN)
    plain = {x.name: decode(x.data) for x in r.render(frame)}
    for name in ("clean.jpeg", "full-clean.jpeg"):
        assert out[name].tobytes() == plain[name].tobytes(), name
    for name in ("stamped.jpeg", "full.jpeg"):
        assert out[name].tobytes() != plain[name].tobytes(), name


def test_shared_pixels_are_left_as_they_were() -> None:
    """The fast path draws into a frame's own writable planes and lores copy (a Pi
    camera's buffers, mapped for writing): they are restored once encoded. Read-only
    ones are copied, not written."""
    size = (1280, 720)
    camera = TestPatternCamera(*size, now=lambda: WHEN, lores=lores_size(size, DEFAULT_VARIANTS))
    with camera.capture() as shared:
        assert shared.planes is not None and shared.lores is not None
        planes, lores = (Planes(*(p.copy() for p in ps)) for ps in (shared.planes, shared.lores))
    ov = Overlay(OverlayConfig(enabled=True))
    r = Renderer(DEFAULT_VARIANTS, overlay=ov)
    before = [p.copy() for p in (*planes, *lores)]
    stamped = r.render(Frame(None, WHEN, planes, lores), seq=3)
    assert all((a == b).all() for a, b in zip(before, [*planes, *lores], strict=True))
    locked = Planes(*(p.copy() for p in before[:3]))
    for p in locked:
        p.setflags(write=False)
    again = r.render(Frame(None, WHEN, locked), ["live.jpeg"], seq=3)
    assert again[0].data == stamped[0].data


def test_a_frame_captured_during_a_render_shows_no_caption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test camera lends one buffer to every capture within a second (the
    publisher's and the preview's): the caption drawn for one frame never shows in
    another, nor stays in the buffer."""
    size = (1280, 720)
    camera = TestPatternCamera(*size, now=lambda: WHEN, lores=lores_size(size, DEFAULT_VARIANTS))
    with camera.capture() as first:
        assert first.planes is not None and first.lores is not None
        clean = [p.copy() for p in (*first.planes, *first.lores)]
        seen: list[list[np.ndarray]] = []
        encode = fast.encode

        def peek_while_encoding(planes: Planes, quality: int) -> bytes:
            with camera.capture() as other:  # as the preview's capture would
                assert other.planes is not None and other.lores is not None
                seen.append([p.copy() for p in (*other.planes, *other.lores)])
            return encode(planes, quality)

        monkeypatch.setattr(fast, "encode", peek_while_encoding)
        r = Renderer(DEFAULT_VARIANTS, overlay=Overlay(OverlayConfig(enabled=True)))
        r.render(first, seq=3)
    assert len(seen) == len(DEFAULT_VARIANTS)
    for pixels in seen:
        assert all((a == b).all() for a, b in zip(clean, pixels, strict=True))
    with camera.capture() as later:
        assert later.planes is not None and later.lores is not None
        after = [*later.planes, *later.lores]
        assert all((a == b).all() for a, b in zip(clean, after, strict=True))


# --- the text --------------------------------------------------------------------------


def test_fields_and_missing_metadata() -> None:
    text = "{title} #{seq} {exposure} {exposure_time} {gain} {lux} {colour_temperature}K"
    ov = Overlay(OverlayConfig(enabled=True, text=text, timezone="UTC"), "Roof")
    meta = {"ExposureTime": 4000, "AnalogueGain": 2.0, "Lux": 812.4, "ColourTemperature": 5600}
    assert ov.text(WHEN, 42, meta) == "Roof #42 1/250 s 4000 2.0 812 5600K"
    assert ov.text(WHEN, 42, {}) == "Roof #42     K"
    odd = {"ExposureTime": "long", "AnalogueGain": None, "Lux": float("nan"), "Nope": 1}
    assert ov.text(WHEN, 1, odd) == "Roof #1    nan K"
    spec = Overlay(OverlayConfig(enabled=True, text="{lux:.1f} lx {seq:05d}"), "")
    assert spec.text(WHEN, 7, {"Lux": 3}) == "3.0 lx 00007"
    slow = Overlay(OverlayConfig(enabled=True, text="{exposure}"), "")
    assert slow.text(WHEN, 1, {"ExposureTime": 2_500_000}) == "2.5 s"
    braces = Overlay(OverlayConfig(enabled=True, text="{{%H}}", timezone="UTC"), "")
    assert braces.text(WHEN, 1, {}) == "{14}"


def test_publisher_passes_each_frame_its_seq(tmp_path: Path) -> None:
    seen: list[int] = []

    class Recording(Renderer):
        def render(self, frame: Frame, names: Any = None, *, seq: int = 0) -> list[Any]:
            seen.append(seq)
            return super().render(frame, names, seq=seq)

    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240},
            "target": {"kind": "local", "path": str(tmp_path)},
            "overlay": {"enabled": True, "text": "#{seq}"},
        }
    )
    p = Publisher(
        cfg,
        lambda: TestPatternCamera(320, 240),
        LocalTarget(tmp_path),
        renderer=Recording(cfg.variants, overlay=overlay_for(cfg.overlay)),
        site_files=lambda: [],
    )
    try:
        p.start()
        p.publish_next()
        p.publish_next()
    finally:
        p.close()
    assert seen == [1, 2]


def test_demo_shows_the_overlay() -> None:
    assert config.demo("/tmp/livecam-demo-never-written").overlay.enabled
