"""Fake picamera2/request.py: `CompletedRequest` and `MappedArray`.

As in picamera2: a request's buffers are the camera's own memory; `MappedArray` hands
out that memory itself (no copy), `make_buffer`/`make_array` copy it, `make_image`
maps the four RGB formats to Pillow as `_get_pil_mode` does, and `release()` counts
references (a second release raises). Unlike a careful application, nothing stops
code from reading a buffer after its release: a running fake camera then refills it with
the next frame (here: junk), which is how the real one fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from picamera2 import scenario

if TYPE_CHECKING:
    from picamera2.picamera2 import Picamera2

PIL_MODES = {"RGB888": "BGR", "BGR888": "RGB", "XBGR8888": "RGBX", "XRGB8888": "BGRX"}
RECYCLED = 0x11  # what a buffer holds once the camera has reused it


def make_array_shared(buffer: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """picamera2's Helpers._make_array_shared: a 2D view of a 1D buffer, no copy."""
    fmt = config["format"]
    w, h = config["size"]
    stride = config["stride"]
    if fmt in ("BGR888", "RGB888"):
        return buffer[: h * stride].reshape((h, stride))[:, : w * 3].reshape((h, w, 3))
    if fmt in ("XBGR8888", "XRGB8888"):
        return buffer[: h * stride].reshape((h, stride))[:, : w * 4].reshape((h, w, 4))
    if fmt in ("YUV420", "YVU420"):
        return buffer[: h * 3 // 2 * stride].reshape((h * 3 // 2, stride))
    raise RuntimeError("Format " + fmt + " not supported")


class CompletedRequest:
    def __init__(
        self,
        picam2: Picamera2,
        buffers: dict[str, np.ndarray],
        metadata: dict[str, Any],
        index: int,
    ) -> None:
        self.picam2 = picam2
        self.index = index  # which of the camera's buffers (the fake's bookkeeping)
        self.ref_count = 1
        self.config = dict(picam2.camera_config)
        self.stream_map = {name: name for name in buffers}
        self.buffers = buffers
        self.metadata = metadata
        self.map_writes: list[bool] = []
        self.stop_count = picam2.stop_count
        self.mapped = 0
        scenario.current.requests_out += 1

    def _check(self) -> None:
        if self.ref_count <= 0:
            # The real request has dropped its libcamera request: an AttributeError there.
            raise RuntimeError("CompletedRequest used after release()")

    def acquire(self) -> None:
        if self.ref_count == 0:
            raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
        self.ref_count += 1

    def release(self) -> None:
        self.ref_count -= 1
        if self.ref_count < 0:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        if self.ref_count == 0:
            scenario.current.requests_out -= 1
            self.picam2._recycle(self)

    def make_buffer(self, name: str) -> np.ndarray:
        self._check()
        if self.stream_map.get(name) is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return np.array(self.buffers[name], dtype=np.uint8)

    def make_array(self, name: str) -> np.ndarray:
        self._check()
        config = self.config.get(name)
        if config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        # A copy, contiguous, as picamera2's (np.copy or np.ascontiguousarray): a YUV420
        # view is contiguous already, and must not outlive the request's buffer.
        return np.array(make_array_shared(self.buffers[name], config), copy=True)

    def make_image(
        self, name: str, width: int | None = None, height: int | None = None
    ) -> Image.Image:
        self._check()
        config = self.config[name]
        mode = PIL_MODES.get(config["format"])
        if mode is None:
            raise RuntimeError(f"Stream format {config['format']} not supported for PIL images")
        w, h = config["size"]
        buffer = np.array(self.buffers[name])  # a copy: the image must not share it
        image = Image.frombuffer("RGB", (w, h), buffer, "raw", mode, config["stride"], 1)
        if (width or w, height or h) != (w, h):
            image = image.resize((width or w, height or h))
        return image

    def get_metadata(self) -> dict[str, Any]:
        self._check()
        return dict(self.metadata)

    def save(self, name: str, file_output: Any, format: str | None = None) -> None:
        self.make_image(name).save(file_output, format=format or "jpeg")


class MappedArray:
    """The named stream's buffer itself, as picamera2 maps it (reshape=False: 1D)."""

    def __init__(
        self, request: CompletedRequest, stream: str, reshape: bool = True, write: bool = True
    ):
        self.__request = request
        self.__stream = stream
        self.__reshape = reshape
        self.__write = write
        self.__array: np.ndarray | None = None

    def __enter__(self) -> MappedArray:
        request = self.__request
        request._check()
        buffer = request.buffers[self.__stream]
        array = buffer
        if self.__reshape:
            array = make_array_shared(buffer, request.config[self.__stream])
        request.mapped += 1
        request.map_writes.append(self.__write)  # write=False skips the cache write-back
        self.__array = array
        return self

    def __exit__(self, *exc: object) -> None:
        if self.__array is not None:
            self.__array = None
            self.__request.mapped -= 1

    @property
    def array(self) -> np.ndarray | None:
        return self.__array
