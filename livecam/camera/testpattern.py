"""`source = "test"`: a synthetic scene with a moving sun, a sweeping bar and the time.

The scene (sky, textured hills, colour bars) is drawn once; the moving parts change
once a second, and only they are repainted, so the camera is never the bottleneck of
the demo or a benchmark. The texture gives JPEG a photo-like amount of detail to encode.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from livecam.camera.base import Camera, Frame, Planes

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
    pixels = scene_pixels(width, height)
    return Image.frombuffer("RGBX", (width, height), pixels, "raw", "RGBX", 0, 1).convert("RGB")


def scene_pixels(width: int, height: int) -> bytearray:
    """The static part of the test pattern as RGBX bytes, row after row.

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
    pixels = bytearray(width * height * 4)
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
        pixels[top * width * 4 : bottom * width * 4] = part.convert("RGBX").tobytes()
    # Colour bars along the bottom, the classic check for colour order.
    bar_h = min(height, max(2, height // 12))
    bars = Image.new("RGBX", (width, bar_h))
    d = ImageDraw.Draw(bars)
    for i, colour in enumerate(BARS):
        x0 = width * i // len(BARS)
        x1 = width * (i + 1) // len(BARS)
        d.rectangle((x0, 0, x1 - 1, bar_h - 1), fill=colour)
    pixels[(height - bar_h) * width * 4 :] = bars.tobytes()
    return pixels


class TestPatternCamera(Camera):
    """A camera that draws its frames; `now` is injectable for tests.

    A frame is a bytearray of RGBX rows that the frame's image maps without a copy and,
    with numpy, the same pixels as YUV420 planes (what a Pi camera gives: the renderer
    then converts nothing), kept in step box by box; given a `lores` size and OpenCV,
    also a smaller copy of the planes, as a Pi's ISP gives one for the small variants.

    The picture changes once a second (the sun, the bar, the clock): captures within
    the same second share it, as a Pi camera hands over a buffer without drawing, so
    that at short intervals the test camera costs next to nothing. A new second
    repaints only what the last one drew, from the scene's rows that the moving parts
    can reach, on the frame handed back by `release()`, or on a copy of it while it is
    still lent."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        width: int,
        height: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        lores: tuple[int, int] | None = None,
    ) -> None:
        self.width, self.height = width, height
        self._now = now
        self._font = _font(max(10, height // 18))
        self._measure = ImageDraw.Draw(Image.new("L", (1, 1)))
        first = scene_pixels(width, height)
        self._scene = bytes(memoryview(first)[: self._reach() * width * 4])
        planes = _planes_of(first, width, height)
        small = None if planes is None or lores is None else _lores_of(planes, lores)
        self._buffer = _Buffer(first, planes, small)
        self._second: int | None = None  # the second the buffer shows
        self._lock = threading.Lock()  # frames are released on another thread

    def describe(self) -> str:
        return f"test pattern {self.width}x{self.height}"

    def capture(self) -> Frame:
        captured_at = self._now()
        second = math.floor(captured_at.timestamp())
        with self._lock:
            if second != self._second:
                if self._buffer.lends:  # its frames still read it: draw on a copy
                    self._buffer = self._buffer.copy()
                self._draw(self._buffer, captured_at.replace(microsecond=0))
                self._second = second
            buffer = self._buffer
            buffer.lends += 1

        def give_back() -> None:
            with self._lock:
                buffer.lends -= 1

        image = Image.frombuffer(
            "RGBX", (self.width, self.height), buffer.pixels, "raw", "RGBX", 0, 1
        )
        planes, lores = _read_only(buffer.planes), _read_only(buffer.lores)
        return Frame(image, captured_at, planes, lores, _release=give_back)

    def _draw(self, buffer: _Buffer, at: datetime) -> None:
        """Repaint what `buffer` shows of its last instant and draw instant `at`."""
        w, h = self.width, self.height
        t = at.timestamp()
        pixels, dirty = buffer.pixels, buffer.drawn
        for box in dirty:
            self._copy_rows(self._scene, pixels, box)
        image = Image.frombuffer("RGBX", (w, h), pixels, "raw", "RGBX", 0, 1)
        drawn: list[Box] = []

        def paint(box: Box, art: Callable[[Image.Image, int, int], None]) -> None:
            """`art(patch, dx, dy)` on a patch of the frame at `box`, written back in
            place; frame coordinates plus (dx, dy) are patch coordinates."""
            clip = _clip(box, w, h)
            if clip[0] >= clip[2] or clip[1] >= clip[3]:
                return
            patch = image.crop(clip)
            art(patch, -clip[0], -clip[1])
            self._put(pixels, patch, clip)
            drawn.append(clip)

        # The sun crosses the sky once a minute; the bar sweeps once every 10 s.
        phase = (t % 60) / 60
        r = max(3, h // 14)
        cx = int(w * (0.1 + 0.8 * phase))
        cy = int(h * (0.45 - 0.3 * math.sin(math.pi * phase)))
        sun = (cx - r, cy - r, cx + r, cy + r)
        paint(
            sun,
            lambda p, x, y: ImageDraw.Draw(p).ellipse(
                _shift(sun, x, y), fill=(255, 214, 60), outline=(255, 240, 180)
            ),
        )
        bx = int(w * ((t % 10) / 10))
        bar = (bx, 0, bx + max(2, w // 100), h // 20)
        paint(
            bar,
            lambda p, x, y: ImageDraw.Draw(p).rectangle(_shift(bar, x, y), fill=(255, 255, 255)),
        )
        label = f"livecam test  {at:%Y-%m-%d %H:%M:%S} UTC"
        pad = max(2, h // 100)
        origin = (pad * 2, pad * 2)
        tb = self._measure.textbbox(origin, label, font=self._font)
        backing = (math.floor(tb[0]) - pad, math.floor(tb[1]) - pad,
                   math.ceil(tb[2]) + pad, math.ceil(tb[3]) + pad)  # fmt: skip

        def text(patch: Image.Image, x: int, y: int) -> None:
            d = ImageDraw.Draw(patch)
            d.rectangle(_shift(backing, x, y), fill=(0, 0, 0))
            d.text((origin[0] + x, origin[1] + y), label, font=self._font, fill=(255, 255, 255))

        paint(backing, text)
        if buffer.planes is not None:
            boxes = _merged(dirty + drawn)
            for box in boxes:
                _sync(image, buffer.planes, box)
            if buffer.lores is not None:  # from the planes in step: it reads around each box
                for box in boxes:
                    _sync_lores(buffer.planes, buffer.lores, box)
        buffer.drawn = drawn

    def _reach(self) -> int:
        """Rows from the top that the sun, the bar and the time stamp can cover."""
        h = self.height
        sun = int(h * 0.45) + max(3, h // 14) + 1  # its lowest, at the start of a minute
        bar = h // 20 + 1
        pad = max(2, h // 100)
        tall = self._measure.textbbox((pad * 2, pad * 2), "Ayg|#0123456789", font=self._font)
        text = math.ceil(tall[3]) + pad + 1
        return min(h, max(sun, bar, text) + 1)

    def _put(self, pixels: bytearray, patch: Image.Image, box: Box) -> None:
        """Write an RGBX `patch` into the frame's rows at `box`."""
        self._copy_rows(patch.tobytes(), pixels, box, patch.width * 4)

    def _copy_rows(
        self, src: bytes | bytearray, dst: bytearray, box: Box, src_row: int = 0
    ) -> None:
        """Rows of `box` from `src` (a whole frame, or rows `src_row` bytes long holding
        just the box) into `dst`, a whole frame."""
        x0, y0, x1, y1 = box
        frame_row = self.width * 4
        n = (x1 - x0) * 4
        source, target = memoryview(src), memoryview(dst)
        for y in range(y0, y1):
            at = y * frame_row + x0 * 4
            from_at = at if not src_row else (y - y0) * src_row
            target[at : at + n] = source[from_at : from_at + n]


@dataclass
class _Buffer:
    """A frame's pixels (RGBX rows, their planes, the lores copy of those), the boxes
    last drawn on them and how many frames lent out read them."""

    pixels: bytearray
    planes: Planes | None
    lores: Planes | None
    drawn: list[Box] = field(default_factory=list)
    lends: int = 0

    def copy(self) -> _Buffer:
        planes, lores = (None if p is None else Planes(*(a.copy() for a in p))
                         for p in (self.planes, self.lores))  # fmt: skip
        return _Buffer(bytearray(self.pixels), planes, lores, list(self.drawn))


Box = tuple[int, int, int, int]


def _shift(box: Box, dx: int, dy: int) -> Box:
    return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy


def _read_only(planes: Planes | None) -> Planes | None:
    """Views of `planes` that cannot be written: frames share the buffer (captures within
    a second, the preview's beside the publisher's), so the overlay must not draw on it."""
    if planes is None:
        return None
    views = Planes(*(p.view() for p in planes))
    for v in views:
        v.flags.writeable = False
    return views


def _planes_of(pixels: bytearray, width: int, height: int) -> Planes | None:
    """The RGBX rows as YUV420 planes, or None without numpy."""
    try:
        import numpy as np
    except ImportError:
        return None
    cw, ch = (width + 1) // 2, (height + 1) // 2
    planes = Planes(*(np.empty(s, np.uint8) for s in ((height, width), (ch, cw), (ch, cw))))
    image = Image.frombuffer("RGBX", (width, height), pixels, "raw", "RGBX", 0, 1)
    for top in range(0, height, 256):  # in bands: whole-frame temporaries would peak high
        _sync(image, planes, (0, top, width, min(height, top + 256)))
    return planes


def _merged(boxes: list[Box]) -> list[Box]:
    """`boxes` with each overlapping pair joined where that converts no more pixels (the
    sun and the label move little from one frame to the next)."""
    out: list[Box] = []
    for b in boxes:
        for i, o in enumerate(out):
            u = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3]))
            if _area(u) <= _area(b) + _area(o):
                out[i] = u
                break
        else:
            out.append(b)
    return out


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _sync(image: Image.Image, planes: Planes, box: Box) -> None:
    """Bring `planes` in step with `image` over `box`, widened to whole 2x2 blocks."""
    import numpy as np

    x0, y0 = box[0] - box[0] % 2, box[1] - box[1] % 2
    x1, y1 = min(box[2] + box[2] % 2, image.width), min(box[3] + box[3] % 2, image.height)
    y, cb, cr = image.crop((x0, y0, x1, y1)).convert("YCbCr").split()
    planes.y[y0:y1, x0:x1] = np.asarray(y)
    cx, cy = x0 // 2, y0 // 2
    for plane, part in ((planes.u, cb), (planes.v, cr)):
        chroma = np.asarray(part.reduce(2))
        plane[cy : cy + chroma.shape[0], cx : cx + chroma.shape[1]] = chroma


