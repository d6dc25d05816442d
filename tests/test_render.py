"""Render: sizes, aspect, valid JPEGs, and quality that a speed change cannot degrade,
on both paths: OpenCV (frames that carry a numpy array) and Pillow."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

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


PATHS = ["opencv", "pillow"]


def as_camera_frame(image: Image.Image, path: str, padding: int = 0, **kw: Any) -> Frame:
    """`image` as a camera lends it: an "RGBX" image over a numpy buffer, rows
    `padding` bytes longer than the pixels, and the (h, w, 4) view as `array` (for the
    OpenCV path; the Pillow path gets the same frame and must ignore the array)."""
    if path == "opencv":
        pytest.importorskip("cv2")
    np = pytest.importorskip("numpy")
    w, h = image.size
    stride = w * 4 + padding
    buffer = np.zeros(h * stride, np.uint8)
    rows = buffer.reshape(h, stride)
    rows[:, : w * 4] = np.asarray(image.convert("RGBX")).reshape(h, w * 4)
    view = Image.frombuffer("RGBX", (w, h), buffer, "raw", "RGBX", stride, 1)
    array = np.ndarray((h, w, 4), np.uint8, buffer, 0, (stride, 4, 1))
    return Frame(view, NOW, array=array, **kw)


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    r = Renderer(BENCH_VARIANTS)
    yield r
    r.close()


@pytest.fixture(scope="module", params=PATHS)
def path_renderer(request: pytest.FixtureRequest) -> Iterator[tuple[str, Renderer]]:
    """A renderer for each path; frames come from `as_camera_frame(image, path)`."""
    r = Renderer(BENCH_VARIANTS, use_opencv=request.param == "opencv")
    yield request.param, r
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
    path_renderer: tuple[str, Renderer], size: tuple[int, int], expected: list[tuple[int, int]]
) -> None:
    path, renderer = path_renderer
    frame = as_camera_frame(Image.new("RGB", size, (10, 200, 30)), path)
    out = renderer.render(frame)
    assert renderer.path == path
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


def spy_on_encodes(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[int, int], Any]:
    """The pixels each encode gets, by size, from now on (all three encoders: a Pillow
    image, or a copy of the planes)."""
    captured: dict[tuple[int, int], Any] = {}
    pillow, array, yuv = render.encode, render.encode_array, render.encode_planes

    def spy(image: Image.Image, quality: int) -> bytes:
        captured[image.size] = image.convert("RGB")
        return pillow(image, quality)

    def spy_array(pixels: Any, quality: int) -> bytes:
        image = Image.fromarray(pixels[:, :, :3].copy(), "RGB")
        captured[image.size] = image
        return array(pixels, quality)

    def spy_planes(pixels: Any, quality: int) -> bytes:
        captured[pixels.size] = type(pixels)(*(p.copy() for p in pixels))
        return yuv(pixels, quality)

    monkeypatch.setattr(render, "encode", spy)
    monkeypatch.setattr(render, "encode_array", spy_array)
    monkeypatch.setattr(render, "encode_planes", spy_planes)
    return captured


def chroma_420(image: Image.Image) -> Image.Image:
    """`image` with its chroma 4:2:0 as the planes path has it (a round trip)."""
    np = pytest.importorskip("numpy")
    from livecam import planes, pyramid

    yuv, _ = planes.from_rgb(np.asarray(image), pyramid.Buffers(), "ref")
    return Image.fromarray(planes.to_rgb(yuv), "RGB")


@pytest.mark.parametrize("size", [(4056, 3040), (2028, 1520), (1920, 1080)])
def test_quality_holds_against_lanczos(
    path_renderer: tuple[str, Renderer], size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each variant within 1 dB of Pillow's own BILINEAR from the full frame, and >= 30 dB,
    measured against a LANCZOS reference (the pixels before JPEG, so only resampling
    is compared)."""
    path, renderer = path_renderer
    frame = photo_like(*size)
    captured = spy_on_encodes(monkeypatch)
    out = renderer.render(as_camera_frame(frame, path))
    assert renderer.path == path
    for r in out:
        if (r.width, r.height) == size:
            continue
        ours = captured[(r.width, r.height)]
        reference = frame.resize((r.width, r.height), Image.Resampling.LANCZOS)
        bilinear = frame.resize((r.width, r.height), Image.Resampling.BILINEAR)
        if isinstance(ours, Image.Image):
            assert psnr(ours, reference) >= 30, r.name
        else:
            # Planes: their luma holds the floor; in RGB, Pillow's pixels are measured
            # with the same chroma 4:2:0 (which an RGB encoder applies inside).
            luma = Image.fromarray(ours.y)
            assert psnr(luma, reference.convert("YCbCr").getchannel("Y")) >= 30, r.name
            ours = Image.fromarray(render.planes.to_rgb(ours), "RGB")
            bilinear = chroma_420(bilinear)
        ours_db, bilinear_db = psnr(ours, reference), psnr(bilinear, reference)
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


