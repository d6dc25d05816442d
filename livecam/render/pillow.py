"""The plain path, for installs without numpy or simplejpeg: Pillow resizes and encodes."""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

from livecam.render.overlay import Stamp

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


def stamp(image: Image.Image, st: Stamp, shared: bool) -> tuple[Image.Image, Callable[[], None]]:
    """`image` with the caption `st` drawn on it: in place, or on a copy when `shared`
    (the frame's own image, which other variants read)."""
    if shared:
        image = image.copy()
    fill, back = (_colour(c, image.mode) for c in (st.fill, st.back))
    if st.box:
        x0, y0, x1, y1 = st.bounds
        image.paste(back, st.bounds, Image.new("L", (x1 - x0, y1 - y0), round(255 * st.opacity)))
    for piece, x, y in st.pieces:
        if piece.bg is not None:
            image.paste(back, (x, y, x + piece.bg.width, y + piece.bg.height), piece.bg)
    for piece, x, y in st.pieces:
        image.paste(fill, (x, y, x + piece.fg.width, y + piece.fg.height), piece.fg)
    return image, lambda: None


def _colour(rgb: tuple[int, int, int], mode: str) -> float | tuple[int, ...]:
    pixel = Image.new("RGB", (1, 1), rgb).convert(mode).getpixel((0, 0))
    assert pixel is not None
    return pixel
