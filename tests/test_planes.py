"""The YCbCr 4:2:0 planes path: JFIF colours, odd sizes, chroma placement, lores planes,
and JPEGs that match the RGBX path's."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from livecam.camera.base import Frame
from livecam.config import VariantConfig
from livecam.errors import RenderError
from livecam.render import Renderer, planes_encoder
from livecam.testimage import photo_like

np = pytest.importorskip("numpy")
cv2 = pytest.importorskip("cv2")
if not planes_encoder():
    pytest.skip("simplejpeg cannot encode planes here", allow_module_level=True)

from livecam import planes, pyramid, turbo  # noqa: E402 - needs numpy and OpenCV

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
VARIANTS = (
    VariantConfig("live.jpeg", quality=85),
    VariantConfig("live1920x1080.jpeg", 1920, 1080),
    VariantConfig("live1280x720.jpeg", 1280, 720),
    VariantConfig("live800x600.jpeg", 800, 600),
    VariantConfig("live320x240.jpeg", 320, 240),
)


@pytest.fixture(scope="module")
def paths() -> Iterator[dict[str, Renderer]]:
    """The OpenCV path on planes and on the RGBX array, side by side."""
    rs = {"planes": Renderer(VARIANTS), "rgbx": Renderer(VARIANTS, use_planes=False)}
    yield rs
    for r in rs.values():
        r.close()


def camera_frame(image: Image.Image, **kw: Any) -> Frame:
    array = np.array(image.convert("RGBX"))  # a copy of its own, writable
    view = Image.frombuffer("RGBX", image.size, array, "raw", "RGBX", 0, 1)
    return Frame(view, NOW, array=array, **kw)


def decode(data: bytes) -> Any:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), np.int16)


def psnr(a: Any, b: Any) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def jfif(rgb: Any) -> Any:
    """JFIF's YCbCr of (..., 3) RGB, in floats (ITU-T T.871)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return np.stack((y, 128 + (b - y) / 1.772, 128 + (r - y) / 1.402), axis=-1)


# --- colours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "colour",
    [
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (128, 128, 128),
        (0, 0, 0),
        (255, 255, 255),
        (250, 200, 40),
    ],
)
def test_solid_colours_come_back_from_every_variant(
    paths: dict[str, Renderer], colour: tuple[int, int, int]
) -> None:
    """Red, green, blue and grey frames decode to within a few levels of what went in,
    in every variant: full-range JFIF YCbCr, Cb and Cr the right way round."""
    out = paths["planes"].render(camera_frame(Image.new("RGB", (1441, 1081), colour)))
    assert paths["planes"].path == "opencv"
    for r in out:
        pixels = decode(r.data)
        assert np.abs(pixels - np.array(colour)).max() <= 3, (r.name, pixels[0, 0], colour)


@pytest.fixture(params=["opencv", "libjpeg-turbo"])
def converter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each conversion the planes path has: OpenCV's passes, libjpeg-turbo's own."""
    if request.param == "libjpeg-turbo" and not turbo.available():
        pytest.skip("libturbojpeg is not installed")
    monkeypatch.setattr(planes, "USE_TURBO", request.param == "libjpeg-turbo")
    return str(request.param)


def test_the_conversion_is_jfif_within_one_level(converter: str) -> None:
    """Y, Cb and Cr as JFIF defines them: Y per pixel, Cb and Cr the mean of each 2x2
    block (what libjpeg computes inside when it is given RGB)."""
    rgb = np.random.default_rng(7).integers(0, 256, (64, 96, 3), np.uint8)
    rgbx = np.dstack((rgb, np.zeros((64, 96), np.uint8)))
    exact = jfif(rgb)
    means = exact.reshape(32, 2, 48, 2, 3).mean(axis=(1, 3))
    for source in (rgb, rgbx):
        yuv, half = planes.from_rgb(source, pyramid.Buffers(), "t")
        assert np.abs(yuv.y - exact[..., 0]).max() <= 1
        # Averaged before the conversion (it is linear), rounded twice: 1.5 at most.
        assert np.abs(yuv.u - means[..., 1]).max() <= 1.5
        assert np.abs(yuv.v - means[..., 2]).max() <= 1.5
        assert np.abs(half - means[..., 0]).max() <= 1.5  # Y halved: the next level


def test_opencv_i420_would_be_wrong(converter: str) -> None:
    """Why the conversion is not cv2's RGB2YUV_I420: limited range (black is 16, not
    0) and each 2x2 block's chroma from one pixel, not their mean."""
    block = np.zeros((2, 2, 4), np.uint8)
    block[0, 0] = (255, 0, 0, 0)
    i420 = cv2.cvtColor(block, cv2.COLOR_RGBA2YUV_I420).ravel()
    assert i420[1] == 16  # a black pixel's Y: limited range
    assert i420[5] > 200  # V (Cr) of one red pixel among three black: not averaged
    yuv, _ = planes.from_rgb(block, pyramid.Buffers(), "t")
    assert yuv.y[0, 1] == 0 and abs(int(yuv.v[0, 0]) - round(128 + 0.5 * 255 / 4)) <= 1


