"""The Pi camera adapter, driven through a fake picamera2 that follows the real API
(tests/fakes): colour order, strides, Transform, lores, controls, timeouts, releases."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config
from livecam.camera import open_camera
from livecam.camera import picam as picam_mod
from livecam.camera.base import Frame
from livecam.camera.picam import PiCamera, lores_size
from livecam.camera.yuv import to_image
from livecam.config import OverlayConfig
from livecam.errors import CameraError, RenderError
from livecam.loop import Publisher
from livecam.render import Renderer
from livecam.render.overlay import Overlay
from livecam.targets.local import LocalTarget

from .conftest import PUBLISHER, ROOT, run_cli, write_config

FAKES = Path(__file__).resolve().parent / "fakes"
RED, GREEN, BLUE, WHITE, YELLOW = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 255),
    (255, 255, 0),
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Puts the fake picamera2 and libcamera in place; call it to set the scenario."""

    def forget() -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in ("picamera2", "libcamera"):
                del sys.modules[name]

    forget()
    monkeypatch.syspath_prepend(str(FAKES))
    import picamera2

    yield picamera2.scenario.reset
    picamera2.scenario.current.unstick.set()
    forget()


def camera_cfg(**camera: Any) -> config.Config:
    settings: dict[str, Any] = {
        "source": "picamera2",
        "width": 2028,
        "height": 1520,
        "timeout": 2.0,
    }
    settings.update(camera)
    return config.parse({"camera": settings, "target": {"kind": "local", "path": "/nonexistent"}})


def publisher(tmp_path: Path, cfg: config.Config) -> Publisher:
    cfg = config.Config(
        cfg.camera, cfg.variants, config.TargetConfig(kind="local", path=str(tmp_path))
    )
    p = Publisher(
        cfg,
        lambda: open_camera(cfg.camera, cfg.variants),
        LocalTarget(tmp_path),
        site_files=lambda: [],
    )
    p.start()
    return p


def colour_at(image: Image.Image, fx: float, fy: float) -> tuple[int, ...]:
    rgb = image.convert("RGB")
    return tuple(rgb.getpixel((int(rgb.width * fx), int(rgb.height * fy))))  # type: ignore[arg-type]


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def quadrants(image: Image.Image) -> list[tuple[int, ...]]:
    """The colours at the centres of the top-left, top-right, bottom-left, bottom-right."""
    return [colour_at(image, fx, fy) for fy in (0.25, 0.75) for fx in (0.25, 0.75)]


def assert_quadrants(image: Image.Image, expected: list[tuple[int, int, int]]) -> None:
    got = quadrants(image)
    assert all(near(g, e) for g, e in zip(got, expected, strict=True)), (got, expected)


# --- the fake itself follows picamera2 -------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "first_pixel"),
    [
        # picamera2's documented orders: RGB888 is B,G,R in memory, BGR888 is R,G,B.
        ("RGB888", [0, 0, 255]),
        ("BGR888", [255, 0, 0]),
        ("XBGR8888", [255, 0, 0, 255]),
        ("XRGB8888", [0, 0, 255, 255]),
    ],
)
def test_fake_uses_picamera2s_colour_orders(fake: Any, fmt: str, first_pixel: list[int]) -> None:
    fake(scene="red", stride_align=64)
    from picamera2 import Picamera2

    cam = Picamera2(0)
    cam.configure(cam.create_still_configuration(main={"format": fmt, "size": (636, 480)}))
    cam.start()
    array = cam.capture_array("main", wait=1)
    assert array.shape == (480, 636, len(first_pixel))
    assert array[0, 0].tolist() == first_pixel
    stride = cam.camera_configuration()["main"]["stride"]
    assert stride % 64 == 0 and stride > 636 * len(first_pixel)  # padded rows
    with cam.captured_request(wait=1) as request:
        assert request.make_image("main").convert("RGB").getpixel((5, 5)) == RED
    cam.close()


