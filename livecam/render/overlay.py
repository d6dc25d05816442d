"""The text overlay: the capture time, the title and camera settings, drawn on each
variant at its own size after resizing, so that a small variant is as legible as the
large one.

Rasterising text is the costly part and the caption changes with every frame (its
seconds, its seq), so each piece of text (a character, or a run of characters that must
be shaped together) is rasterised once per font and pixel size and kept; a frame's
caption is laid out from those pieces. A `Stamp` is that layout on an image of one
size; the render paths composite it (fast.py into the YUV420 planes, pillow.py into the
image). Fonts: `overlay.font`, else DejaVu Sans, then any CJK font installed
(fonts-droid-fallback, fonts-noto-cjk, fonts-wqy-microhei) for characters the first
lacks, and Pillow's built-in font when there is no font file at all.
"""

from __future__ import annotations

import logging
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

from livecam.config import OVERLAY_METADATA, OverlayConfig

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Size = tuple[int, int]

PRIMARY_FONT = "DejaVuSans.ttf"  # Pillow finds a bare name under /usr/share/fonts
FALLBACK_FONTS = (
    "DroidSansFallbackFull.ttf",
    "NotoSansCJK-Regular.ttc",
    "wqy-microhei.ttc",
)
# Below this many pixels of text height digits run together: a tiny variant gets this.
MIN_PX = 16
# A code point no font maps: what each font draws for a character it lacks.
MISSING = "\uffff"
_CACHE_LIMIT = 4096  # pieces and advances kept per overlay; cleared when exceeded