# --- odd sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1441, 1080), (961, 720), (962, 721), (7, 5), (1, 1), (1, 3)])
def test_odd_sizes_have_the_chroma_planes_jpeg_needs(size: tuple[int, int], converter: str) -> None:
    """JPEG 4:2:0 chroma is ceil(w / 2) x ceil(h / 2); the last column (row) of an odd
    size is the edge pixel's own chroma, as libjpeg pads it; Y's padding (which the
    encoder reads) repeats the edge."""
    w, h = size
    rgb = np.random.default_rng(1).integers(0, 256, (h, w, 3), np.uint8)
    yuv, _ = planes.from_rgb(np.dstack((rgb, rgb[..., :1])), pyramid.Buffers(), "t")
    assert yuv.y.shape == (h, w) and yuv.u.shape == yuv.v.shape == ((h + 1) // 2, (w + 1) // 2)
    padded = np.pad(jfif(rgb), ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    means = padded.reshape((h + 1) // 2, 2, (w + 1) // 2, 2, 3).mean(axis=(1, 3))
    assert np.abs(yuv.y - jfif(rgb)[..., 0]).max() <= 1
    assert np.abs(yuv.u - means[..., 1]).max() <= 1.5
    assert np.abs(yuv.v - means[..., 2]).max() <= 1.5
    whole = yuv.y.base if yuv.y.base is not None else yuv.y
    y = whole[: h + h % 2, : w + w % 2]
    assert np.array_equal(y, np.pad(yuv.y, ((0, h % 2), (0, w % 2)), mode="edge"))


@pytest.mark.parametrize("size", [(1441, 1080), (961, 721), (640, 480), (1080, 1920)])
def test_odd_and_portrait_variants_encode_and_match_the_rgbx_path(
    paths: dict[str, Renderer], size: tuple[int, int]
) -> None:
    frame = camera_frame(photo_like(*size))
    ours = paths["planes"].render(frame)
    theirs = paths["rgbx"].render(frame)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.width, a.height) == (b.width, b.height)
        x, y = decode(a.data), decode(b.data)
        assert x.shape == (a.height, a.width, 3)
        assert psnr(x, y) > 30, a.name  # two resamplings of the same frame


# --- the decoded JPEGs ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [(4056, 3040), (2028, 1520), (1920, 1080)])
def test_decoded_variants_hold_against_lanczos_like_the_rgbx_path(
    paths: dict[str, Renderer], size: tuple[int, int]
) -> None:
    """What a viewer gets: each decoded variant within 1 dB of Pillow's BILINEAR from
    full encoded by Pillow, and within 0.5 dB of the RGBX path's, against LANCZOS;
    the full size as the RGBX path's JPEG (the conversion is libjpeg's own)."""
    photo = photo_like(*size)
    frame = camera_frame(photo)
    ours = {(o.width, o.height): o for o in paths["planes"].render(frame)}
    theirs = {(o.width, o.height): o for o in paths["rgbx"].render(frame)}
    full = ours[size]
    assert psnr(decode(full.data), decode(theirs[size].data)) > 44
    assert abs(len(full.data) / len(theirs[size].data) - 1) < 0.01
    for s, o in ours.items():
        if s == size:
            continue
        reference = np.asarray(photo.resize(s, Image.Resampling.LANCZOS))
        buf = io.BytesIO()
        photo.resize(s, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=85)
        ours_db = psnr(decode(o.data), reference)
        assert ours_db >= psnr(decode(buf.getvalue()), reference) - 1.0, s
        assert ours_db >= psnr(decode(theirs[s].data), reference) - 0.5, s


# --- lores planes --------------------------------------------------------------------------


def lores_yuv(colour: tuple[int, int, int], size: tuple[int, int], stride: int) -> tuple[Any, ...]:
    """YUV420 planes of a solid colour as a camera lends them: views with padded rows."""
    w, h = size
    y, cb, cr = (round(c) for c in jfif(np.array([[colour]], np.uint8))[0, 0])
    buffer = np.zeros(stride * h * 3 // 2, np.uint8)
    planes_ = (
        buffer[: stride * h].reshape(h, stride)[:, :w],
        buffer[stride * h : stride * h * 5 // 4].reshape(h // 2, stride // 2)[:, : w // 2],
        buffer[stride * h * 5 // 4 :].reshape(h // 2, stride // 2)[:, : w // 2],
    )
    for plane, value in zip(planes_, (y, cb, cr), strict=True):
        plane[...] = value
    return planes_


@pytest.mark.parametrize("use_opencv", [True, False])
def test_lores_planes_feed_the_sizes_they_cover(use_opencv: bool) -> None:
    """A camera's YUV420 lores stream, given only as planes, feeds the small variants
    on both paths (the Pillow path converts it); the full frame feeds the rest."""
    r = Renderer(VARIANTS, use_opencv=use_opencv)
    try:
        full = Image.new("RGB", (2028, 1520), (200, 0, 0))
        lores = lores_yuv((0, 0, 200), (1014, 760), 1088)
        out = {o.name: decode(o.data) for o in r.render(camera_frame(full, lores_planes=lores))}
    finally:
        r.close()
    assert r.path == ("opencv" if use_opencv else "pillow")
    assert np.abs(out["live.jpeg"][5, 5] - (200, 0, 0)).max() <= 4
    assert np.abs(out["live1920x1080.jpeg"][5, 5] - (200, 0, 0)).max() <= 4
    assert np.abs(out["live800x600.jpeg"][5, 5] - (0, 0, 200)).max() <= 4
    assert np.abs(out["live320x240.jpeg"][5, 5] - (0, 0, 200)).max() <= 4


def test_lores_planes_are_encoded_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant of the lores stream's own size is its planes, not a conversion of them."""
    from livecam import render

    seen: list[Any] = []
    original = render.encode_planes

    def spy(pixels: Any, quality: int) -> bytes:
        seen.append(pixels)
        return original(pixels, quality)

    monkeypatch.setattr(render, "encode_planes", spy)
    lores = lores_yuv((10, 120, 240), (800, 600), 832)
    r = Renderer((VariantConfig("a.jpeg", 800, 600),))
    try:
        r.render(camera_frame(Image.new("RGB", (2028, 1521)), lores_planes=lores))
    finally:
        r.close()
    assert len(seen) == 1
    assert all(np.shares_memory(a, b) for a, b in zip(seen[0], lores, strict=True))


def test_planes_that_are_not_yuv420_are_a_render_error() -> None:
    r = Renderer(VARIANTS)
    try:
        y = np.zeros((600, 800), np.uint8)
        bad = (y, np.zeros((300, 401), np.uint8), np.zeros((300, 400), np.uint8))
        with pytest.raises(RenderError, match=r"frame\.lores_planes are not YUV420 planes"):
            r.render(camera_frame(Image.new("RGB", (1600, 1200)), lores_planes=bad))
    finally:
        r.close()


@pytest.mark.parametrize("variants", [VARIANTS, VARIANTS[::4]])
def test_the_frame_is_not_read_after_render_returns(variants: tuple[VariantConfig, ...]) -> None:
    """The encodes run on the pool, and where the full size outweighs the rest (full
    and 320x240 alone) the conversion runs on two threads and the full size is encoded
    in strips: all of it is done when `render` returns (the camera reuses the buffer
    at once)."""
    renderer = Renderer(variants)
    try:
        frame = camera_frame(photo_like(2028, 1520))
        if len(variants) == 2:
            assert renderer._strips((2028, 1520), {(320, 240)}) is not None
        first = [o.data for o in renderer.render(frame)]
        assert frame.array is not None
        frame.array[...] = 0  # what the camera does with a released buffer
        second = [o.data for o in renderer.render(camera_frame(photo_like(2028, 1520)))]
    finally:
        renderer.close()
    assert first == second  # nothing of the zeroed buffer leaked into the kept arrays


@pytest.mark.parametrize("size", [(1921, 1081), (1920, 1080), (1441, 1081)])
def test_bands_converted_on_two_threads_are_the_planes_of_one(
    size: tuple[int, int], converter: str
) -> None:
    """Where the frame outweighs its variants, each thread converts a band of rows and
    the full size is encoded in strips: odd columns and rows, their chroma and Y's
    padding come out as one thread makes them, and the JPEGs decode to the same
    pixels."""
    variants = (VariantConfig("live.jpeg"), VariantConfig("small.jpeg", 320, 240))
    two, one = Renderer(variants, threads=2), Renderer(variants, threads=1)
    noise = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), np.uint8)
    frame = camera_frame(Image.fromarray(noise, "RGB"))
    try:
        assert two._strips(size, {variants[1].size_for(*size)}) is not None
        split, serial = two.render(frame), one.render(frame)
    finally:
        two.close()
        one.close()
    assert b"\xff\xdd" in split[0].data[:2000]
    for a, b in zip(split, serial, strict=True):
        assert np.array_equal(decode(a.data), decode(b.data))


# --- a variant from a larger one -----------------------------------------------------------


def test_a_size_comes_from_a_larger_variant_where_the_step_would_be_bicubic() -> None:
    """1080p's 800x450 would be a bicubic step from Y halved (960x540), a level nothing
    else needs: it is one bilinear step from 1280x720 instead, and Y halved is never
    made. 2028x1520's 961x720 is one from 1441x1080, made from the frame itself; at 12
    MP, 1441x1080 comes from a halved level and is no source (a third step blurs)."""
    hd = {(1280, 720), (800, 450), (320, 180)}
    assert planes.plan_cascades((1920, 1080), hd, None) == {(800, 450): (1280, 720)}
    assert not planes.needs_half((1920, 1080), hd)
    four_three = {(1441, 1080), (961, 720), (800, 600), (320, 240)}
    assert planes.plan_cascades((2028, 1520), four_three, None) == {(961, 720): (1441, 1080)}
    assert planes.needs_half((2028, 1520), four_three)  # 800x600 still reads it
    assert planes.plan_cascades((4056, 3040), four_three, None) == {}
    assert planes.needs_half((4056, 3040), four_three)
    # The ISP's lores copy covers 800x450: it comes from there, as before.
    assert planes.plan_cascades((1920, 1080), hd, (800, 450)) == {}
    # An odd-sized variant is a source too (its chroma's extent covers the padding).
    assert planes.plan_cascades((1921, 1081), {(1281, 721), (800, 450)}, None) == {
        (800, 450): (1281, 721)
    }
    # 1.8 times smaller than the only variant: the pyramid's bicubic step, as before.
    assert planes.plan_cascades((2028, 1520), {(1441, 1080), (800, 600)}, None) == {}
    # A size that its level already is (960x540 is 1080p halved) is a view: no step.
    assert planes.plan_cascades((1920, 1080), {(1600, 900), (960, 540)}, None) == {}


@pytest.mark.parametrize(
    ("frame", "sizes", "period"),
    [((2028, 1520), [(1441, 1080), (961, 720)], 18), ((1441, 1081), [(961, 720)], 13)],
    ids=["from an odd variant", "from an odd frame"],
)
def test_odd_sources_keep_the_chroma_in_place(
    frame: tuple[int, int], sizes: list[tuple[int, int]], period: int
) -> None:
    """961x720 from 1441x1080 (a variant) or from a 1441x1081 frame, whose chroma (721
    samples) covers 1442 pixels: placed by the luma's scale, the colour stripes at the
    right edge are where a direct resize has them (with the chroma's own scale,
    961/1442, they drift by a third of a sample there: 3x the error). The stripes'
    `period` is one whose phase against the output's samples is alike at both edges."""
    x = np.arange(frame[0])
    rgb = np.zeros((frame[1], frame[0], 3), np.uint8)
    rgb[:, (x // period) % 2 == 0] = (200, 40, 40)
    rgb[:, (x // period) % 2 == 1] = (40, 40, 200)
    buffers = pyramid.Buffers()
    yuv, half = planes.from_rgb(rgb, buffers, "frame")
    cascades = planes.plan_cascades(yuv.size, sizes, None)
    assert cascades == ({(961, 720): (1441, 1080)} if len(sizes) > 1 else {})
    ours = dict(planes.downscale(yuv, sizes, buffers, None, half))[(961, 720)]
    reference = np.asarray(Image.fromarray(rgb).resize((961, 720), Image.Resampling.LANCZOS))
    expected, _ = planes.from_rgb(np.ascontiguousarray(reference), pyramid.Buffers(), "ref")
    for mine, theirs in ((ours.u, expected.u), (ours.v, expected.v)):
        error = np.abs(mine.astype(np.int16) - theirs)
        assert error[:, -40:].mean() < 1.5 * error[:, :40].mean() + 1


@pytest.mark.parametrize("frame", [(4097, 17), (1, 2000), (2001, 1001)])
def test_outputs_of_a_pixel_or_two_render(frame: tuple[int, int]) -> None:
    """Sizes whose chroma is under one sample of the level's (1x1 from 2001x1001)."""
    tiny = (VariantConfig("live.jpeg"), VariantConfig("a.jpeg", 1, 1),
            VariantConfig("b.jpeg", 2, 2), VariantConfig("c.jpeg", 64, 64))  # fmt: skip
    renderer = Renderer(tiny)
    try:
        noise = np.random.default_rng(0).integers(0, 256, (frame[1], frame[0], 3), np.uint8)
        out = renderer.render(camera_frame(Image.fromarray(noise, "RGB")))
    finally:
        renderer.close()
    for o in out:
        assert decode(o.data).shape == (o.height, o.width, 3)


@pytest.mark.parametrize(
    ("frame", "size"), [((1920, 1080), (800, 450)), ((2028, 1520), (961, 720))]
)
def test_the_variant_step_keeps_colours_and_quality(
    paths: dict[str, Renderer], frame: tuple[int, int], size: tuple[int, int]
) -> None:
    photo = photo_like(*frame)
    ours = {(o.width, o.height): o for o in paths["planes"].render(camera_frame(photo))}
    reference = np.asarray(photo.resize(size, Image.Resampling.LANCZOS))
    bilinear = io.BytesIO()
    photo.resize(size, Image.Resampling.BILINEAR).save(bilinear, "JPEG", quality=85)
    ours_db = psnr(decode(ours[size].data), reference)
    assert ours_db >= psnr(decode(bilinear.getvalue()), reference) - 1.0
    red = camera_frame(Image.new("RGB", frame, (250, 30, 20)))
    small = next(o for o in paths["planes"].render(red) if (o.width, o.height) == size)
    assert np.abs(decode(small.data) - np.array([250, 30, 20])).max() <= 3
