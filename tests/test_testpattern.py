"""The test camera: recycled frames look like fresh ones; the array is the image's memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from livecam.camera.testpattern import TestPatternCamera

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("size", [(640, 480), (321, 199), (1920, 1080)])
def test_a_recycled_frame_is_repainted_exactly(size: tuple[int, int]) -> None:
    """The same instant drawn on a fresh frame, on a recycled one (only what the last
    capture drew is repainted) and on a copy of a frame still lent out."""
    times = iter([T0, T0 + timedelta(seconds=31.7), T0 + timedelta(seconds=7.2), T0, T0])
    camera = TestPatternCamera(*size, now=lambda: next(times))
    first = camera.capture()
    fresh = first.image.tobytes()
    first.release()
    with camera.capture():  # the sun and the bar elsewhere
        pass
    lent = camera.capture()  # not released: the next capture copies it
    camera._count = 0
    again = camera.capture()
    assert again.image.tobytes() == fresh
    lent.release()
    again.release()
    camera._count = 0
    assert camera.capture().image.tobytes() == fresh


def test_the_array_is_the_frame_itself() -> None:
    np = pytest.importorskip("numpy")
    camera = TestPatternCamera(320, 240)
    with camera.capture() as frame:
        array = frame.array
        assert array is not None
        assert array.shape == (240, 320, 4) and not array.flags.owndata
        assert np.array_equal(array, np.asarray(frame.image))
