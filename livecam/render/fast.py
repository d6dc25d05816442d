"""The fast path: YUV420 planes, resized by OpenCV and encoded by simplejpeg.

A JPEG holds YCbCr 4:2:0, which a Pi camera delivers as it is (picamera2's YUV420 in
the sYCC colour space of its still configuration): the planes are encoded without
the colour conversion and chroma downsampling an RGB encode would repeat per variant.
Other frames are converted once. Needs numpy and simplejpeg >= 1.8 (its
`encode_jpeg_yuv_planes`), which picamera2 brings, and OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from livecam.camera.base import Planes

cv2.setNumThreads(1)  # the renderer's own threads share the cores
Size = tuple[int, int]
# A last step of a smaller factor than this is bicubic; bilinear blurs there.
CUBIC_BELOW = 1.35


def planes_of(image: Image.Image) -> Planes:
    """`image` (RGB, RGBX, L or YCbCr) as YUV420 planes, chroma averaged per 2x2 block
    as libjpeg does; grey images get neutral chroma."""
    w, h = image.size
    if image.mode == "L":
        grey = Image.new("L", ((w + 1) // 2, (h + 1) // 2), 128)
        return padded(np.asarray(image), np.asarray(grey), np.asarray(grey))
    ycc = image if image.mode == "YCbCr" else image.convert("YCbCr")
    y, cb, cr = ycc.split()
    return padded(*(np.asarray(p) for p in (y, cb.reduce(2), cr.reduce(2))))


def shrink(source: Planes, size: Size) -> Planes:
    """`source` resized to `size`; the chroma planes at the luma's scale, as JPEG's
    cover the image padded to even, so their samples stay in place at odd sizes."""
    (sw, sh), (w, h) = source.size, size
    scale = (w / sw, h / sh)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    sizes = (size, (cw, ch), (cw, ch))
    return padded(*(resize(p, s, scale) for p, s in zip(source, sizes, strict=True)))


def resize(plane: np.ndarray, size: Size, scale: tuple[float, float]) -> np.ndarray:
    """`plane` scaled by `scale` (output over input pixels), cropped or edge-padded to
    `size`. Exact halvings take OpenCV's SIMD 2x2 box; one short step does the rest."""
    fx, fy = scale
    while True:
        kx = 2 if fx <= 0.5 and plane.shape[1] > 1 else 1
        ky = 2 if fy <= 0.5 and plane.shape[0] > 1 else 1
        if kx == ky == 1:
            break
        h, w = plane.shape[0] // ky, plane.shape[1] // kx
        plane = cv2.resize(plane[: ky * h, : kx * w], (w, h), interpolation=cv2.INTER_AREA)
        fx, fy = fx * kx, fy * ky
    # Near a factor of one bilinear blurs (most samples fall between two pixels).
    cubic = max(fx, fy) > 1 / CUBIC_BELOW
    interpolation = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    if round(plane.shape[1] * fx) and round(plane.shape[0] * fy):
        out = cv2.resize(plane, None, fx=fx, fy=fy, interpolation=interpolation)
    else:  # under a sample across or down
        out = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    rows, cols = min(out.shape[0], size[1]), min(out.shape[1], size[0])
    if (rows, cols) == (size[1], size[0]):
        return out[:rows, :cols]
    return np.pad(out[:rows, :cols], ((0, size[1] - rows), (0, size[0] - cols)), mode="edge")


def encode(planes: Planes, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0, with libjpeg-turbo's defaults (as Pillow's encoder)."""
    return bytes(simplejpeg.encode_jpeg_yuv_planes(*planes, quality))


def padded(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> Planes:
    """Planes whose Y has a row and column past an odd size, the edge repeated: the
    encoder reads Y padded to even (libjpeg-turbo's tjPlaneWidth)."""
    h, w = y.shape
    if h % 2 or w % 2:
        y = np.pad(y, ((0, h % 2), (0, w % 2)), mode="edge")[:h, :w]
    return Planes(y, u, v)
