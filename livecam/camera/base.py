"""The camera interface: one capture call that returns a frame and its capture time."""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from PIL import Image

from livecam.errors import CameraError

if TYPE_CHECKING:  # numpy is optional: cameras without it give images, not planes
    import numpy as np


# The Pillow modes a frame's image may have: what the renderer and the encoders take
# (YCbCr: a JPEG decoded without its colour conversion).
PIXEL_MODES = ("RGB", "RGBX", "L", "YCbCr")


class Planes(NamedTuple):
    """An image as YUV420 planes, the pixels a JPEG holds: Y (h, w), U (Cb) and V (Cr)
    (ceil(h / 2), ceil(w / 2)), uint8 numpy arrays, full-range (JFIF, picamera2's sYCC)
    values, rows contiguous (any row stride), maybe views of a camera's buffer."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]


@dataclass
class Frame:
    """One captured frame.

    Its pixels are `planes` (a camera that delivers YUV420: nothing to convert), or
    `image`, a Pillow image in one of `PIXEL_MODES` (the renderer converts it once), or
    both, the same pixels. `lores` is an optional smaller copy the camera scaled itself
    (picamera2's ISP), used for small variants. `captured_at` is timezone-aware UTC wall
    time. Call `release()` (or use `with`) once the pixels are no longer needed: a
    camera may lend its own buffer. `metadata` is what the camera reported with the
    frame, in picamera2's names (ExposureTime, AnalogueGain, Lux, ColourTemperature, ...).
    """

    image: Image.Image | None
    captured_at: datetime
    planes: Planes | None = field(default=None, repr=False)
    lores: Planes | None = field(default=None, repr=False)
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)
    _release: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        if self.image is not None:
            return self.image.size
        if self.planes is not None:
            return self.planes.size
        return (0, 0)

    def release(self) -> None:
        """Give the pixels back to the camera; safe to call twice."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> Frame:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Camera(ABC):
    """A source of frames. Opened by its constructor, closed with `close()`."""

    @abstractmethod
    def capture(self) -> Frame:
        """Capture one frame; raise `CameraError` when none can be had."""

    def describe(self) -> str:
        """A one-line description for logs and `check` (model, size)."""
        return type(self).__name__

    def close(self) -> None:  # noqa: B027 - most cameras hold nothing
        """Release the device; safe to call twice."""

    def __enter__(self) -> Camera:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


T = TypeVar("T")


class _Call:
    """One call handed to the worker, and its outcome."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.abandoned = False
        self.outcome: tuple[bool, Any] = (False, None)

    def run(self) -> None:
        try:
            outcome: tuple[bool, Any] = (True, self.fn())
        except BaseException as e:
            outcome = (False, e)
        with self.lock:
            self.outcome = outcome
            self.done.set()
            late = self.abandoned
        if late and outcome[0] and isinstance(outcome[1], Frame):
            outcome[1].release()  # nobody waits for it any more: give the buffer back
        elif late and outcome[0] and isinstance(outcome[1], Camera):
            outcome[1].close()  # an open that finished late holds the device: free it


class Worker:
    """One daemon thread that runs calls in turn, each waited for at most a timeout."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.lost = False  # to a call that hung
        self._thread = threading.Thread(target=self._work, name="camera", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            call.run()

    def call(
        self,
        fn: Callable[[], T],
        timeout: float,
        what: str,
        stop: threading.Event | None = None,
    ) -> T:
        """`fn()` on the worker; a CameraError if it does not return within `timeout` s
        (or `stop` is set first), the worker then being lost to the hung call."""
        call = _Call(fn)
        self._calls.put(call)
        deadline = time.monotonic() + timeout
        while not call.done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            stopping = stop is not None and stop.is_set()
            if not stopping and time.monotonic() < deadline:
                continue
            with call.lock:
                if call.done.is_set():
                    break
                call.abandoned = self.lost = True
            self.close()  # its thread ends if the call ever returns
            if stopping:
                raise CameraError(f"{what} abandoned: stopping")
            raise CameraError(f"{what} did not return within {timeout:g} s (camera hung?)")
        ok, value = call.outcome
        if ok:
            return cast(T, value)
        raise value

    def close(self) -> None:
        self._calls.put(None)


def call_within(call: Callable[[], T], timeout: float, what: str) -> T:
    """`call()` on a thread of its own, waiting at most `timeout` s; a call that hangs is
    abandoned (a frame it returns late is released) and reported as a CameraError."""
    worker = Worker()
    try:
        return worker.call(call, timeout, what)
    finally:
        worker.close()
