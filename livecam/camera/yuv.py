"""YUV420 (I420) camera buffers as `Planes`, without a copy.

picamera2's YUV420 layout, as its own `CompletedRequest.save` reads it: a Y plane of
`height` rows of `stride` bytes, then U and V planes of `height / 2` rows of
`stride / 2` bytes each (`make_array` shapes the buffer (height * 3 // 2, stride)).
Its still configuration asks libcamera for sYCC, full-range BT.601: JPEG's own values.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from livecam.camera.base import Planes

# Anything with the buffer protocol: a numpy array, memoryview, bytes, mmap.
BufferLike = Any


def yuv420_arrays(buf: BufferLike, size: tuple[int, int], stride: int) -> Planes:
    """The Y, U and V planes of a YUV420 buffer as 2D numpy views of it (no copy); valid
    only while `buf` is. `size` is (width, height), both even; `stride` the bytes per Y
    row."""
    import numpy as np

    w, h = size
    flat = np.frombuffer(memoryview(buf).cast("B"), np.uint8)
    if w < 2 or h < 2 or w % 2 or h % 2:
        raise ValueError(f"YUV420 needs an even width and height, got {w}x{h}")
    if stride < w or stride % 2:
        raise ValueError(f"YUV420 stride {stride} is odd or shorter than the width {w}")
    cstride, cw, ch = stride // 2, w // 2, h // 2
    u_at = stride * h
    v_at = u_at + cstride * ch
    if len(flat) < v_at + cstride * ch:
        raise ValueError(
            f"YUV420 buffer of {len(flat)} bytes is too small for {w}x{h} with stride {stride}"
        )
    y = flat[:u_at].reshape(h, stride)[:, :w]
    u = flat[u_at:v_at].reshape(ch, cstride)[:, :cw]
    v = flat[v_at : v_at + cstride * ch].reshape(ch, cstride)[:, :cw]
    return Planes(y, u, v)


def checked_planes(planes: Any, what: str) -> Planes:
    """`planes` if they are an image's YUV420 planes (see `Planes`), else a ValueError
    naming `what`."""
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
    return Planes(y, u, v)


def to_image(planes: Planes) -> Image.Image:
    """The planes as an "RGB" image, each chroma sample repeated over its 2x2 block: the
    Pillow path's input. Needs numpy only, so a Pi without OpenCV still renders."""
    import numpy as np

    y = Image.fromarray(np.ascontiguousarray(planes.y))
    chroma = (Image.fromarray(np.ascontiguousarray(p)) for p in planes[1:])
    up = [c.resize((2 * c.width, 2 * c.height), Image.Resampling.NEAREST) for c in chroma]
    return Image.merge("YCbCr", (y, *(c.crop((0, 0, *y.size)) for c in up))).convert("RGB")
