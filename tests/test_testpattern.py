"""The test camera: recycled frames look like fresh ones; its planes are its image."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from livecam.camera.base import Frame
from livecam.camera.testpattern import TestPatternCamera

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("size", [(640, 480), (321, 199), (1920, 1080)])
def test_a_recycled_frame_is_repainted_exactly(size: tuple[int, int]) -> None:
    """The same instant drawn on a fresh frame, on a recycled one (only what the last
    capture drew is repainted) and on a copy of a frame still lent out."""
    times = iter([T0, T0 + timedelta(seconds=31.7), T0 + timedelta(seconds=7.2), T0, T0])
    camera = TestPatternCamera(*size, now=lambda: next(times))
    first = camera.capture()
    fresh = pixels(first)
    first.release()
    with camera.capture():  # the sun and the bar elsewhere
        pass
    lent = camera.capture()  # not released: the next capture copies it
    camera._count = 0
    again = camera.capture()
    assert pixels(again) == fresh
    lent.release()
    again.release()
    camera._count = 0
    assert pixels(camera.capture()) == fresh


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
