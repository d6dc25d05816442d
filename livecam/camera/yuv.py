"""YUV420 (I420) camera buffers to Pillow images, with or without numpy and OpenCV.

picamera2's lores stream is YUV420 on a Pi 4 and earlier (the VC4 ISP allows nothing
else there). Its layout, as picamera2's own `CompletedRequest.save` reads it: a Y plane
of `height` rows of `stride` bytes, then U and V planes of `height / 2` rows of
`stride / 2` bytes each. Pillow maps each plane in place ("L" images with a stride),
upsamples the two chroma planes and converts YCbCr to RGB with the JFIF (full-range
BT.601) matrix, which is the sYCC colour space picamera2's still configuration asks
libcamera for: no colour shift, and no copy before the conversion itself.

`yuv420_arrays` converts nothing: the planes as numpy views, which the renderer's
planes path resizes and encodes as they are (PiCamera hands them over).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    import numpy as np

# Anything with the buffer protocol: a numpy array, memoryview, bytes, mmap.
# (collections.abc.Buffer only exists from Python 3.12.)
BufferLike = Any


def yuv420_planes(
    buf: BufferLike, size: tuple[int, int], stride: int
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """The Y, U and V planes of a YUV420 buffer as "L" images that share its memory.

    `size` is the image's (width, height), both even; `stride` the bytes per Y row.
    The images are only valid while `buf` is.
    """
    w, h = size
    view: Any = memoryview(buf).cast("B")
    cstride, u_at, v_at = _layout(size, stride, len(view))
    cw, ch = w // 2, h // 2
    y = Image.frombuffer("L", (w, h), view, "raw", "L", stride, 1)
    u = Image.frombuffer("L", (cw, ch), view[u_at:], "raw", "L", cstride, 1)
    v = Image.frombuffer("L", (cw, ch), view[v_at:], "raw", "L", cstride, 1)
    return y, u, v


def _layout(size: tuple[int, int], stride: int, length: int) -> tuple[int, int, int]:
    """(chroma stride, U offset, V offset) of a YUV420 buffer, or a ValueError."""
    w, h = size
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise ValueError(f"YUV420 needs an even width and height, got {w}x{h}")
    if stride < w or stride % 2:
        raise ValueError(f"YUV420 stride {stride} is odd or shorter than the width {w}")
    cstride, ch = stride // 2, h // 2
    u_at = stride * h
    v_at = u_at + cstride * ch
    if length < v_at + cstride * ch:
        raise ValueError(
            f"YUV420 buffer of {length} bytes is too small for {w}x{h} with stride {stride}"
        )
    return cstride, u_at, v_at


def yuv420_arrays(
    buf: BufferLike, size: tuple[int, int], stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes of a YUV420 buffer as 2D numpy views of it (no copy), as
    `Frame.lores_planes` has them; valid only while `buf` is."""
    import numpy as np

    w, h = size
    flat = np.frombuffer(memoryview(buf).cast("B"), np.uint8)
    cstride, u_at, v_at = _layout(size, stride, len(flat))
    cw, ch = w // 2, h // 2
    y = flat[: stride * h].reshape(h, stride)[:, :w]
    u = flat[u_at : u_at + cstride * ch].reshape(ch, cstride)[:, :cw]
    v = flat[v_at : v_at + cstride * ch].reshape(ch, cstride)[:, :cw]
    return y, u, v


def yuv420_to_rgb(buf: BufferLike, size: tuple[int, int], stride: int) -> Image.Image:
    """A YUV420 buffer as a new "RGB" image (it does not refer to `buf` afterwards)."""
    return _merge(*yuv420_planes(buf, size, stride))


def _merge(y: Image.Image, u: Image.Image, v: Image.Image) -> Image.Image:
    # Nearest-neighbour chroma: a 4:2:0 JPEG encoder averages each 2x2 block back to
    # the camera's own chroma (give or take rounding), at a tenth of bilinear's cost
    # (0.1 vs 1 ms a plane at 800x600 on scripts/bench-lores.py's machine).
    u = u.resize(y.size, Image.Resampling.NEAREST)
    v = v.resize(y.size, Image.Resampling.NEAREST)
    return Image.merge("YCbCr", (y, u, v)).convert("RGB")


def checked_planes(planes: Any, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`planes` if they are an image's Y, U and V planes as YUV420 has them: uint8 numpy
    arrays, Y (h, w), U and V (ceil(h / 2), ceil(w / 2)), rows contiguous (any row
    stride); else a ValueError naming `what`."""
    try:
        y, u, v = planes
        shapes = [p.shape for p in (y, u, v)]
        h, w = shapes[0]
        ok = (
            h > 0
            and w > 0
            and shapes[1] == shapes[2] == ((h + 1) // 2, (w + 1) // 2)
            and all(str(p.dtype) == "uint8" and p.strides[1] == 1 for p in (y, u, v))
        )
    except (TypeError, ValueError, AttributeError, IndexError):
        ok = False
    if not ok:
        raise ValueError(
            f"{what} are not YUV420 planes: Y (h, w), U and V (ceil(h/2), ceil(w/2)), "
            "uint8 numpy arrays, rows contiguous"
        )
    return y, u, v


def planes_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> Image.Image:
    """Planes as `checked_planes` takes them, as a new "RGB" image (by Pillow)."""
    y_image, u_image, v_image = (Image.fromarray(p) for p in (y, u, v))  # "L" copies
    return _merge(y_image, u_image, v_image)