@pytest.mark.parametrize("lores_mode", ["RGB", "RGBX", "RGBX+array"])
def test_lores_is_used_for_the_sizes_it_covers(
    path_renderer: tuple[str, Renderer], lores_mode: str
) -> None:
    """A camera's ISP-scaled copy feeds the small variants; the full frame the rest."""
    path, r = path_renderer
    full = Image.new("RGB", (2028, 1520), (200, 0, 0))
    lores = Image.new("RGB", (1014, 760), (0, 0, 200))
    lores_array = None
    if lores_mode != "RGB":
        lores = lores.convert("RGBX")
    if lores_mode == "RGBX+array":
        np = pytest.importorskip("numpy")
        lores_array = np.asarray(lores).copy()
        lores = Image.frombuffer("RGBX", lores.size, lores_array, "raw", "RGBX", 0, 1)
    frame = as_camera_frame(full, path, lores=lores, lores_array=lores_array)
    out = {o.name: decode(o.data) for o in r.render(frame)}
    assert out["live.jpeg"].getpixel((5, 5)) == pytest.approx((200, 0, 0), abs=4)
    assert out["live1920x1080.jpeg"].getpixel((5, 5)) == pytest.approx((200, 0, 0), abs=4)
    assert out["live800x600.jpeg"].getpixel((5, 5)) == pytest.approx((0, 0, 200), abs=4)
    assert out["live320x240.jpeg"].getpixel((5, 5)) == pytest.approx((0, 0, 200), abs=4)


def test_single_thread_renders_the_same_bytes(path_renderer: tuple[str, Renderer]) -> None:
    path, renderer = path_renderer
    frame = as_camera_frame(photo_like(1280, 720), path)
    one = Renderer(BENCH_VARIANTS, threads=1, use_opencv=path == "opencv")
    try:
        assert [o.data for o in one.render(frame)] == [o.data for o in renderer.render(frame)]
    finally:
        one.close()


# --- the OpenCV path ---------------------------------------------------------------------


def test_the_opencv_path_is_used_when_the_frame_has_an_array(renderer: Renderer) -> None:
    pytest.importorskip("cv2")
    image = photo_like(640, 480)
    renderer.render(as_camera_frame(image, "opencv"))
    assert renderer.path == "opencv"
    out = renderer.render(Frame(image, NOW))  # no array: Pillow, same sizes
    assert renderer.path == "pillow"
    assert [(o.width, o.height) for o in out] == [(640, 480)] * 3 + [(640, 480), (320, 240)]
    for o in out:
        decode(o.data)


def test_a_padded_rgbx_view_renders_like_a_contiguous_one(renderer: Renderer) -> None:
    """picamera2's rows are padded to the stride: the array is a strided view of the
    buffer; OpenCV and the encoder must read it in place and skip the padding."""
    image = photo_like(1014, 760)  # 4056 bytes a row: 8 bytes short of a 64-byte stride
    plain = renderer.render(as_camera_frame(image, "opencv"))
    padded = renderer.render(as_camera_frame(image, "opencv", padding=40))
    assert renderer.path == "opencv"
    assert [o.data for o in padded] == [o.data for o in plain]


def test_an_rgb_array_renders_too(renderer: Renderer) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("cv2")
    image = photo_like(800, 600)
    array = np.asarray(image).copy()  # (h, w, 3): the image is Pillow's own copy
    out = renderer.render(Frame(image, NOW, array=array))
    assert renderer.path == "opencv"
    rgbx = renderer.render(as_camera_frame(image, "opencv"))
    for a, b in zip(out, rgbx, strict=True):
        assert (a.width, a.height) == (b.width, b.height)
        assert psnr(decode(a.data), decode(b.data)) > 45


