"""The test camera: recycled frames look like fresh ones; its planes are its image."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from livecam.camera.base import Frame
from livecam.camera.testpattern import TestPatternCamera

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("size", [(640, 480), (321, 199), (1920, 1080)])
def test_a_recycled_frame_is_repainted_exactly(size: tuple[int, int]) -> None:
    """The same second drawn on a fresh frame, on a copy of a frame still lent out and
    on a recycled one (only what the last second drew is repainted)."""
    times = iter([T0 + timedelta(seconds=s) for s in (0, 31.7, 7.2, 0.4, 5, 0)])
    camera = TestPatternCamera(*size, now=lambda: next(times))
    first = camera.capture()
    fresh = pixels(first)
    first.release()
    with camera.capture():  # the sun and the bar elsewhere
        pass
    lent = camera.capture()  # not released: the next capture draws on a copy
    again = camera.capture()
    assert pixels(again) == fresh
    lent.release()
    again.release()
    with camera.capture():
        pass
    assert pixels(camera.capture()) == fresh


def test_captures_within_a_second_share_one_picture() -> None:
    """As a Pi camera hands over a buffer, the test camera draws only when the second
    changes; its captures keep their own times."""
    times = [T0 + timedelta(seconds=s) for s in (0.05, 0.5, 0.99, 1.0)]
    camera = TestPatternCamera(320, 240, now=iter(times).__next__)
    frames = [camera.capture() for _ in times]
    assert [f.captured_at for f in frames] == times
    assert pixels(frames[0]) == pixels(frames[1]) == pixels(frames[2])
    shared, again = frames[0].planes, frames[1].planes
    if shared is not None and again is not None:  # with numpy: one buffer, lent read-only
        for x, y in zip(shared, again, strict=True):
            assert x.base is y.base and not x.flags.writeable and not y.flags.writeable
    assert pixels(frames[3]) != pixels(frames[2])  # a new second, drawn on a copy
    for f in frames:
        f.release()


def pixels(frame: Frame) -> tuple[bytes, ...]:
    assert frame.image is not None
    planes = () if frame.planes is None else tuple(p.tobytes() for p in frame.planes)
    return (frame.image.tobytes(), *planes)


@pytest.mark.parametrize("size", [(320, 240), (321, 199)])
def test_the_planes_are_the_image_as_yuv420(size: tuple[int, int]) -> None:
    """Kept in step box by box, the planes equal a whole conversion of the image."""
    np = pytest.importorskip("numpy")
    fast = pytest.importorskip("livecam.render.fast")
    times = iter([T0, T0 + timedelta(seconds=31.7), T0 + timedelta(seconds=7.2)])
    camera = TestPatternCamera(*size, now=lambda: next(times))
    for _ in range(3):
        with camera.capture() as frame:
            assert frame.image is not None and frame.planes is not None
            for ours, whole in zip(frame.planes, fast.planes_of(frame.image), strict=True):
                assert np.array_equal(ours, whole)


@pytest.mark.parametrize(("size", "lores"), [((1920, 1080), (800, 450)), ((321, 199), (160, 98))])
def test_the_lores_copy_is_the_planes_scaled(size: tuple[int, int], lores: tuple[int, int]) -> None:
    """Kept in step box by box, as a Pi's ISP gives it: the whole planes resized."""
    np = pytest.importorskip("numpy")
    cv2 = pytest.importorskip("cv2")
    times = iter([T0, T0 + timedelta(seconds=31.7), T0 + timedelta(seconds=7.2), T0])
    camera = TestPatternCamera(*size, now=lambda: next(times), lores=lores)
    lent = camera.capture()  # not released: the next capture copies it
    for _ in range(3):
        with camera.capture() as frame:
            assert frame.planes is not None and frame.lores is not None
            assert frame.lores.size == lores
            for plane, small in zip(frame.planes, frame.lores, strict=True):
                whole = cv2.resize(
                    plane,
                    small.shape[::-1],
                )
                assert np.array_equal(small, whole)
    lent.release()


def test_open_camera_gives_the_test_camera_a_lores_copy_as_configured() -> None:
    from livecam.camera import open_camera
    from livecam.config import DEFAULT_VARIANTS, CameraConfig

    lores = CameraConfig(source="test", width=640, height=480)
    with open_camera(lores, DEFAULT_VARIANTS) as cam, cam.capture() as frame:
        assert frame.lores is not None and frame.lores.size == (320, 240)
    no_lores = CameraConfig(source="test", width=640, height=480, lores=False)
    with open_camera(no_lores, DEFAULT_VARIANTS) as cam, cam.capture() as frame:
        assert frame.lores is None