@dataclass(eq=False)
class Piece:
    """Text rasterised once: `fg`, the glyphs' coverage, and `bg`, the outline's (an "L"
    image each, `bg` None without an outline), on the caption's line box; `dx` is their
    left edge from the pen position, `width` theirs, `ink` the rows from the first with
    ink to past the last. `cache` holds what a render path derives from them."""

    fg: Image.Image
    bg: Image.Image | None
    dx: int
    width: int = 0
    ink: tuple[int, int] = (0, 0)
    cache: dict[Any, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Stamp:
    """A caption placed on an image of `size`: each piece at (x, y), the line box's top
    left corner; `bounds` (x0, y0, x1, y1), even, covers them and the `box`, if any
    (the translucent background). The colours are RGB. `ink`: the rows from `bounds`'
    top with anything to draw (even). `memo` is shared by the stamps of one size: what a
    render path keeps from one frame's caption to the next."""

    size: Size
    text: str
    pieces: list[tuple[Piece, int, int]]
    bounds: tuple[int, int, int, int]
    box: bool
    fill: tuple[int, int, int]
    back: tuple[int, int, int]
    opacity: float
    ink: tuple[int, int] = (0, 0)
    memo: dict[Any, Any] = field(default_factory=dict)


class Overlay:
    """`[overlay]` for one run: the caption's text for a frame and its stamps."""

    def __init__(self, cfg: OverlayConfig, title: str = "") -> None:
        self.cfg = cfg
        self.title = title
        self._parts = list(string.Formatter().parse(cfg.text))
        self._zone: tzinfo | None = None if cfg.timezone == "local" else ZoneInfo(cfg.timezone)
        self._files = _font_files(cfg.font)
        self._fonts: dict[int, list[Font]] = {}
        self._has: dict[tuple[int, str], bool] = {}
        self._pieces: dict[tuple[str, int, int], Piece] = {}
        self._placements: dict[tuple[str, str, int], tuple[Piece, float]] = {}
        self._stamps: dict[tuple[str, Size], Stamp] = {}
        self._memos: dict[Size, dict[Any, Any]] = {}

    # --- the text ----------------------------------------------------------------

    def text(self, captured_at: datetime, seq: int, metadata: Mapping[str, Any]) -> str:
        """The caption for a frame: strftime on the capture time in `overlay.timezone`,
        the named fields filled in; a field the camera did not report is empty."""
        when = captured_at.astimezone(self._zone)
        out = []
        for literal, name, spec, _ in self._parts:
            if literal:
                out.append(when.strftime(literal))
            if name is not None:
                out.append(self._field(name, spec or "", seq, metadata))
        return "".join(out)

    def _field(self, name: str, spec: str, seq: int, metadata: Mapping[str, Any]) -> str:
        value: Any
        if name == "title":
            value = self.title
        elif name == "seq":
            value = seq
        else:
            value = metadata.get(OVERLAY_METADATA[name])
            if value is None:
                return ""
        try:
            if name in ("exposure_time", "colour_temperature"):
                value = int(value)
            elif name in ("gain", "lux"):
                value = float(value)
            elif name == "exposure":
                value = _exposure(float(value))
            if spec:
                return format(value, spec)
            return {"gain": "{:.1f}", "lux": "{:.0f}"}.get(name, "{}").format(value)
        except (TypeError, ValueError, OverflowError):  # a camera's odd value: no text
            return ""

    # --- the stamp ---------------------------------------------------------------

    def stamp(self, text: str, size: Size) -> Stamp | None:
        """`text` laid out on an image of `size` (None when there is nothing to draw)."""
        if not text.strip():
            return None
        key = (text, size)
        stamp = self._stamps.get(key)
        if stamp is None:
            if len(self._stamps) > 64:
                self._stamps.clear()
            stamp = self._stamps[key] = self._layout(text, size)
        return stamp

    def _layout(self, text: str, size: Size) -> Stamp:
        cfg = self.cfg
        w, h = size
        px = max(MIN_PX, round(cfg.size * h))
        units = _units(text)
        pen, placed, extent = self._place(units, px)
        margin = max(2, round(px * 0.4))
        if pen + 2 * margin > w and px > MIN_PX:  # too wide: smaller, once
            px = max(MIN_PX, int(px * (w - 2 * margin) / pen))
            pen, placed, extent = self._place(units, px)
            margin = max(2, round(px * 0.4))
        line = self._line_height(px)
        pad = 2 * round(px * 0.1) if cfg.background == "box" else 0
        width = round(pen)
        vertical, _, horizontal = cfg.position.partition("-")
        x = {"left": margin, "right": w - margin - width}.get(horizontal, (w - width) // 2)
        y = margin if vertical == "top" else h - margin - line
        x, y = x - x % 2, y - y % 2  # chroma samples cover 2x2 pixels: start on one
        pieces = [(piece, x + dx, y) for piece, dx in placed]
        left, right, top, bottom = extent
        left, right = min(x - pad, x + left), max(x + width + pad, x + right)
        x0, y0 = left - left % 2, y - pad
        x1, y1 = right + right % 2, y + line + pad
        ink = (0, y1 - y0) if cfg.background == "box" else (pad + top, pad + bottom)
        if len(self._memos) > 32:
            self._memos.clear()
        return Stamp(
            size,
            text,
            pieces,
            (x0, y0 - y0 % 2, x1, y1 + y1 % 2),
            cfg.background == "box",
            cfg.colour,
            cfg.background_colour,
            cfg.box_opacity,
            (ink[0] - ink[0] % 2, min(y1 - y0, ink[1] + ink[1] % 2)),
            self._memos.setdefault(size, {}),
        )

    def _place(
        self, units: list[str], px: int
    ) -> tuple[float, list[tuple[Piece, int]], tuple[int, int, int, int]]:
        """Each unit's piece and its left edge from the start; the pen's end; the left,
        right, top and bottom of the ink (top and bottom from the line box's top)."""
        pen = 0.0
        placed: list[tuple[Piece, int]] = []
        known = self._placements
        left = right = 0
        top, bottom = 1 << 30, 0
        for unit, after in zip(units, [*units[1:], ""], strict=True):
            piece, advance = known.get((unit, after, px)) or self._placement(unit, after, px)
            x = int(pen + 0.5) + piece.dx
            placed.append((piece, x))
            pen += advance
            # Comparisons, not min() and max(): this runs for every character of a frame.
            if x < left:
                left = x
            if x + piece.width > right:
                right = x + piece.width
            first, last = piece.ink
            if last:
                if first < top:
                    top = first
                if last > bottom:
                    bottom = last
        return pen, placed, (left, right, min(top, bottom), bottom)

    def _placement(self, unit: str, after: str, px: int) -> tuple[Piece, float]:
        """`unit`'s piece and the pen's move past it, kerned against the unit `after` it
        when both come from the same font."""
        key = (unit, after, px)
        index = self._font_for(unit)
        font = self._font(index, px)
        if after and self._font_for(after) != index:
            after = ""
        advance = font.getlength(unit + after) - (font.getlength(after) if after else 0)
        if len(self._placements) > _CACHE_LIMIT:
            self._placements.clear()
        hit = self._placements[key] = (self._piece(unit, index, px), advance)
        return hit

    def _piece(self, unit: str, index: int, px: int) -> Piece:
        key = (unit, index, px)
        piece = self._pieces.get(key)
        if piece is None:
            if len(self._pieces) > _CACHE_LIMIT:
                self._pieces.clear()
            piece = self._pieces[key] = self._rasterise(unit, index, px)
        return piece

    def _rasterise(self, unit: str, index: int, px: int) -> Piece:
        font = self._font(index, px)
        stroke = self._stroke(px)
        ascent = self._ascent(px)
        left, _, right, _ = font.getbbox(unit, anchor="ls", stroke_width=stroke)
        left, right = int(left), int(right) + 1
        size = (max(1, right - left), self._line_height(px))
        origin = (-left, ascent + stroke)
        fg = Image.new("L", size)
        ImageDraw.Draw(fg).text(origin, unit, font=font, fill=255, anchor="ls")
        bg = None
        if stroke:
            bg = Image.new("L", size)
            ImageDraw.Draw(bg).text(
                origin, unit, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255
            )
        box = (bg or fg).getbbox()
        return Piece(fg, bg, left, size[0], (box[1], box[3]) if box else (0, 0))

    # --- fonts -------------------------------------------------------------------

    def _stroke(self, px: int) -> int:
        return max(1, round(px / 14)) if self.cfg.background == "outline" else 0

    def _ascent(self, px: int) -> int:
        return _metrics(self._font(0, px))[0]

    def _line_height(self, px: int) -> int:
        ascent, descent = _metrics(self._font(0, px))
        height = ascent + descent + 2 * self._stroke(px)
        return height + height % 2

    def _font(self, index: int, px: int) -> Font:
        fonts = self._fonts.get(px)
        if fonts is None:
            if len(self._fonts) > 32:
                self._fonts.clear()
            fonts = self._fonts[px] = [_load(f, px) for f in self._files]
        return fonts[index]

    def _font_for(self, unit: str) -> int:
        """The first font that has the unit's first character (the last one if none)."""
        ch = unit[0]
        if ch.isspace():
            return 0
        for index in range(len(self._files) - 1):
            key = (index, ch)
            has = self._has.get(key)
            if has is None:
                has = self._has[key] = has_glyph(self._font(index, 24), ch)
            if has:
                return index
        return len(self._files) - 1


def has_glyph(font: Font, ch: str) -> bool:
    """Whether `font` draws `ch` as something other than its missing-glyph box."""
    return ink(font, ch) != ink(font, MISSING)


def ink(font: Font, text: str) -> bytes:
    """`text` drawn in `font`, as bytes to compare."""
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    image = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(image).text((-left, -top), text, font=font, fill=255)
    return image.tobytes() + bytes(str((left, top, right, bottom)), "ascii")


def _metrics(font: Font) -> tuple[int, int]:
    """Ascent and descent in pixels (a bitmap font, without FreeType: from its glyphs)."""
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent), int(descent)
    _, top, _, bottom = font.getbbox("Ag")
    return int(-top) if top < 0 else int(bottom), 0


def _exposure(microseconds: float) -> str:
    """An exposure time as a photographer writes it: "1/250 s", "2.5 s"."""
    seconds = microseconds / 1e6
    if seconds <= 0:
        return ""
    if seconds < 0.75:
        return f"1/{round(1 / seconds)} s"
    return f"{seconds:.1f} s"


def _units(text: str) -> list[str]:
    """`text` in pieces to rasterise one by one: single characters, except that marks
    stay with their base and right-to-left runs and joined sequences stay whole (they
    need shaping)."""
    if text.isascii():
        return list(text)
    units: list[str] = []
    for ch in text:
        prev = units[-1][-1] if units else ""
        joined = prev == "\u200d" or ch in "\u200d\ufe0f"
        mark = unicodedata.category(ch).startswith("M")
        rtl = unicodedata.bidirectional(ch) in ("R", "AL") and bool(prev)
        rtl = rtl and unicodedata.bidirectional(prev) in ("R", "AL", "NSM")
        if units and (joined or mark or rtl):
            units[-1] += ch
        else:
            units.append(ch)
    return units


def _font_files(font: str) -> list[str]:
    """The font chain: the configured font or DejaVu Sans (else "", Pillow's built-in
    font), then the CJK fonts installed, for the characters the first lacks."""
    first = font or PRIMARY_FONT
    if not _loads(first):
        log.warning(
            "overlay: no font %s (sudo apt install fonts-dejavu-core); "
            "using Pillow's built-in font, which has Latin letters only",
            first,
        )
        first = ""
    return [first, *(f for f in FALLBACK_FONTS if _loads(f))]


def _loads(name: str) -> bool:
    try:
        ImageFont.truetype(name, 12)
    except OSError:
        return False
    return True


def _load(name: str, px: int) -> Font:
    if name:
        return ImageFont.truetype(name, px)
    try:
        return ImageFont.load_default(size=px)
    except (OSError, TypeError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def overlay_for(cfg: OverlayConfig, title: str = "") -> Overlay | None:
    """The overlay `cfg` asks for, or None when it is off."""
    return Overlay(cfg, title) if cfg.enabled else None
