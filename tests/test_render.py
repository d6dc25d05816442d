"""Render: sizes, aspect, colours, valid JPEGs, and quality that a speed change cannot
degrade, on both paths: the fast one (YUV420 planes) and Pillow's."""

from __future__ import annotations

import importlib
import io
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageStat

import livecam.render
from livecam.camera.base import Frame, Planes
from livecam.camera.yuv import to_image
from livecam.config import DEFAULT_VARIANTS, VariantConfig
from livecam.errors import RenderError
from livecam.render import Renderer, fast, pillow
from livecam.testimage import photo_like

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BENCH_VARIANTS = (
    VariantConfig("live.jpeg", quality=85),
    VariantConfig("live1920x1080.jpeg", 1920, 1080),
    VariantConfig("live1280x720.jpeg", 1280, 720),
    VariantConfig("live800x600.jpeg", 800, 600),
    VariantConfig("live320x240.jpeg", 320, 240),
)
PATHS = ["planes", "pillow"]


def psnr(a: Image.Image, b: Image.Image) -> float:
    """Over RGB, or over the one band of two "L" images."""
    mode = "L" if a.mode == b.mode == "L" else "RGB"
    diff = ImageChops.difference(a.convert(mode), b.convert(mode))
    mse = sum(ImageStat.Stat(diff).sum2) / (len(mode) * a.width * a.height)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()  # the whole file decodes
    return image


