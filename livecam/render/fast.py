"""The fast path: YUV420 planes, resized by OpenCV and encoded by simplejpeg.

A JPEG holds YCbCr 4:2:0, which a Pi camera delivers as it is (picamera2's YUV420 in
the sYCC colour space of its still configuration): the planes are encoded without
the colour conversion and chroma downsampling an RGB encode would repeat per variant.
Other frames are converted once. Needs numpy and simplejpeg >= 1.8 (its
`encode_jpeg_yuv_planes`), which picamera2 brings, and OpenCV.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from livecam.camera.base import Planes
from livecam.render.overlay import Piece, Stamp

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


def stamp(planes: Planes, st: Stamp, shared: bool) -> tuple[Planes, Callable[[], None]]:
    """`planes` with the caption `st` composited in place, and what undoes it: `shared`
    planes (the frame's own, or its lores copy) are read by other variants and handed
    back to the camera, so the few rows under the caption are saved and restored.
    Planes that cannot be written (a camera's read-only map) are copied first."""
    if not all(p.flags.writeable for p in planes):
        planes, shared = Planes(*(np.array(p) for p in planes)), False
    canvas = _Canvas.of(st)
    x0 = st.bounds[0]
    y0 = st.bounds[1] + canvas.rows[0]
    saved: list[tuple[np.ndarray, np.ndarray]] = []
    for plane, mul, add, k in (
        (planes.y, canvas.mul[0], canvas.add[0], 1),
        (planes.u, canvas.mul[1], canvas.add[1], 2),
        (planes.v, canvas.mul[1], canvas.add[2], 2),
    ):
        first, last = (r // k for r in canvas.rows)
        left, top = x0 // k, y0 // k
        xs, ys = max(0, left), max(0, top)
        xe = min(plane.shape[1], left + mul.shape[1])
        ye = min(plane.shape[0], top + last - first)
        if xe <= xs or ye <= ys:
            continue
        region = plane[ys:ye, xs:xe]
        window = (slice(first + ys - top, first + ye - top), slice(xs - left, xe - left))
        if shared:
            saved.append((region, region.copy()))
        # p * mul / 255 + add, rounded and saturated, in place.
        cv2.multiply(region, mul[window], dst=region, scale=1 / 255)
        cv2.add(region, add[window], dst=region)

    def undo() -> None:
        for region, pixels in saved:
            region[...] = pixels

    return planes, undo


class _Canvas:
    """A caption's weights over its bounds: a plane's pixel p becomes p * mul / 255 + add,
    for Y and, at half size, for Cb and Cr. Pieces are merged as [255 - mul, add...]
    (`luma`, `chroma`): both grow with the caption's coverage, so where pieces overlap
    np.maximum merges them. Kept for the next frame of the same size, whose caption
    mostly differs in a digit or two: only the columns of the pieces that changed are
    drawn again."""

    def __init__(self, st: Stamp) -> None:
        x0, y0, x1, y1 = st.bounds
        self.key = (st.bounds, st.fill, st.back, st.box, st.opacity)
        self.fill, self.back = _ycc(st.fill), _ycc(st.back)
        self.opacity = st.opacity if st.box else 0.0
        zero = np.float32(0)
        self.blank = (
            _weights(zero, zero, self.opacity, self.fill[:1], self.back[:1]),
            _weights(zero, zero, self.opacity, self.fill[1:], self.back[1:]),
        )
        h, w = y1 - y0, x1 - x0
        self.luma = np.empty((h, w, 2), np.uint8)
        self.chroma = np.empty((h // 2, w // 2, 3), np.uint8)
        # The same, each channel contiguous, as OpenCV takes them.
        self.mul = (np.empty((h, w), np.uint8), np.empty((h // 2, w // 2), np.uint8))
        self.add = tuple(np.empty_like(m) for m in (self.mul[0], self.mul[1], self.mul[1]))
        self.rows = (0, h)  # the rows with anything drawn (even)
        self.pieces: list[tuple[Piece, int, int]] = []

    @classmethod
    def of(cls, st: Stamp) -> _Canvas:
        canvas = st.memo.get("planes")
        key = (st.bounds, st.fill, st.back, st.box, st.opacity)
        if not isinstance(canvas, _Canvas) or canvas.key != key:
            canvas = st.memo["planes"] = cls(st)
        canvas.draw(st)
        return canvas

    def draw(self, st: Stamp) -> None:
        """Bring the weights to `st`'s pieces, redrawing the columns that changed."""
        old, new = self.pieces, st.pieces
        if old is new:
            return
        x0, y0 = st.bounds[:2]
        width = self.luma.shape[1]
        if len(old) != len(new):
            spans = [(0, width)]
        else:
            spans = [
                (min(a[1], b[1]) - x0, max(a[1] + a[0].width, b[1] + b[0].width) - x0)
                for a, b in zip(old, new, strict=True)
                if a[1] != b[1] or a[0] is not b[0]
            ]
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            start, end = start - start % 2, end + end % 2  # whole chroma samples
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            self.luma[:, start:end] = self.blank[0]
            self.chroma[:, start // 2 : end // 2] = self.blank[1]
            for piece, x, y in new:
                rx = x - x0
                if rx >= end:
                    break  # the pieces run left to right
                if rx + piece.width > start:
                    self._piece(piece, rx, y - y0, start, end)
            for k, merged_, channels in ((1, self.luma, (1,)), (2, self.chroma, (1, 2))):
                cols = slice(start // k, end // k)
                np.subtract(255, merged_[:, cols, 0], out=self.mul[k - 1][:, cols])
                for c in channels:
                    np.copyto(self.add[c - 1 + k - 1][:, cols], merged_[:, cols, c])
        self.pieces = new
        self.rows = st.ink

    def _piece(self, piece: Piece, rx: int, ry: int, start: int, end: int) -> None:
        """Merge a piece at (rx, ry) into the columns from `start` to `end` (even)."""
        phase = rx % 2
        key = (self.fill, self.back, self.opacity, phase)
        weights = piece.cache.get(key)
        if weights is None:
            weights = piece.cache[key] = _piece_weights(
                piece, phase, self.opacity, self.fill, self.back
            )
        for canvas, pw, x, k in (
            (self.luma, weights[0], rx, 1),
            (self.chroma, weights[1], (rx - phase) // 2, 2),
        ):
            y = ry // k
            a, b = max(x, start // k), min(x + pw.shape[1], end // k)
            if a < b:
                target = canvas[y : y + pw.shape[0], a:b]
                np.maximum(target, pw[:, a - x : b - x], out=target)


def _piece_weights(
    piece: Piece, phase: int, opacity: float, fill: tuple[int, ...], back: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """A piece's [255 - mul, add] for Y, and for Cb and Cr with its left edge `phase`
    pixels into a chroma sample."""
    fg = np.asarray(piece.fg, np.float32) / 255
    # Under the text: its outline, else the box (or nothing).
    bg = np.full_like(fg, opacity) if piece.bg is None else np.asarray(piece.bg, np.float32) / 255
    luma = _weights(fg, bg, None, fill[:1], back[:1])
    h, w = fg.shape
    both = np.zeros((h + h % 2, phase + w + (phase + w) % 2, 2), np.float32)
    both[:h, phase : phase + w, 0] = fg
    both[:h, phase : phase + w, 1] = bg
    half = both.reshape(both.shape[0] // 2, 2, both.shape[1] // 2, 2, 2).mean(axis=(1, 3))
    if piece.bg is None:
        half[..., 1] = opacity
    return luma, _weights(half[..., 0], half[..., 1], None, fill[1:], back[1:])


def _weights(
    fg: Any, bg: Any, opacity: float | None, fill: tuple[int, ...], back: tuple[int, ...]
) -> np.ndarray:
    """[255 - mul, add] per pixel (last axis), for text coverage `fg` over a background
    of coverage `bg` (`opacity` instead, when given), in the colours' channels."""
    fg = np.asarray(fg, np.float32)
    bg = np.asarray(bg if opacity is None else np.full_like(fg, opacity), np.float32)
    keep = (1 - bg) * (1 - fg)  # the share of the picture left under the caption
    out = [np.rint(255 * (1 - keep))]
    for f, b in zip(fill, back, strict=True):
        out.append(np.rint(b * bg * (1 - fg) + f * fg))
    weights: np.ndarray = np.clip(np.stack(out, axis=-1), 0, 255).astype(np.uint8)
    return weights


def _ycc(rgb: tuple[int, int, int]) -> tuple[int, ...]:
    """An RGB colour in JPEG's YCbCr, as Pillow converts it."""
    return tuple(Image.new("RGB", (1, 1), rgb).convert("YCbCr").getpixel((0, 0)))  # type: ignore[arg-type]
