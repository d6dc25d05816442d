"""RGB to JPEG's YCbCr 4:2:0 planes by libjpeg-turbo's own conversion, through ctypes.

The planes path converts each frame once (livecam/planes.py). libjpeg-turbo's SIMD
conversion and chroma downsampling, the ones its encoder runs on RGB input, take 0.75x
of OpenCV's four passes at 1080p and 0.7x at 12 MP (scripts/bench.py --alternatives),
and give exactly what an RGB encode would have put in the JPEG. TurboJPEG exposes them
as `tjEncodeYUVPlanes` (since 1.4); no Python binding does (simplejpeg only encodes
planes, PyTurboJPEG neither), so this calls it from `libturbojpeg.so.0`, Debian's and
Raspberry Pi OS's `libturbojpeg0`. Without the library, OpenCV converts.

Every call is checked before it reaches C: shapes, strides and the buffers' room for
the rows libjpeg-turbo writes (Y padded to even, as its planes interface has it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

_TJPF = {3: 0, 4: 2}  # channels -> TJPF_RGB, TJPF_RGBX
_TJSAMP_420 = 2


def _load() -> ctypes.CDLL | None:
    names = [ctypes.util.find_library("turbojpeg"), "libturbojpeg.so.0", "libturbojpeg.so"]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)  # a CDLL call releases the GIL
            # tjGetErrorStr2 is 2.0's (tjEncodeYUVPlanes 1.4's): older ones are not used.
            encode, init, error = lib.tjEncodeYUVPlanes, lib.tjInitCompress, lib.tjGetErrorStr2
            destroy = lib.tjDestroy
        except (OSError, AttributeError):
            continue
        init.restype = ctypes.c_void_p
        init.argtypes = []
        error.restype = ctypes.c_char_p
        error.argtypes = [ctypes.c_void_p]
        destroy.restype = ctypes.c_int
        destroy.argtypes = [ctypes.c_void_p]
        encode.restype = ctypes.c_int
        encode.argtypes = [
            ctypes.c_void_p,  # handle
            ctypes.c_void_p,  # srcBuf
            ctypes.c_int,  # width
            ctypes.c_int,  # pitch
            ctypes.c_int,  # height
            ctypes.c_int,  # pixelFormat
            ctypes.POINTER(ctypes.c_void_p),  # dstPlanes
            ctypes.POINTER(ctypes.c_int),  # strides
            ctypes.c_int,  # subsamp
            ctypes.c_int,  # flags
        ]
        return lib
    return None


_lib = _load()
_local = threading.local()


class _Handle:
    """A thread's TurboJPEG compressor, destroyed with the thread's locals."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self.value = lib.tjInitCompress()
        if not self.value:
            raise MemoryError("libjpeg-turbo could not make a compressor")

    def __del__(self) -> None:
        if getattr(self, "value", None):
            self._lib.tjDestroy(self.value)


def available() -> bool:
    """Whether libjpeg-turbo's conversion can be used (libturbojpeg0 is installed)."""
    return _lib is not None


def to_planes(rgb: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Write `rgb`'s JPEG planes (JFIF YCbCr, chroma 4:2:0) into `y`, `u` and `v`.

    `rgb` is (height, width, 3 or 4) uint8, RGB or RGBX, rows of contiguous pixels;
    `y` must have room for the rows and columns padded to even (libjpeg-turbo writes
    them, repeating the edge), `u` and `v` for half of those; any row strides."""
    if _lib is None:
        raise RuntimeError("libturbojpeg is not installed")
    h, w = rgb.shape[:2]
    channels = rgb.shape[2] if rgb.ndim == 3 else 0
    ch, cw = (h + 1) // 2, (w + 1) // 2
    if (
        channels not in _TJPF
        or rgb.dtype.name != "uint8"
        or rgb.strides[1:] != (channels, 1)
        or rgb.strides[0] < w * channels
        or not (h and w)
    ):
        raise ValueError(f"not RGB(X) rows for libjpeg-turbo: {rgb.shape} {rgb.strides}")
    for plane, rows, cols in ((y, 2 * ch, 2 * cw), (u, ch, cw), (v, ch, cw)):
        if (
            plane.dtype.name != "uint8"
            or not plane.flags.writeable
            or plane.ndim != 2
            or plane.strides[1] != 1
            or plane.strides[0] < cols
            or plane.shape[0] < rows
            or plane.shape[1] < cols
        ):
            raise ValueError(
                f"a {plane.shape} {plane.dtype} plane (strides {plane.strides}) cannot take"
                f" {cols}x{rows} uint8"
            )
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = _Handle(_lib)
    handle = compressor.value
    planes = (ctypes.c_void_p * 3)(y.ctypes.data, u.ctypes.data, v.ctypes.data)
    strides = (ctypes.c_int * 3)(y.strides[0], u.strides[0], v.strides[0])
    pixel_format = _TJPF[channels]
    if _lib.tjEncodeYUVPlanes(
        handle, rgb.ctypes.data, w, rgb.strides[0], h, pixel_format, planes, strides,
        _TJSAMP_420, 0,
    ):  # fmt: skip
        message = _lib.tjGetErrorStr2(handle) or b"unknown error"
        raise ValueError(f"libjpeg-turbo: {message.decode(errors='replace')}")
