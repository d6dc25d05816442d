"""Is a frame worth publishing? A tiny luma thumbnail compared with the last one.

Byte comparison is useless for cameras (sensor noise changes every byte); averaging
down to a 64-pixel-wide thumbnail removes the noise and keeps what a viewer notices.
"""

from __future__ import annotations

from PIL import Image, ImageChops, ImageStat

from livecam.camera.base import Frame

THUMB_WIDTH = 64


def thumbnail(frame: Frame) -> Image.Image:
    """A small greyscale copy of the frame (from the camera's lores copy if it has one)."""
    planes = frame.lores if frame.lores is not None else frame.planes
    if planes is not None:  # luma is the greyscale already; every k-th pixel spares a copy
        import numpy as np

        k = max(1, planes.y.shape[1] // (THUMB_WIDTH * 8))
        src = Image.fromarray(np.ascontiguousarray(planes.y[::k, ::k]))
    else:
        assert frame.image is not None
        src = frame.image
    # An integer reduce first: one cheap pass over the full frame instead of a filter.
    factor = max(1, src.width // (THUMB_WIDTH * 2))
    small = src.reduce(factor) if factor > 1 else src
    height = max(1, round(THUMB_WIDTH * src.height / src.width))
    return small.convert("L").resize((THUMB_WIDTH, height), Image.Resampling.BOX)


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute luma difference in percent of full scale (0 = identical)."""
    if a.size != b.size:
        return 100.0
    return float(ImageStat.Stat(ImageChops.difference(a, b)).mean[0]) * 100.0 / 255.0
