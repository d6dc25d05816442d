"""The camera under supervision: opened when needed, every call bounded in time, closed
and reopened with backoff after a failure, given up after `camera.max_failures` in a row.

Every call runs on one long-lived worker thread. A call that hangs (a stuck driver, a
dead cable) is abandoned with its thread, which stays behind as a daemon; the camera is
closed and reopened on a new worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from PIL import Image

from livecam.camera.base import PIXEL_MODES, Camera, Frame, Worker
from livecam.errors import CameraError, CameraFatalError

log = logging.getLogger(__name__)

T = TypeVar("T")


class CameraSupervisor:
    """Captures from the camera `open_camera` makes, within `timeout` (+2 s for the
    camera's own timeout to speak first); reopens it after any failure."""

    def __init__(
        self,
        open_camera: Callable[[], Camera],
        timeout: float,
        max_failures: int,
        *,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self._open = open_camera
        self.timeout = timeout
        self.max_failures = max_failures
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.camera: Camera | None = None
        self.failures = 0  # in a row
        self.stop: threading.Event | None = None  # set: waiting calls give up at once
        self._worker: Worker | None = None
        # Held by each capture, open and close: an extra frame (`peek`) waits for none.
        self._lock = threading.RLock()

    @property
    def retry_in(self) -> float:
        """Seconds to wait before the next capture: doubling with each failure in a row."""
        if not self.failures:
            return 0.0
        return float(min(self.backoff_cap, self.backoff * 2 ** (self.failures - 1)))

    def _call(self, fn: Callable[[], T], what: str, timeout: float) -> T:
        worker = self._worker = self._worker or Worker()
        try:
            return worker.call(fn, timeout, what, self.stop)
        finally:
            if worker.lost:
                self._worker = None  # left to its hung call; the next call gets a new one

    def capture(self) -> Frame:
        """A frame the renderer can use. Raises `CameraError` (the camera is then closed,
        to be reopened by the next call), `CameraFatalError` after `max_failures` in a row."""
        with self._lock:
            return self._capture()

    def _capture(self) -> Frame:
        try:
            if self.camera is None:
                self.camera = self._call(self._open, "opening the camera", self.timeout + 2.0)
                log.info("camera open: %s", self.camera.describe())
            frame = self._call(self.camera.capture, "capture", self.timeout + 2.0)
            check_frame(frame)
        except Exception as e:
            self.close()
            self.failures += 1
            error = e if isinstance(e, CameraError) else None
            if error is None:  # a driver bug is a camera failure too: reopen
                error = CameraError(f"capture failed: {type(e).__name__}: {e}")
            if self.failures >= self.max_failures:
                raise CameraFatalError(
                    f"camera failed {self.failures} times in a row, giving up (last: {error})"
                ) from e
            if error is e:
                raise
            raise error from e
        self.failures = 0
        return frame

    def peek(self, use: Callable[[Frame], T]) -> T | None:
        """`use(frame)` on an extra frame from the open camera, on its worker, the frame
        released after: for the preview between the publisher's captures. None when the
        camera is not open or is busy (the publisher's captures come first). A failure
        closes the camera for the publisher's next capture to reopen and count."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            camera = self.camera
            if camera is None or self.failures:
                return None

            def grab() -> T:
                with camera.capture() as frame:
                    check_frame(frame)
                    return use(frame)

            try:
                return self._call(grab, "preview capture", self.timeout + 2.0)
            except Exception as e:
                log.warning("preview capture failed: %s; reopening the camera", e)
                self.close()
                return None
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the camera (bounded too: a camera that hung in capture may hang here)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            try:
                self._call(camera.close, "closing the camera", self.timeout)
            except Exception:
                log.warning("closing the camera failed", exc_info=True)

    def shutdown(self) -> None:
        """Close the camera and let the worker thread end."""
        with self._lock:
            self._close()
            if self._worker is not None:
                self._worker.close()
                self._worker = None


def check_frame(frame: object) -> None:
    """A frame the renderer can use, or a CameraError saying what is wrong with it."""
    image = getattr(frame, "image", None)
    if not isinstance(frame, Frame) or not (
        isinstance(image, Image.Image) or frame.planes is not None
    ):
        raise CameraError(f"camera returned {type(frame).__name__}, not a frame")
    if image is not None and image.mode not in PIXEL_MODES:
        frame.release()
        raise CameraError(f"camera returned pixels in mode {image.mode!r}, not RGB")
    w, h = frame.size
    if w < 16 or h < 16:
        frame.release()
        raise CameraError(f"camera returned a {w}x{h} frame, too small")
    if frame.captured_at.tzinfo is None:
        frame.release()
        raise CameraError("camera returned a capture time without a time zone")