def camera_frame(image: Image.Image, padding: int = 0, **kw: Any) -> Frame:
    """`image` as a Pi camera lends it: YUV420 planes in one buffer, rows `padding`
    bytes longer than the pixels (picamera2's stride)."""
    p = fast.planes_of(image)
    (w, h), stride = image.size, image.width + padding
    buffer = np.zeros(stride * h * 3 // 2, np.uint8)
    y = buffer[: stride * h].reshape(h, stride)
    y[:, :w] = p.y
    cs = stride // 2
    u = buffer[stride * h : stride * h + cs * h // 2].reshape(h // 2, cs)
    v = buffer[stride * h + cs * h // 2 :].reshape(h // 2, cs)
    u[:, : w // 2], v[:, : w // 2] = p.u, p.v
    return Frame(None, NOW, Planes(y[:, :w], u[:, : w // 2], v[:, : w // 2]), **kw)


def frame_for(path: str, image: Image.Image) -> Frame:
    """The fast path gets a camera's planes, Pillow's an image (it converts planes)."""
    return camera_frame(image) if path == "planes" else Frame(image, NOW)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(BENCH_VARIANTS)


@pytest.fixture(scope="module", params=PATHS)
def path_renderer(request: pytest.FixtureRequest) -> tuple[str, Renderer]:
    r = Renderer(BENCH_VARIANTS, fast=request.param == "planes")
    assert r.path == request.param
    return request.param, r


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
    path_renderer: tuple[str, Renderer], size: tuple[int, int], expected: list[tuple[int, int]]
) -> None:
    path, renderer = path_renderer
    out = renderer.render(frame_for(path, Image.new("RGB", size, (10, 200, 30))))
    assert [r.name for r in out] == [v.name for v in BENCH_VARIANTS]
    assert [(r.width, r.height) for r in out] == expected
    for r in out:
        image = decode(r.data)
        assert image.size == (r.width, r.height)
        assert abs(r.width / r.height - size[0] / size[1]) < 0.01 * size[0] / size[1] + 1 / r.height
        assert image.getpixel((r.width // 2, r.height // 2)) == pytest.approx((10, 200, 30), abs=3)


@pytest.mark.parametrize(
    "colour",
    [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (0, 0, 0), (255, 255, 255),
     (250, 200, 40)],
)  # fmt: skip
@pytest.mark.parametrize("mode", ["RGB", "RGBX", "YCbCr", "planes"])
def test_solid_colours_come_back_from_every_variant(
    renderer: Renderer, colour: tuple[int, int, int], mode: str
) -> None:
    """Every variant decodes to within a few levels of what went in, whatever the
    frame's pixels: full-range JFIF YCbCr, Cb and Cr the right way round."""
    image = Image.new("RGB", (1442, 1082), colour)
    frame = camera_frame(image) if mode == "planes" else Frame(image.convert(mode), NOW)
    for r in renderer.render(frame):
        pixels = np.asarray(decode(r.data)).astype(int)
        assert np.abs(pixels - np.array(colour)).max() <= 3, (r.name, pixels[0, 0], colour)


def test_grey_frames_render_grey(path_renderer: tuple[str, Renderer]) -> None:
    _, renderer = path_renderer
    for r in renderer.render(Frame(Image.new("L", (641, 481), 77), NOW)):
        assert decode(r.data).convert("L").getpixel((0, 0)) == pytest.approx(77, abs=2)


def test_only_requested_names_are_rendered(renderer: Renderer) -> None:
    frame = Frame(Image.new("RGB", (1280, 720)), NOW)
    assert [r.name for r in renderer.render(frame, ["live320x240.jpeg"])] == ["live320x240.jpeg"]
    assert renderer.render(frame, ["nothing.jpeg"]) == []


def test_rgbx_frames_render_like_rgb(renderer: Renderer) -> None:
    rgb = photo_like(1280, 720)
    a = renderer.render(Frame(rgb, NOW))
    b = renderer.render(Frame(rgb.convert("RGBX"), NOW))
    for x, y in zip(a, b, strict=True):
        assert psnr(decode(x.data), decode(y.data)) > 45


def test_unusable_frames_are_render_errors(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="pixel mode 'CMYK'"):
        renderer.render(Frame(Image.new("CMYK", (64, 48)), NOW))
    with pytest.raises(RenderError, match="no pixels"):
        renderer.render(Frame(None, NOW))
    y = np.zeros((48, 64), np.uint8)
    with pytest.raises(RenderError, match=r"frame\.planes are not YUV420 planes"):
        renderer.render(Frame(None, NOW, Planes(y, y, y)))


def test_defaults_render_three_files() -> None:
    r = Renderer(DEFAULT_VARIANTS)
    out = r.render(Frame(Image.new("RGB", (2028, 1520)), NOW))
    assert [(o.name, o.width, o.height) for o in out] == [
        ("live.jpeg", 2028, 1520),
        ("live800x600.jpeg", 800, 600),
        ("live320x240.jpeg", 320, 240),
    ]


def spy_on_encodes(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[int, int], Any]:
    """The pixels each encode is given, by size, on both paths."""
    captured: dict[tuple[int, int], Any] = {}
    for module in (fast, pillow):
        original = module.encode

        def spy(pixels: Any, quality: int, original: Any = original) -> bytes:
            captured[pixels.size] = pixels
            return bytes(original(pixels, quality))

        monkeypatch.setattr(module, "encode", spy)
    return captured


def chroma_420(image: Image.Image) -> Image.Image:
    """`image` with its chroma averaged per 2x2 block, as a 4:2:0 encoder keeps it."""
    return to_image(fast.planes_of(image))


@pytest.mark.parametrize("size", [(4056, 3040), (2028, 1520), (1920, 1080)])
def test_quality_holds_against_lanczos(
    path_renderer: tuple[str, Renderer], size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each variant within 1 dB of Pillow's own BILINEAR from the full frame, and >= 30 dB
    in luma, against a LANCZOS reference (the pixels before JPEG, so only resampling is
    compared; both with the same 4:2:0 chroma)."""
    path, renderer = path_renderer
    photo = photo_like(*size)
    captured = spy_on_encodes(monkeypatch)
    for r in renderer.render(frame_for(path, photo)):
        if (r.width, r.height) == size:
            continue
        ours = captured[(r.width, r.height)]
        ours = to_image(ours) if isinstance(ours, Planes) else ours
        reference = photo.resize((r.width, r.height), Image.Resampling.LANCZOS)
        bilinear = chroma_420(photo.resize((r.width, r.height), Image.Resampling.BILINEAR))
        grey = [i.convert("YCbCr").getchannel("Y") for i in (ours, reference)]
        assert psnr(*grey) >= 30, r.name
        ours_db, bilinear_db = psnr(chroma_420(ours), reference), psnr(bilinear, reference)
        assert ours_db >= bilinear_db - 1.0, (r.name, ours_db, bilinear_db)


@pytest.mark.parametrize(
    ("frame", "variant"),
    [((1441, 1081), (961, 721)), ((4056, 3040), (1441, 1080)), ((2001, 1001), (7, 5)),
     ((4097, 17), (1, 1)), ((1, 2000), (1, 3)), ((1920, 1080), (1080, 1920))],
)  # fmt: skip
def test_odd_sizes_keep_the_chroma_in_place(
    renderer: Renderer, frame: tuple[int, int], variant: tuple[int, int]
) -> None:
    """A frame of vertical colour bands: each band's colour stays where it was, to the
    last column, at odd sizes of frame and variant (JPEG pads them to even)."""
    w, h = frame
    x = np.arange(w)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, :, 0] = np.where(x < w // 2, 250, 10)[None, :]
    rgb[:, :, 2] = np.where(x < w // 2, 10, 250)[None, :]
    r = Renderer([VariantConfig("v.jpeg", *variant)])
    (out,) = r.render(Frame(Image.fromarray(rgb, "RGB"), NOW))
    pixels = np.asarray(decode(out.data).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (out.height, out.width)
    if out.width >= 7:  # narrower ones average the two bands
        assert abs(pixels[-1, -1, 2] - 250) <= 24 and abs(pixels[0, 0, 0] - 250) <= 24


def test_lores_is_used_for_the_sizes_it_covers(
    path_renderer: tuple[str, Renderer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sizes the camera's lores copy covers come from it (here a different picture, so
    it shows), larger ones from the frame, on both paths."""
    path, renderer = path_renderer
    lores = camera_frame(Image.new("RGB", (800, 600), (0, 0, 255))).planes
    frame = frame_for(path, Image.new("RGB", (4056, 3040), (255, 0, 0)))
    frame.lores = lores
    out = renderer.render(frame)
    colours = {r.name: decode(r.data).convert("RGB").getpixel((5, 5)) for r in out}
    for name in ("live.jpeg", "live1920x1080.jpeg", "live1280x720.jpeg"):
        assert colours[name] == pytest.approx((254, 0, 0), abs=4), name
    for name in ("live800x600.jpeg", "live320x240.jpeg"):
        assert colours[name] == pytest.approx((0, 0, 254), abs=4), name
    frame.lores = camera_frame(Image.new("RGB", (800, 400), (0, 0, 255))).planes
    out = renderer.render(frame, ["live320x240.jpeg"])  # another aspect: not used
    assert decode(out[0].data).convert("RGB").getpixel((5, 5)) == pytest.approx((254, 0, 0), abs=4)


def test_a_padded_camera_buffer_renders_like_a_contiguous_one(renderer: Renderer) -> None:
    photo = photo_like(1280, 720)
    a = renderer.render(camera_frame(photo))
    b = renderer.render(camera_frame(photo, padding=64))
    assert [x.data for x in a] == [y.data for y in b]


def test_the_frame_is_not_read_after_render_returns(
    renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every encode has finished when render returns or raises: the camera may reuse
    the buffer at once."""
    running: list[int] = []
    original = fast.encode

    def slow(planes: Planes, quality: int) -> bytes:
        running.append(1)
        try:
            if planes.size[0] == 320:
                raise OSError("disk on fire")
            return original(planes, quality)
        finally:
            running.pop()

    monkeypatch.setattr(fast, "encode", slow)
    with pytest.raises(RenderError, match="disk on fire"):
        renderer.render(camera_frame(photo_like(1280, 960)))
    assert running == []
    monkeypatch.setattr(fast, "encode", original)
    assert len(renderer.render(camera_frame(photo_like(1280, 960)))) == len(BENCH_VARIANTS)


def test_a_pillow_path_frame_of_planes_is_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planes reach the Pillow path (simplejpeg too old, or no OpenCV, as on a Pi whose
    install found no OpenCV wheel) as an RGB image: a Pi camera's frames still render."""
    r = Renderer(DEFAULT_VARIANTS, fast=False)
    frame = camera_frame(Image.new("RGB", (640, 480), (0, 0, 250)))
    for fast_module in (fast, None):  # None: `livecam.render.fast` failed to import
        monkeypatch.setattr(livecam.render, "fast", fast_module)
        out = r.render(frame)
        assert [(o.width, o.height) for o in out] == [(640, 480), (640, 480), (320, 240)]
        assert decode(out[0].data).convert("RGB").getpixel((9, 9)) == pytest.approx(
            (0, 0, 250), abs=4
        )


def test_the_path_is_logged_once_with_what_would_be_faster(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "livecam.render")
    Renderer(DEFAULT_VARIANTS)
    assert caplog.messages == ["render: YUV420 planes, OpenCV resizes, simplejpeg encodes"]
    caplog.clear()
    Renderer(DEFAULT_VARIANTS, fast=False)
    assert caplog.messages == []  # asked for: nothing to say
    import simplejpeg

    monkeypatch.delattr(simplejpeg, "encode_jpeg_yuv_planes")
    try:
        importlib.reload(livecam.render)
        assert livecam.render.NO_FAST == "simplejpeg < 1.8"
        caplog.clear()
        livecam.render.Renderer(DEFAULT_VARIANTS)
        assert caplog.messages == [
            "render: Pillow only (simplejpeg < 1.8); `pip install 'livecam[fast]'`"
        ]
        monkeypatch.undo()
        monkeypatch.setitem(sys.modules, "cv2", None)  # an install without OpenCV
        monkeypatch.delitem(sys.modules, "livecam.render.fast")
        monkeypatch.delattr(livecam.render, "fast")
        importlib.reload(livecam.render)
        assert livecam.render.fast is None and "cv2" in livecam.render.NO_FAST
        r = livecam.render.Renderer(DEFAULT_VARIANTS)
        assert r.path == "pillow" and len(r.render(Frame(photo_like(64, 48), NOW))) == 3
    finally:
        monkeypatch.undo()
        importlib.reload(livecam.render)