def _lores_of(planes: Planes, size: tuple[int, int]) -> Planes | None:
    """`planes` resized to `size` (even) bilinearly, as a Pi's ISP scales its lores
    stream; None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    w, h = size
    sizes = ((w, h), (w // 2, h // 2), (w // 2, h // 2))
    return Planes(*(cv2.resize(p, s) for p, s in zip(planes, sizes, strict=True)))


def _sync_lores(planes: Planes, lores: Planes, box: Box) -> None:
    """Bring the lores copy in step with `planes` where `box` of the frame changed.

    The scale repeats every `n` frame samples (`m` lores ones): resizing the blocks the
    box touches, and one more that their last samples read, gives the very pixels a
    resize of the whole plane does."""
    import cv2

    for plane, small, k in zip(planes, lores, (1, 2, 2), strict=True):
        spans = []
        for axis in (0, 1):
            g = math.gcd(plane.shape[axis], small.shape[axis])
            n, m = plane.shape[axis] // g, small.shape[axis] // g
            lo, hi = box[1 - axis] // k // n, -(-box[3 - axis] // k // n)
            end = min(g, hi + 1)
            spans.append((lo * n, end * n, (end - lo) * m, lo * m, hi * m))
        (y0, y1, rows, ly0, ly1), (x0, x1, cols, lx0, lx1) = spans
        out = cv2.resize(plane[y0:y1, x0:x1], (cols, rows))  # bilinear, as for the whole
        small[ly0:ly1, lx0:lx1] = out[: ly1 - ly0, : lx1 - lx0]


def _clip(box: Box, w: int, h: int) -> Box:
    """A drawn box (inclusive corners, maybe off the frame) as a crop box inside it."""
    x0, y0, x1, y1 = box
    return max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)
