"""`source = "test"`: a synthetic scene with a moving sun, a sweeping bar and the time.

The scene (sky, textured hills, colour bars) is drawn once; each capture copies it and
draws only the moving parts, so the camera is never the bottleneck of the demo or a
benchmark. The texture gives JPEG a photo-like amount of detail to encode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from livecam.camera.base import Camera, Frame

BARS = [
    (192, 192, 192),
    (192, 192, 0),
    (0, 192, 192),
    (0, 192, 0),
    (192, 0, 192),
    (192, 0, 0),
    (0, 0, 192),
]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def scene(width: int, height: int) -> Image.Image:
    """The static part of the test pattern, in mode RGB.

    Drawn in bands of rows: whole-frame temporaries (gradient, noise, grass and their
    colourised copies) would peak at three frames' worth of memory at 12 MP."""
    gradient = Image.linear_gradient("L")
    # Hills: a noise texture blurred to grass-sized detail, tinted green.
    noise = Image.effect_noise((max(1, width // 2), max(1, height // 2)), 40)
    noise = noise.filter(ImageFilter.GaussianBlur(1))
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    horizon = int(height * 0.62)
    points: list[tuple[float, float]] = [(0, height)]
    for i in range(0, 33):
        x = width * i / 32
        y = horizon - height * 0.08 * math.sin(i / 3.1) - height * 0.04 * math.sin(i / 1.3)
        points.append((x, y))
    points.append((width, height))
    draw.polygon(points, fill=255)
    sky = Image.new("RGB", (width, height))
    band = 256
    for top in range(0, height, band):
        bottom = min(height, top + band)
        rows = (width, bottom - top)
        # resize(box=...) reads beyond the box: each band is exactly a slice of the whole.
        g = gradient.resize(rows, box=(0, top * 256 / height, 256, bottom * 256 / height))
        n = noise.resize(rows, box=(0, top * noise.height / height, noise.width,
                                    bottom * noise.height / height))  # fmt: skip
        part = ImageOps.colorize(g, black=(40, 90, 170), white=(200, 225, 245))
        grass = ImageOps.colorize(n, black=(20, 70, 20), white=(150, 200, 90))
        part.paste(grass, (0, 0), mask.crop((0, top, width, bottom)))
        sky.paste(part, (0, top))
    # Colour bars along the bottom, the classic check for colour order.
    bar_h = max(2, height // 12)
    d = ImageDraw.Draw(sky)
    for i, colour in enumerate(BARS):
        x0 = width * i // len(BARS)
        x1 = width * (i + 1) // len(BARS)
        d.rectangle((x0, height - bar_h, x1 - 1, height - 1), fill=colour)
    return sky


class TestPatternCamera(Camera):
    """A camera that draws its frames; `now` is injectable for tests."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        width: int,
        height: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.width, self.height = width, height
        self._now = now
        self._base = scene(width, height)
        self._font = _font(max(10, height // 18))
        self._count = 0
        # A frame handed back by `release()` and the boxes drawn on it: the next capture
        # repaints only those from the scene instead of copying a whole frame (at 12 MP
        # a 48 MB copy per frame; bench.py --throughput).
        self._spare: tuple[Image.Image, list[tuple[int, int, int, int]]] | None = None

    def describe(self) -> str:
        return f"test pattern {self.width}x{self.height}"

    def capture(self) -> Frame:
        captured_at = self._now()
        self._count += 1
        w, h = self.width, self.height
        t = captured_at.timestamp()
        if self._spare is not None:
            image, dirty = self._spare
            self._spare = None
            for region in dirty:
                image.paste(self._base.crop(region), region[:2])
        else:
            image = self._base.copy()
        drawn: list[tuple[int, int, int, int]] = []
        draw = ImageDraw.Draw(image)
        # The sun crosses the sky once a minute; the bar sweeps once every 10 s.
        phase = (t % 60) / 60
        r = max(3, h // 14)
        cx = int(w * (0.1 + 0.8 * phase))
        cy = int(h * (0.45 - 0.3 * math.sin(math.pi * phase)))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 214, 60), outline=(255, 240, 180))
        drawn.append((cx - r, cy - r, cx + r, cy + r))
        bx = int(w * ((t % 10) / 10))
        draw.rectangle((bx, 0, bx + max(2, w // 100), h // 20), fill=(255, 255, 255))
        drawn.append((bx, 0, bx + max(2, w // 100), h // 20))
        stamp = (
            captured_at.strftime("%Y-%m-%d %H:%M:%S.")
            + f"{captured_at.microsecond // 1000:03d} UTC"
        )
        label = f"livecam test  {stamp}  #{self._count}"
        pad = max(2, h // 100)
        box = draw.textbbox((pad * 2, pad * 2), label, font=self._font)
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(0, 0, 0))
        left, top, right, bottom = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]),
                                    math.ceil(box[3]))  # fmt: skip
        drawn.append((left - pad, top - pad, right + pad, bottom + pad))
        draw.text((pad * 2, pad * 2), label, font=self._font, fill=(255, 255, 255))
        dirty = [_clip(b, w, h) for b in drawn]

        def give_back() -> None:
            self._spare = (image, dirty)

        return Frame(image=image, captured_at=captured_at, _release=give_back)


def _clip(box: tuple[int, int, int, int], w: int, h: int) -> tuple[int, int, int, int]:
    """A drawn box (inclusive corners, maybe off the frame) as a crop box inside it."""
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)
