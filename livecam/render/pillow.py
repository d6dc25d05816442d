"""The plain path, for installs without numpy or simplejpeg: Pillow resizes and encodes."""

from __future__ import annotations

import io

from PIL import Image

# HAMMING costs what BILINEAR does but is sharper, which keeps a variant made from the
# camera's lores copy, or after `reduce`, as good as BILINEAR from the full frame.
FILTER = Image.Resampling.HAMMING
# An integer box `reduce` first, down to this factor above the size: most of the
# shrinking then costs one cheap pass (tests/test_render.py holds the quality).
REDUCING_GAP = 3.0


def shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.resize(size, FILTER, reducing_gap=REDUCING_GAP)


def encode(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0: `optimize` and `progressive` cost several times more."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