def test_an_array_that_is_not_the_image_is_a_render_error(renderer: Renderer) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("cv2")
    image = Image.new("RGBX", (64, 48))
    with pytest.raises(RenderError, match=r"frame\.array"):
        renderer.render(Frame(image, NOW, array=np.zeros((48, 63, 4), np.uint8)))
    with pytest.raises(RenderError, match=r"frame\.array"):
        renderer.render(Frame(image, NOW, array=np.zeros((48, 64, 4), np.uint16)))
    every_other = np.zeros((48, 128, 4), np.uint8)[:, ::2]
    with pytest.raises(RenderError, match=r"frame\.array"):
        renderer.render(Frame(image, NOW, array=every_other))


def test_a_failed_encode_is_a_render_error_and_the_renderer_carries_on(
    renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("cv2")
    name = "encode_planes" if renderer.use_planes else "encode_array"
    original = getattr(render, name)

    def flaky(pixels: Any, quality: int) -> bytes:
        width = pixels.size[0] if isinstance(pixels, tuple) else pixels.shape[1]
        if width == 320:
            raise OSError("disk on fire")
        return original(pixels, quality)

    monkeypatch.setattr(render, name, flaky)
    with pytest.raises(RenderError, match="disk on fire"):
        renderer.render(as_camera_frame(photo_like(1280, 960), "opencv"))
    monkeypatch.setattr(render, name, original)
    out = renderer.render(as_camera_frame(photo_like(1280, 960), "opencv"))  # still works
    assert len(out) == len(BENCH_VARIANTS)


def test_pyramid_levels_and_steps() -> None:
    """Each size comes from the smallest halving that covers it; odd rows and columns
    are left out of a halving (OpenCV's fast path needs an exact factor of 2)."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("cv2")
    from livecam import pyramid

    buffers = pyramid.Buffers()
    frame = np.zeros((3040, 4056, 4), np.uint8)
    p = pyramid.Pyramid(frame, buffers, "main")
    assert p.source_for((1441, 1080)).shape[:2] == (1520, 2028)
    assert p.source_for((961, 720)).shape[:2] == (760, 1014)
    assert p.source_for((320, 240)).shape[:2] == (380, 507)
    assert p.source_for((4056, 3040)) is frame
    odd = pyramid.Pyramid(np.zeros((1521, 2029, 3), np.uint8), buffers, "odd")
    assert odd.source_for((400, 300)).shape == (380, 507, 3)
    assert odd.resize((400, 300)).shape == (300, 400, 3)
    lores = np.zeros((1080, 1442, 4), np.uint8)  # YUV420 is even: 1441 wanted
    one_more = pyramid.Pyramid(lores, buffers, "lores").resize((1441, 1080))
    assert one_more.shape == (1080, 1441, 4) and np.shares_memory(one_more, lores)
    assert pyramid.halvings(np.zeros((720, 1280, 4), np.uint8), (320, 180)) == 2
    assert pyramid.halvings(np.zeros((720, 1280, 4), np.uint8), (800, 450)) == 0
    buffers.end_frame()
    kept = buffers.nbytes
    buffers.end_frame()  # a frame that asked for nothing: nothing kept
    assert kept > 0 and buffers.nbytes == 0


def test_the_path_is_logged_once_and_on_a_change(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("cv2")
    image = photo_like(320, 240)
    r = Renderer(BENCH_VARIANTS)
    try:
        with caplog.at_level("INFO", logger="livecam.render"):
            r.render(as_camera_frame(image, "opencv"))
            r.render(as_camera_frame(image, "opencv"))
            r.render(Frame(image, NOW))
    finally:
        r.close()
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "livecam.render"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("render: OpenCV") and "encodes" in lines[0]
    assert lines[1] == "render: Pillow (RGB frames carry no numpy array)"


def test_without_opencv_the_log_says_what_it_would_save(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(render, "pyramid", None)
    r = Renderer(BENCH_VARIANTS)
    try:
        with caplog.at_level("INFO", logger="livecam.render"):
            out = r.render(Frame(photo_like(320, 240), NOW))
    finally:
        r.close()
    assert r.path == "pillow" and len(out) == len(BENCH_VARIANTS)
    assert "pip install opencv-python-headless` cuts the CPU per frame by 2-3x" in caplog.text
