"""YUV420 (I420) camera buffers to Pillow images, without numpy or OpenCV.

picamera2's lores stream is YUV420 on a Pi 4 and earlier (the VC4 ISP allows nothing
else there). Its layout, as picamera2's own `CompletedRequest.save` reads it: a Y plane
of `height` rows of `stride` bytes, then U and V planes of `height / 2` rows of
`stride / 2` bytes each. Pillow maps each plane in place ("L" images with a stride),
upsamples the two chroma planes and converts YCbCr to RGB with the JFIF (full-range
BT.601) matrix, which is the sYCC colour space picamera2's still configuration asks
libcamera for: no colour shift, and no copy before the conversion itself.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

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
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise ValueError(f"YUV420 needs an even width and height, got {w}x{h}")
    if stride < w or stride % 2:
        raise ValueError(f"YUV420 stride {stride} is odd or shorter than the width {w}")
    # Pillow maps any buffer; its type hints only name bytes and array-likes.
    view: Any = memoryview(buf).cast("B")
    cw, ch, cstride = w // 2, h // 2, stride // 2
    u_at = stride * h
    v_at = u_at + cstride * ch
    if len(view) < v_at + cstride * ch:
        raise ValueError(
            f"YUV420 buffer of {len(view)} bytes is too small for {w}x{h} with stride {stride}"
        )
    y = Image.frombuffer("L", (w, h), view, "raw", "L", stride, 1)
    u = Image.frombuffer("L", (cw, ch), view[u_at:], "raw", "L", cstride, 1)
    v = Image.frombuffer("L", (cw, ch), view[v_at:], "raw", "L", cstride, 1)
    return y, u, v


def yuv420_to_rgb(buf: BufferLike, size: tuple[int, int], stride: int) -> Image.Image:
    """A YUV420 buffer as a new "RGB" image (it does not refer to `buf` afterwards)."""
    y, u, v = yuv420_planes(buf, size, stride)
    # Nearest-neighbour chroma: a 4:2:0 JPEG encoder averages each 2x2 block back to
    # the camera's own chroma (give or take rounding), at a tenth of bilinear's cost
    # (0.1 vs 1 ms a plane at 800x600 on scripts/bench-lores.py's machine).
    u = u.resize(y.size, Image.Resampling.NEAREST)
    v = v.resize(y.size, Image.Resampling.NEAREST)
    return Image.merge("YCbCr", (y, u, v)).convert("RGB")
