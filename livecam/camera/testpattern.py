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
    """The static part of the test pattern, in mode RGB."""
    sky = ImageOps.colorize(
        Image.linear_gradient("L").resize((width, height)),
        black=(40, 90, 170),
        white=(200, 225, 245),
    )
    # Hills: a noise texture blurred to grass-sized detail, tinted green.
    noise = Image.effect_noise((max(1, width // 2), max(1, height // 2)), 40)
    noise = noise.filter(ImageFilter.GaussianBlur(1)).resize((width, height))
    grass = ImageOps.colorize(noise, black=(20, 70, 20), white=(150, 200, 90))
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
    sky.paste(grass, (0, 0), mask)
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

    def describe(self) -> str:
        return f"test pattern {self.width}x{self.height}"

    def capture(self) -> Frame:
        captured_at = self._now()
        self._count += 1
        w, h = self.width, self.height
        t = captured_at.timestamp()
        image = self._base.copy()
        draw = ImageDraw.Draw(image)
        # The sun crosses the sky once a minute; the bar sweeps once every 10 s.
        phase = (t % 60) / 60
        r = max(3, h // 14)
        cx = int(w * (0.1 + 0.8 * phase))
        cy = int(h * (0.45 - 0.3 * math.sin(math.pi * phase)))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 214, 60), outline=(255, 240, 180))
        bx = int(w * ((t % 10) / 10))
        draw.rectangle((bx, 0, bx + max(2, w // 100), h // 20), fill=(255, 255, 255))
        stamp = (
            captured_at.strftime("%Y-%m-%d %H:%M:%S.")
            + f"{captured_at.microsecond // 1000:03d} UTC"
        )
        label = f"livecam test  {stamp}  #{self._count}"
        pad = max(2, h // 100)
        box = draw.textbbox((pad * 2, pad * 2), label, font=self._font)
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(0, 0, 0))
        draw.text((pad * 2, pad * 2), label, font=self._font, fill=(255, 255, 255))
        return Frame(image=image, captured_at=captured_at)