def test_fake_shapes_yuv420_as_picamera2_does(fake: Any) -> None:
    """`make_array` of a YUV420 stream: (height * 3 // 2, stride), Y rows then U and V."""
    fake(scene="red", stride_align=64)
    from picamera2 import Picamera2

    cam = Picamera2(0)
    cam.configure(cam.create_still_configuration(main={"format": "YUV420", "size": (636, 480)}))
    cam.start()
    array = cam.capture_array("main", wait=1)
    stride = cam.camera_configuration()["main"]["stride"]
    assert array.shape == (720, stride) and stride == 640
    # Red in full-range BT.601: Y 76, Cb 85, Cr 255; U rows, then V rows, stride / 2 wide.
    assert (array[0, 0], array[480, 0], array[600, 0]) == pytest.approx((76, 85, 255), abs=1)
    cam.close()


# --- colour order and strides end to end -----------------------------------------------


def test_a_red_scene_is_red_in_every_published_jpeg(fake: Any, tmp_path: Path) -> None:
    fake(scene="red")
    p = publisher(tmp_path, camera_cfg())
    result = p.publish_next()
    p.close()
    assert [r.name for r in result.images] == ["live.jpeg", "live800x600.jpeg", "live320x240.jpeg"]
    for r in result.images:
        with Image.open(tmp_path / r.name) as im:
            assert near(colour_at(im, 0.5, 0.5), RED, 8), r.name


def test_padded_rows_do_not_shear_the_image(fake: Any, tmp_path: Path) -> None:
    # 2028 x 4 bytes = 8112 is no multiple of 64: each row has 16 bytes of padding.
    scenario = fake(stride_align=64)
    p = publisher(tmp_path, camera_cfg())
    p.publish_next()
    stride = scenario.instances[0].camera_configuration()["main"]["stride"]
    assert stride == 2048  # YUV420: 2028 bytes a Y row, 20 of padding
    with Image.open(tmp_path / "live.jpeg") as im:
        assert im.size == (2028, 1520)
        assert_quadrants(im, [RED, GREEN, BLUE, WHITE])
        # Near the right edge at the bottom: a stride mistake shifts it by rows x padding.
        assert near(colour_at(im, 0.99, 0.99), WHITE)
        assert near(colour_at(im, 0.01, 0.99), BLUE)
    p.close()


