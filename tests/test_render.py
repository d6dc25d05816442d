"""Render: sizes, aspect, valid JPEGs, and quality that a speed change cannot degrade."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime

import pytest
from PIL import Image, ImageChops, ImageStat

from livecam import render
from livecam.camera.base import Frame
from livecam.config import DEFAULT_VARIANTS, VariantConfig
from livecam.errors import RenderError
from livecam.render import Renderer
from livecam.testimage import photo_like

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BENCH_VARIANTS = (
    VariantConfig("live.jpeg", quality=85),
    VariantConfig("live1920x1080.jpeg", 1920, 1080),
    VariantConfig("live1280x720.jpeg", 1280, 720),
    VariantConfig("live800x600.jpeg", 800, 600),
    VariantConfig("live320x240.jpeg", 320, 240),
)


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(ImageStat.Stat(diff).sum2) / (3 * a.width * a.height)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()  # the whole file decodes
    return image


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    r = Renderer(BENCH_VARIANTS)
    yield r  # type: ignore[misc]
    r.close()


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4056, 3040), [(4056, 3040), (1441, 1080), (961, 720), (800, 600), (320, 240)]),
        ((2028, 1520), [(2028, 1520), (1441, 1080), (961, 720), (800, 600), (320, 240)]),
        ((1920, 1080), [(1920, 1080), (1920, 1080), (1280, 720), (800, 450), (320, 180)]),
        ((640, 480), [(640, 480), (640, 480), (640, 480), (640, 480), (320, 240)]),
        ((1080, 1920), [(1080, 1920), (608, 1080), (405, 720), (338, 600), (135, 240)]),
    ],
)
def test_variant_sizes_keep_aspect_and_never_upscale(
    renderer: Renderer, size: tuple[int, int], expected: list[tuple[int, int]]
) -> None:
    frame = Frame(Image.new("RGB", size, (10, 200, 30)), NOW)
    out = renderer.render(frame)
    assert [r.name for r in out] == [v.name for v in BENCH_VARIANTS]
    assert [(r.width, r.height) for r in out] == expected
    for r in out:
        image = decode(r.data)
        assert image.size == (r.width, r.height)
        assert abs(r.width / r.height - size[0] / size[1]) < 0.01 * size[0] / size[1] + 1 / r.height
        assert image.getpixel((r.width // 2, r.height // 2)) == pytest.approx((10, 200, 30), abs=3)


def test_only_requested_names_are_rendered(renderer: Renderer) -> None:
    frame = Frame(Image.new("RGB", (1280, 720)), NOW)
    out = renderer.render(frame, ["live320x240.jpeg"])
    assert [r.name for r in out] == ["live320x240.jpeg"]


def test_rgbx_frames_render_like_rgb(renderer: Renderer) -> None:
    rgb = photo_like(1280, 720)
    a = renderer.render(Frame(rgb, NOW))
    b = renderer.render(Frame(rgb.convert("RGBX"), NOW))
    for x, y in zip(a, b, strict=True):
        assert psnr(decode(x.data), decode(y.data)) > 45


def test_unusable_frame_is_a_render_error(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="pixel mode 'CMYK'"):
        renderer.render(Frame(Image.new("CMYK", (64, 48)), NOW))


def test_defaults_render_three_files() -> None:
    r = Renderer(DEFAULT_VARIANTS)
    try:
        out = r.render(Frame(Image.new("RGB", (2028, 1520)), NOW))
    finally:
        r.close()
    assert [(o.name, o.width, o.height) for o in out] == [
        ("live.jpeg", 2028, 1520),
        ("live800x600.jpeg", 800, 600),
        ("live320x240.jpeg", 320, 240),
    ]


@pytest.mark.parametrize("size", [(4056, 3040), (1920, 1080)])
def test_quality_holds_against_lanczos(renderer: Renderer, size: tuple[int, int]) -> None:
    """Each variant within 1 dB of Pillow's own BILINEAR from the full frame, and >= 30 dB,
    measured against a LANCZOS reference (the pixels before JPEG, so only resampling
    is compared)."""
    frame = photo_like(*size)

    captured: dict[tuple[int, int], Image.Image] = {}
    original = render.encode

    def spy(image: Image.Image, quality: int) -> bytes:
        captured[image.size] = image.copy()
        return original(image, quality)

    render.encode = spy  # type: ignore[assignment]
    try:
        out = renderer.render(Frame(frame, NOW))
    finally:
        render.encode = original  # type: ignore[assignment]
    for r in out:
        if (r.width, r.height) == size:
            continue
        ours = captured[(r.width, r.height)]
        reference = frame.resize((r.width, r.height), Image.Resampling.LANCZOS)
        bilinear = frame.resize((r.width, r.height), Image.Resampling.BILINEAR)
        ours_db, bilinear_db = psnr(ours, reference), psnr(bilinear, reference)
        assert ours_db >= 30, (r.name, ours_db)
        assert ours_db >= bilinear_db - 1.0, (r.name, ours_db, bilinear_db)


@pytest.mark.parametrize(
    ("size", "out"),
    [((4056, 3040), (1441, 1080)), ((2029, 1521), (961, 720)), ((1920, 1080), (1280, 720))],
)
def test_strips_are_identical_to_one_piece(size: tuple[int, int], out: tuple[int, int]) -> None:
    """The pool's strips (with reduce and the sub-pixel box) make the pixels the serial
    path makes, sizes that are not multiples of the reduce factor included: no seams.
    A strip's box is computed in floats, so a filter weight may round the other way:
    1 of 255 at most."""
    image = photo_like(*size) if size[0] < 4000 else Image.effect_noise(size, 60).convert("RGB")
    r = Renderer(BENCH_VARIANTS, threads=3)
    try:
        strips = render._shrink(image, out, r._split)
    finally:
        r.close()
    assert strips.size == out
    diff = ImageChops.difference(strips, render.downscale(image, out))
    assert max(hi for _, hi in diff.getextrema()) <= 1


def test_each_size_comes_from_the_nearest_larger_image() -> None:
    full, big = Image.new("RGB", (4056, 3040)), Image.new("RGB", (1441, 1080))
    mid = Image.new("RGB", (961, 720))
    assert render.pick_source([full, big, mid], (961, 720)) is mid
    assert render.pick_source([full, big, mid], (640, 480)) is mid
    assert render.pick_source([full, big, mid], (800, 600)) is big  # 961/800 = 1.2 blurs
    assert render.pick_source([full, big], (1441, 1080)) is big
    assert render.pick_source([full, big], (1920, 1440)) is full


def test_lores_is_used_for_the_sizes_it_covers() -> None:
    """A camera's ISP-scaled copy feeds the small variants; the full frame the rest."""
    full = Image.new("RGB", (2028, 1520), (200, 0, 0))
    lores = Image.new("RGB", (1014, 760), (0, 0, 200))
    r = Renderer(BENCH_VARIANTS)
    try:
        out = {o.name: decode(o.data) for o in r.render(Frame(full, NOW, lores=lores))}
    finally:
        r.close()
    assert out["live.jpeg"].getpixel((5, 5)) == pytest.approx((200, 0, 0), abs=4)
    assert out["live1920x1080.jpeg"].getpixel((5, 5)) == pytest.approx((200, 0, 0), abs=4)
    assert out["live800x600.jpeg"].getpixel((5, 5)) == pytest.approx((0, 0, 200), abs=4)
    assert out["live320x240.jpeg"].getpixel((5, 5)) == pytest.approx((0, 0, 200), abs=4)


def test_single_thread_renders_the_same_bytes(renderer: Renderer) -> None:
    frame = Frame(photo_like(1280, 720), NOW)
    one = Renderer(BENCH_VARIANTS, threads=1)
    try:
        assert [o.data for o in one.render(frame)] == [o.data for o in renderer.render(frame)]
    finally:
        one.close()
