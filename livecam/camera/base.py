"""The camera interface: one capture call that returns a frame and its capture time."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from PIL import Image

from livecam.errors import CameraError

if TYPE_CHECKING:  # numpy is optional: cameras without it leave the arrays at None
    import numpy as np


# The Pillow modes a frame's image may have: what the renderer and the encoders take.
PIXEL_MODES = ("RGB", "RGBX", "L")


@dataclass
class Frame:
    """One captured frame.

    `image` is the full capture in mode "RGB" or "RGBX" (Pillow keeps RGB at 4 bytes a
    pixel, so "RGBX" maps a camera buffer without a copy). `lores` is an optional
    smaller copy the camera scaled itself (picamera2's ISP), used for small variants.
    `captured_at` is timezone-aware UTC wall time. Call `release()` (or use `with`)
    once the pixels are no longer needed: a camera may lend its own buffer.

    `array`, when the camera has one, is the same pixels as a uint8 numpy array of
    shape (height, width, 4) in R, G, B, X order for an "RGBX" image (a view of the
    same memory, rows may be padded) or (height, width, 3) for "RGB"; the renderer
    resizes it with OpenCV when it can. `lores_array` is the same for `lores`.

    `lores_planes` is the lores copy as the camera has it, YUV420: the Y, U (Cb) and V
    (Cr) planes as uint8 numpy arrays, Y (h, w), U and V (ceil(h / 2), ceil(w / 2)),
    full-range (JFIF) values, rows contiguous, maybe views of the camera's buffer. A
    camera that gives them may leave `lores` None: the renderer encodes the planes as
    they are, and makes an image of them only for its Pillow path.
    """

    image: Image.Image
    captured_at: datetime
    lores: Image.Image | None = None
    array: np.ndarray | None = field(default=None, repr=False)
    lores_array: np.ndarray | None = field(default=None, repr=False)
    lores_planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _release: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

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


def call_within(call: Callable[[], T], timeout: float, what: str) -> T:
    """`call()` on a daemon thread, waiting at most `timeout` s; a call that hangs is
    abandoned (a frame it returns late is released) and reported as a CameraError."""
    box: list[tuple[bool, Any]] = []
    done = threading.Event()
    lock = threading.Lock()
    abandoned = False

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, call())
        except BaseException as e:
            outcome = (False, e)
        with lock:
            box.append(outcome)
            done.set()
            late = abandoned
        if late and outcome[0] and isinstance(outcome[1], Frame):
            outcome[1].release()

    threading.Thread(target=run, name="camera-call", daemon=True).start()
    if not done.wait(timeout):
        with lock:
            if not done.is_set():
                abandoned = True
                raise CameraError(f"{what} did not return within {timeout:g} s (camera hung?)")
    ok, value = box[0]
    if ok:
        return cast(T, value)
    raise value