@pytest.mark.parametrize("fmt", ["BGR888", "RGB888", "XRGB8888", "XBGR8888"])
def test_rgb_main_formats_are_unpacked_right(
    fake: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    fake()
    monkeypatch.setattr(picam_mod, "MAIN_FORMAT", fmt)
    cam = PiCamera(camera_cfg(width=636, height=480).camera)
    with cam.capture() as frame:
        assert frame.image.mode in ("RGB", "RGBX")
        assert_quadrants(frame.image, [RED, GREEN, BLUE, WHITE])
        assert frame.planes is None  # the renderer converts them
    cam.close()


def test_an_rgbx_main_image_is_the_camera_buffer_until_release(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake()
    monkeypatch.setattr(picam_mod, "MAIN_FORMAT", "XBGR8888")
    cam = PiCamera(camera_cfg(width=640, height=480).camera)
    frame = cam.capture()
    assert frame.image.mode == "RGBX"
    assert frame.image.getpixel((10, 10))[:3] == RED
    image = frame.image
    frame.release()
    # No copy was made: the camera has refilled the buffer the image maps.
    assert image.getpixel((10, 10))[:3] == (0x11, 0x11, 0x11)
    cam.close()


def test_the_frame_planes_are_the_camera_buffer_with_its_padded_rows(fake: Any) -> None:
    """YUV420 main: the planes view the camera's buffer, nothing converted or copied."""
    np = pytest.importorskip("numpy")
    scenario = fake(stride_align=64)  # 2028 bytes a Y row, 2048 apart
    cam = PiCamera(camera_cfg().camera)
    frame = cam.capture()
    request = cam._loans[0].request
    assert frame.image is None and frame.planes is not None
    y, u, v = frame.planes
    stride = scenario.instances[0].camera_configuration()["main"]["stride"]
    assert (y.shape, u.shape, v.shape) == ((1520, 2028), (760, 1014), (760, 1014))
    assert y.strides == (stride, 1) and u.strides == (stride // 2, 1)
    assert np.shares_memory(y, request.buffers["main"])
    assert_quadrants(to_image(frame.planes), [RED, GREEN, BLUE, WHITE])
    frame.release()
    # No copy: the camera has refilled the buffer the planes view.
    assert y[10, 10] == 0x11
    cam.close()


def test_the_overlay_gets_writable_planes_and_the_frames_metadata(fake: Any) -> None:
    """With the overlay on, the buffers are mapped for writing (it draws in place, then
    restores them; a read-only map would skip the cache write-back); otherwise they are
    read-only and the renderer copies what it draws on. The request's metadata rides
    along for the overlay's fields."""
    fake()
    for writable in (False, True):
        cam = PiCamera(camera_cfg().camera, config.DEFAULT_VARIANTS, writable=writable)
        frame = cam.capture()
        request = cam._loans[0].request
        assert frame.planes is not None and frame.lores is not None
        assert request.map_writes == [writable, writable]
        assert all(p.flags.writeable == writable for p in (*frame.planes, *frame.lores))
        assert frame.metadata["ExposureTime"] > 0 and frame.metadata["Lux"] == 400.0
        assert frame.metadata["ColourTemperature"] == 5600
        ov = Overlay(
            OverlayConfig(enabled=True, text="{exposure} {gain} {lux} {colour_temperature}")
        )
        assert ov.text(frame.captured_at, 1, frame.metadata) == "1/50 s 1.0 400 5600"
        r = Renderer(config.DEFAULT_VARIANTS, overlay=ov)
        before = [p.copy() for p in frame.planes]
        assert len(r.render(frame, seq=1)) == 3
        assert all((a == b).all() for a, b in zip(before, frame.planes, strict=True))
        frame.release()
        cam.close()


# --- rotation and flips are the ISP's --------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "flips", "top_left"),
    [
        ({}, (False, False), RED),
        ({"rotation": 180}, (True, True), WHITE),
        ({"hflip": True}, (True, False), GREEN),
        ({"vflip": True}, (False, True), BLUE),
        ({"rotation": 180, "hflip": True}, (False, True), BLUE),
        ({"rotation": 180, "hflip": True, "vflip": True}, (False, False), RED),
    ],
)
def test_rotation_and_flips_become_a_libcamera_transform(
    fake: Any,
    tmp_path: Path,
    settings: dict[str, Any],
    flips: tuple[bool, bool],
    top_left: tuple[int, int, int],
) -> None:
    scenario = fake()
    p = publisher(tmp_path, camera_cfg(**settings))
    p.publish_next()
    transform = scenario.instances[0].camera_configuration()["transform"]
    assert (transform.hflip, transform.vflip, transform.transpose) == (*flips, False)
    for name in ("live.jpeg", "live320x240.jpeg"):
        with Image.open(tmp_path / name) as im:
            assert near(colour_at(im, 0.25, 0.25), top_left), name
    p.close()


# --- lores --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "boxes", "expected"),
    [
        ((2028, 1520), [None, (800, 600), (320, 240)], (800, 600)),
        ((2028, 1520), [None], None),  # only the full size: no lores
        ((2028, 1520), [(1600, 1200)], None),  # over half of main's pixels
        ((1920, 1080), [(1280, 720), (800, 600)], (1280, 720)),  # 44% of them
        ((1920, 1080), [(640, 480)], (640, 360)),  # 16:9 main: the width limits
        ((1920, 1080), [(300, 400)], (300, 170)),  # 169 rounded up to even
        ((4056, 3040), [(320, 240), (1024, 768)], (1024, 768)),
    ],
)
def test_lores_size_covers_the_small_variants_at_mains_aspect(
    main: tuple[int, int],
    boxes: list[tuple[int, int] | None],
    expected: tuple[int, int] | None,
) -> None:
    variants = [
        config.VariantConfig(f"v{i}.jpeg", *(box or (None, None))) for i, box in enumerate(boxes)
    ]
    size = lores_size(main, variants)
    assert size == expected
    if size is not None:
        for v in variants:
            w, h = v.size_for(*main)
            if w * h <= main[0] * main[1] / 2:
                assert size[0] >= w and size[1] >= h
        assert abs(size[0] / size[1] - main[0] / main[1]) < 0.01 * main[0] / main[1]


def test_small_variants_come_from_the_lores_stream(fake: Any, tmp_path: Path) -> None:
    scenario = fake(lores_marker=True)  # a yellow square that only the lores stream shows
    p = publisher(tmp_path, camera_cfg())
    p.publish_next()
    lores = scenario.instances[0].camera_configuration()["lores"]
    assert (lores["format"], lores["size"]) == ("YUV420", (800, 600))
    assert lores["stride"] == 832  # padded
    with Image.open(tmp_path / "live.jpeg") as im:
        assert near(colour_at(im, 0.5, 0.5), WHITE)  # no marker: from the main stream
    for name in ("live800x600.jpeg", "live320x240.jpeg"):
        with Image.open(tmp_path / name) as im:
            assert near(colour_at(im, 0.5, 0.5), YELLOW), name
            assert near(colour_at(im, 0.2, 0.2), RED), name
            assert near(colour_at(im, 0.8, 0.8), WHITE), name
    p.close()


def test_the_lores_frame_is_yuv420_planes_of_the_right_colours(fake: Any) -> None:
    """The lores stream comes as its planes, views of the camera's buffer (nothing
    converted)."""
    np = pytest.importorskip("numpy")
    fake(stride_align=128)
    cam = PiCamera(camera_cfg().camera, config.DEFAULT_VARIANTS)
    request = None
    with cam.capture() as frame:
        request = cam._loans[0].request
        assert frame.lores is not None
        y, u, v = frame.lores
        assert (y.shape, u.shape, v.shape) == ((600, 800), (300, 400), (300, 400))
        assert y.strides == (896, 1) and u.strides == (448, 1)  # padded rows, in place
        assert np.shares_memory(y, request.buffers["lores"])
        assert_quadrants(to_image(frame.lores), [RED, GREEN, BLUE, WHITE])
        assert request.mapped == 2  # main and lores, until the release
    assert request.mapped == 0
    cam.close()


def test_lores_false_scales_on_the_cpu(fake: Any) -> None:
    scenario = fake()
    cam = PiCamera(camera_cfg(lores=False).camera, config.DEFAULT_VARIANTS)
    assert scenario.instances[0].camera_configuration()["lores"] is None
    with cam.capture() as frame:
        assert frame.lores is None
    cam.close()


def test_a_camera_without_a_second_stream_scales_on_the_cpu(
    fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = fake(single_stream=True)
    with caplog.at_level(logging.WARNING):
        cam = PiCamera(camera_cfg().camera, config.DEFAULT_VARIANTS)
    assert "no lores stream (camera 0 (imx477) refused the configuration" in caplog.text
    assert scenario.instances[0].camera_configuration()["lores"] is None
    with cam.capture() as frame:
        assert frame.lores is None
        assert_quadrants(to_image(frame.planes), [RED, GREEN, BLUE, WHITE])
    cam.close()


def test_libcamera_adjusting_the_size_is_followed(fake: Any, tmp_path: Path) -> None:
    fake(adjust_main=(2016, 1512))
    p = publisher(tmp_path, camera_cfg())
    result = p.publish_next()
    assert (result.images[0].width, result.images[0].height) == (2016, 1512)
    with Image.open(tmp_path / "live.jpeg") as im:
        assert_quadrants(im, [RED, GREEN, BLUE, WHITE])
    p.close()


# --- controls -------------------------------------------------------------------------


def test_exposure_gain_and_controls_reach_the_camera(fake: Any) -> None:
    scenario = fake()
    cfg = camera_cfg(
        exposure_time=10000, analogue_gain=2, controls={"Sharpness": 2, "AwbMode": 1.0}
    )
    cam = PiCamera(cfg.camera)
    controls = scenario.instances[0].camera_configuration()["controls"]
    assert controls["ExposureTime"] == 10000
    assert controls["AnalogueGain"] == 2.0 and isinstance(controls["AnalogueGain"], float)
    assert controls["Sharpness"] == 2.0 and isinstance(controls["Sharpness"], float)
    assert controls["AwbMode"] == 1 and isinstance(controls["AwbMode"], int)
    cam.close()


def test_an_unknown_control_names_itself_and_lists_the_others(fake: Any) -> None:
    scenario = fake()
    with pytest.raises(CameraError) as e:
        PiCamera(camera_cfg(controls={"Sharpnes": 1.0}).camera)
    message = str(e.value)
    assert message.startswith("camera.controls.Sharpnes: imx477 has no control Sharpnes")
    assert "Sharpness" in message and "AwbMode" in message
    assert not any(c.is_open for c in scenario.instances)  # closed again


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"AwbMode": 1.5}, "camera.controls.AwbMode: must be a whole number, got 1.5"),
        ({"AeEnable": 1}, "camera.controls.AeEnable: must be true or false, got 1"),
    ],
)
def test_a_control_of_the_wrong_type_is_refused(
    fake: Any, controls: dict[str, Any], message: str
) -> None:
    fake()
    with pytest.raises(CameraError, match=message.replace(".", r"\.")):
        PiCamera(camera_cfg(controls=controls).camera)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"autofocus": "continuous"}, {"AfMode": 2}),
        ({"autofocus": "manual", "lens_position": 0.5}, {"AfMode": 0, "LensPosition": 0.5}),
        ({"autofocus": "auto"}, {"AfMode": 1}),
        ({}, {}),
    ],
)
def test_autofocus_on_camera_module_3(
    fake: Any, settings: dict[str, Any], expected: dict[str, Any]
) -> None:
    scenario = fake(cameras=["imx708"])
    cam = PiCamera(camera_cfg(**settings).camera)
    controls = scenario.instances[0].camera_configuration()["controls"]
    assert {k: controls[k] for k in ("AfMode", "LensPosition") if k in controls} == expected
    assert ("autofocus" in scenario.events) == (settings.get("autofocus") == "auto")
    cam.close()


def test_autofocus_on_a_fixed_focus_camera_is_a_warning(
    fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = fake(cameras=["imx477"])
    with caplog.at_level(logging.WARNING):
        cam = PiCamera(camera_cfg(autofocus="continuous").camera)
    assert "AfMode" not in scenario.instances[0].camera_configuration()["controls"]
    assert "camera.autofocus = 'continuous' ignored: imx477 has no autofocus" in caplog.text
    cam.close()


# --- opening, describing, closing ----------------------------------------------------


def test_describe_names_the_sensor_and_the_streams(fake: Any) -> None:
    fake(cameras=["imx708"])
    cam = PiCamera(camera_cfg(rotation=180).camera, config.DEFAULT_VARIANTS)
    assert cam.describe() == (
        "Pi camera 0: imx708, sensor 4608x2592; frames 2028x1520 YUV420, "
        "lores 800x600 YUV420 (rotation 180)"
    )
    cam.close()


def test_configured_once_and_opened_once_for_many_frames(fake: Any, tmp_path: Path) -> None:
    scenario = fake()
    p = publisher(tmp_path, camera_cfg(width=640, height=480))
    for _ in range(5):
        p.publish_next()
    p.close()
    assert len(scenario.instances) == 1
    assert scenario.events.count("configure YUV420 640x480") == 1
    assert scenario.events[-2:] == ["stop", "close"]


def test_a_missing_camera_number_lists_the_cameras(fake: Any) -> None:
    fake(cameras=["imx477", "imx708"])
    with pytest.raises(
        CameraError, match=r"camera.camera_num is 2, but the cameras are 0: imx477, 1: imx708"
    ):
        PiCamera(camera_cfg(camera_num=2).camera)


def test_a_busy_camera_says_so(fake: Any) -> None:
    fake(busy_opens=1)
    with pytest.raises(CameraError, match="if another program holds it"):
        PiCamera(camera_cfg().camera)


def test_no_camera_at_all(fake: Any) -> None:
    fake(cameras=[])
    with pytest.raises(CameraError, match="no camera found: check the ribbon cable"):
        PiCamera(camera_cfg().camera)


def test_close_is_safe_twice_and_gives_back_lent_frames(fake: Any) -> None:
    scenario = fake()
    cam = PiCamera(camera_cfg(width=640, height=480).camera)
    frame = cam.capture()
    assert scenario.requests_out == 1
    cam.close()
    assert scenario.requests_out == 0
    frame.release()  # after close: nothing left to do, no error
    cam.close()
    with pytest.raises(CameraError, match="closed"):
        cam.capture()


def test_close_stops_the_camera_before_it_gives_back_a_lent_frame(fake: Any) -> None:
    """A stop during a long render closes the camera while the frame is still read: a
    request given back to a running camera is refilled under the encoder."""
    scenario = fake()
    cam = PiCamera(camera_cfg(width=640, height=480).camera, config.DEFAULT_VARIANTS)
    frame = cam.capture()
    cam.close()
    assert scenario.events[-3:] == ["flush", "stop", "close"]
    assert scenario.requests_out == 0
    assert frame.planes is not None and frame.lores is not None
    assert_quadrants(to_image(frame.planes), [RED, GREEN, BLUE, WHITE])
    assert_quadrants(to_image(frame.lores), [RED, GREEN, BLUE, WHITE])
    frame.release()


class ClosingRenderer(Renderer):
    """Closes the camera mid-render, as `cli._close` may on a stop."""

    close_camera: Callable[[], None] | None = None

    def render(self, frame: Frame, names: Any = None, **kw: Any) -> list[Any]:
        assert self.close_camera is not None
        self.close_camera()
        return super().render(frame, names, **kw)


def test_a_frame_rendered_while_the_camera_closes_is_published_whole(
    fake: Any, tmp_path: Path
) -> None:
    fake()
    cfg = camera_cfg(width=640, height=480)
    cfg = config.Config(
        cfg.camera, cfg.variants, config.TargetConfig(kind="local", path=str(tmp_path))
    )
    renderer = ClosingRenderer(cfg.variants)
    p = Publisher(
        cfg,
        lambda: open_camera(cfg.camera, cfg.variants),
        LocalTarget(tmp_path),
        renderer=renderer,
        site_files=lambda: [],
    )
    renderer.close_camera = p.camera.close
    p.start()
    result = p.publish_next()
    for r in result.images:
        assert_quadrants(Image.open(tmp_path / r.name), [RED, GREEN, BLUE, WHITE])
    p.close()


# --- requests always go back -----------------------------------------------------------


class FailingRenderer(Renderer):
    def render(self, frame: Frame, names: Any = None, **kw: Any) -> list[Any]:
        raise RenderError("injected")


def test_requests_are_released_when_render_fails(fake: Any, tmp_path: Path) -> None:
    scenario = fake()
    cfg = camera_cfg(width=640, height=480)
    cfg = config.Config(
        cfg.camera, cfg.variants, config.TargetConfig(kind="local", path=str(tmp_path))
    )
    p = Publisher(
        cfg,
        lambda: open_camera(cfg.camera, cfg.variants),
        LocalTarget(tmp_path),
        renderer=FailingRenderer(cfg.variants),
        site_files=lambda: [],
    )
    p.start()
    for _ in range(4):  # more failures than the camera has buffers: none may leak
        with pytest.raises(RenderError):
            p.publish_next()
        assert scenario.requests_out == 0
    p.close()


def test_requests_are_released_when_reading_the_frame_fails(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = fake()
    cam = PiCamera(camera_cfg().camera, config.DEFAULT_VARIANTS)

    def broken(*args: Any) -> Image.Image:
        raise ValueError("bad lores buffer")

    monkeypatch.setattr(picam_mod, "yuv420_arrays", broken)
    with pytest.raises(CameraError, match="could not read the frame: ValueError: bad lores buffer"):
        cam.capture()
    assert scenario.requests_out == 0
    cam.close()


def test_frames_released_in_a_loop_never_stall_the_camera(fake: Any) -> None:
    scenario = fake()
    cam = PiCamera(camera_cfg(width=640, height=480).camera, config.DEFAULT_VARIANTS)
    for _ in range(10):
        with cam.capture():
            assert scenario.requests_out == 1
    assert scenario.requests_out == 0
    cam.close()


# --- timeouts and recovery -------------------------------------------------------------


def test_a_timeout_flushes_closes_and_the_next_frame_reopens(fake: Any, tmp_path: Path) -> None:
    scenario = fake(timeouts=[2])
    p = publisher(tmp_path, camera_cfg(width=640, height=480, timeout=0.5))
    assert p.publish_next().seq == 1
    started = time.monotonic()
    with pytest.raises(CameraError, match=r"no frame within 0.5 s \(camera.timeout\)"):
        p.publish_next()
    assert time.monotonic() - started < 5
    # Flushed before the stop (or stop would wait behind the hung job), then closed.
    first = scenario.events.index("timeout")
    assert scenario.events[first + 1 : first + 4] == ["flush", "stop", "close"]
    assert p.camera.camera is None
    assert p.publish_next().seq == 2  # a new Picamera2, the same camera
    assert len(scenario.instances) == 2 and not scenario.instances[0].is_open
    assert scenario.requests_out == 0
    p.close()


def test_without_a_flush_stop_would_hang_and_close_gives_up_in_time(
    fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = fake(timeouts="always", hang_on_close=True)
    cam = PiCamera(camera_cfg(timeout=0.3).camera)
    with pytest.raises(CameraError):
        cam.capture()
    started = time.monotonic()
    with pytest.raises(CameraError, match=r"did not close within 0\.3 s"):
        cam.close()
    assert time.monotonic() - started < 3
    assert "close-stuck" in scenario.events
    cam.close()  # a second close has nothing left to do


# --- picamera2 not installed -----------------------------------------------------------


def test_missing_picamera2_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 -> ImportError
    with pytest.raises(CameraError) as e:
        PiCamera(camera_cfg().camera)
    assert "sudo apt install python3-picamera2" in str(e.value)
    assert "--system-site-packages" in str(e.value)


def test_picamera2_without_libcamera_says_so(fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in ("picamera2", "libcamera")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "libcamera", None)  # a pip-only picamera2
    with pytest.raises(CameraError, match="libcamera's Python bindings are not"):
        PiCamera(camera_cfg().camera)


def test_check_without_picamera2_as_a_user_sees_it(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "picamera2"
        [target]
        kind = "local"
        path = "{tmp_path / "out"}"
        """,
    )
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 1
    assert 'FAIL camera: camera.source = "picamera2" needs picamera2' in result.stdout
    assert "sudo apt install python3-picamera2" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# --- the real commands, in a subprocess with the fake on PYTHONPATH ----------------------


def fake_env(**scenario: Any) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join([str(FAKES), str(ROOT)]),
        "LIVECAM_FAKE_PICAMERA2": json.dumps(scenario),
    }


def pi_config(tmp_path: Path, **camera: Any) -> Path:
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in camera.items())
    return write_config(
        tmp_path,
        f"""
        [camera]
        source = "picamera2"
        width = 640
        height = 480
        {lines}
        [target]
        kind = "local"
        path = "{tmp_path / "out"}"
        [publish]
        status_interval = 0
        """,
    )


def test_check_reports_the_sensor_model_and_the_frame_size(tmp_path: Path) -> None:
    result = run_cli("check", "-c", str(pi_config(tmp_path)), env=fake_env(cameras=["imx708"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "ok   camera open: Pi camera 0: imx708, sensor 4608x2592; frames 640x480 YUV420"
        in result.stdout
    )
    assert "ok   camera capture: 640x480 at" in result.stdout


def test_run_exits_non_zero_when_the_camera_keeps_failing(tmp_path: Path) -> None:
    path = pi_config(tmp_path, interval=0.1, timeout=0.2, max_failures=3)
    started = time.monotonic()
    result = run_cli("run", "-c", str(path), env=fake_env(timeouts="always"), timeout=60)
    assert result.returncode == 1, result.stderr
    assert "camera failed 3 times in a row, giving up" in result.stderr
    assert result.stderr.count("no frame within 0.2 s") >= 3
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_run_recovers_from_a_timeout_and_keeps_publishing(tmp_path: Path) -> None:
    path = pi_config(tmp_path, interval=0.05, timeout=0.3)
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(path)],
        cwd=ROOT,
        env={**os.environ, **fake_env(timeouts=[3])},
        stderr=subprocess.PIPE,
        text=True,
    )
    manifest = tmp_path / "out" / "live.json"
    deadline = time.monotonic() + 30
    seq = 0
    while time.monotonic() < deadline and seq < 6:
        time.sleep(0.1)
        if manifest.exists():
            seq = json.loads(manifest.read_text())["seq"]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert seq >= 6, stderr
    assert proc.returncode == 0, stderr
    assert "camera failure 1 of 5: no frame within 0.3 s" in stderr
    assert stderr.count("camera open: Pi camera 0: imx477") == 2
