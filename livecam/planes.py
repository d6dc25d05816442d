"""JPEG's own pixels: YCbCr 4:2:0 planes, made once per frame, resized as planes.

A JPEG encoder given RGB pixels first converts them to YCbCr (JFIF: full-range BT.601)
and averages each 2x2 block of the two chroma planes. Done once per frame here instead
of once per variant, every later step handles 1.5 bytes a pixel instead of 4 (RGBX):
each size is resized as three planes (livecam/pyramid.py, one pyramid per plane) and
encoded from them (`simplejpeg.encode_jpeg_yuv_planes`: no colour conversion and no
chroma downsampling in the encoder). A Pi camera's lores stream already is such planes.

The conversion (`from_rgb`) is libjpeg-turbo's own where libturbojpeg is installed
(livecam/turbo.py: the planes its encoder would make of the RGB). Without it, OpenCV
takes what libjpeg computes, within 1 of 255:

- Y at full size with OpenCV's RGB to grey, the same BT.601 weights, rounded;
- the frame halved with INTER_AREA (2x2 means), then OpenCV's `RGB2YCrCb`, which is
  JFIF's matrix, full range: the chroma planes, averaged as libjpeg averages them
  (the conversion is linear, so averaging before or after it differs in rounding
  only), and Y halved, the first level of the luma pyramid, for free;
- row strips a few dozen rows high, so the halving reads rows that Y's pass has just
  brought into the cache, and the strips split between threads.

OpenCV's `RGB2YUV_I420` is not usable: BT.601 limited range (16-235) and the chroma of
each 2x2 block's top-left pixel, not its mean (tests/test_planes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import cv2
import numpy as np

from livecam import pyramid, turbo
from livecam.pyramid import Buffers, Size

# Output rows of the half-size planes per strip: the strip's source rows (64 at 4056
# pixels wide, 1 MiB) stay in the cache between the luma pass and the halving.
STRIP_ROWS = 64
# libjpeg-turbo's conversion when libturbojpeg is installed (livecam/turbo.py); False
# forces OpenCV's (the bench compares them).
USE_TURBO = True


class Planes(NamedTuple):
    """Y (height, width), Cb and Cr (ceil(height / 2), ceil(width / 2)), uint8, rows
    contiguous (any row stride), full-range JFIF values."""

    y: np.ndarray
    u: np.ndarray  # Cb
    v: np.ndarray  # Cr

    @property
    def size(self) -> Size:
        return self.y.shape[1], self.y.shape[0]

    def rows(self, top: int, bottom: int) -> Planes:
        """Image rows top..bottom (top even), as views."""
        return Planes(self.y[top:bottom], self.u[top // 2 : (bottom + 1) // 2],
                      self.v[top // 2 : (bottom + 1) // 2])  # fmt: skip


def chroma_size(size: Size) -> Size:
    """The chroma planes' size for an image of `size`, as JPEG 4:2:0 has them."""
    return (size[0] + 1) // 2, (size[1] + 1) // 2


# Splits rows 0..n of a `width` wide plane among threads: split(n, width, convert) calls
# convert(top, bottom) for ranges that cover 0..n once each, and returns when all are done.
RowSplitter = Callable[[int, int, Callable[[int, int], None]], None]


def serial(n: int, width: int, convert: Callable[[int, int], None]) -> None:
    convert(0, n)


def from_rgb(
    array: np.ndarray,
    buffers: Buffers,
    name: object,
    split: RowSplitter = serial,
    want_half: bool = True,
) -> tuple[Planes, np.ndarray | None]:
    """`array`, (height, width, 4) RGBX or (height, width, 3) RGB, as JPEG's planes in
    `buffers`, and Y halved (odd row and column left out, as a pyramid level has it),
    which libjpeg-turbo's conversion leaves out without `want_half` (`needs_half`)."""
    h, w = array.shape[:2]
    h2, w2 = h // 2, w // 2
    cw, ch = chroma_size((w, h))
    y = buffers.get((name, "y"), (h + h % 2, w + w % 2))
    out = Planes(
        y[:h, :w],
        buffers.get((name, "u"), (ch, cw)),
        buffers.get((name, "v"), (ch, cw)),
    )
    if turbo.available() and USE_TURBO:
        wanted = buffers.get((name, "y/2"), (h2, w2)) if want_half else None
        _from_rgb_turbo(array, y, out, wanted, split)
        return out, wanted
    half = buffers.get((name, "y/2"), (h2, w2))
    gray = cv2.COLOR_RGBA2GRAY if array.shape[2] == 4 else cv2.COLOR_RGB2GRAY

    def convert(top: int, bottom: int) -> None:
        """Rows top..bottom of the half-size planes, and the frame rows they cover."""
        # Scratch rows of this thread's own (each range starts at its own `top`).
        rgb = buffers.get((name, "rgb", top), (STRIP_ROWS, w2, array.shape[2]))
        ycc = buffers.get((name, "ycc", top), (STRIP_ROWS, w2, 3))
        for a in range(top, bottom, STRIP_ROWS):
            b = min(bottom, a + STRIP_ROWS)
            n = b - a
            rows = array[2 * a : 2 * b]
            cv2.cvtColor(rows, gray, dst=out.y[2 * a : 2 * b])
            cv2.resize(rows[:, : 2 * w2], (w2, n), dst=rgb[:n], interpolation=cv2.INTER_AREA)
            cv2.cvtColor(rgb[:n], cv2.COLOR_RGB2YCrCb, dst=ycc[:n])
            _split(ycc[:n], [half[a:b], out.v[a:b, :w2], out.u[a:b, :w2]])

    if h2 and w2:
        split(h2, w2, convert)
    elif h2:  # one column: no 2x2 block
        cv2.cvtColor(array[: 2 * h2], gray, dst=out.y[: 2 * h2])
    _odd_edges(array, out, gray)
    _pad_edge(y, (w, h))
    return out, half


def _from_rgb_turbo(
    array: np.ndarray, y: np.ndarray, out: Planes, half: np.ndarray | None, split: RowSplitter
) -> None:
    """`from_rgb` by libjpeg-turbo (livecam/turbo.py), in bands of rows the threads share:
    it pads Y and fills the chroma of odd edges itself, as its encoder would. Each band's
    Y is halved while its rows are still in the cache."""
    h, w = array.shape[:2]
    h2, w2 = h // 2, w // 2

    def convert(top: int, bottom: int) -> None:
        a, b = 2 * top, h if bottom == h2 else 2 * bottom  # the last band: an odd row too
        turbo.to_planes(array[a:b], y[a:], out.u[top:], out.v[top:])
        if half is not None and w2 and bottom > top:
            rows = y[2 * top : 2 * bottom, : 2 * w2]
            cv2.resize(rows, (w2, bottom - top), dst=half[top:bottom], interpolation=cv2.INTER_AREA)

    if h2:
        split(h2, max(w2, 1), convert)
    else:  # one row
        turbo.to_planes(array, y, out.u, out.v)


def _split_in_place() -> bool:
    """Whether `cv2.split` writes into the arrays it is given, row-strided views
    included (OpenCV 4 does: the list becomes Mats over their memory, the right size)."""
    src = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    dst = np.zeros((2, 4), np.uint8)
    planes = [dst[:, :3], np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.uint8)]
    try:
        cv2.split(src, planes)
    except cv2.error:
        return False
    return all(np.array_equal(p, src[:, :, i]) for i, p in enumerate(planes))


def _mix(ycc: np.ndarray, planes: list[np.ndarray]) -> None:
    cv2.mixChannels([ycc], planes, [0, 0, 1, 1, 2, 2])


# YCrCb's channels into (Y halved, Cr, Cb): `cv2.split` into the planes' own memory
# takes an eighth of the time of `mixChannels` (its SIMD deinterleave: 0.3 instead of
# 2.5 ms a frame at 12 MP), which stays as the fallback should it ever copy.
_split = cv2.split if _split_in_place() else _mix


def padded(y: np.ndarray, buffers: Buffers, name: object) -> np.ndarray:
    """Luma of an odd size as the encoder reads it: libjpeg-turbo's planes interface
    reads Y padded to even (its `tjPlaneWidth`), one column and row past the image;
    this is a view of a buffer that has them, holding the edge repeated (a copy, 0.1
    ms at 1441x1080). Even sizes come back as they are."""
    h, w = y.shape
    if not (h % 2 or w % 2):
        return y
    dst = buffers.get(("padded", name), (h + h % 2, w + w % 2))
    cv2.copyMakeBorder(y, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE, dst=dst)
    return dst[:h, :w]


def _pad_edge(y: np.ndarray, size: Size) -> None:
    """Repeat the last column and row of `size` into `y`'s padding (see `padded`)."""
    w, h = size
    if w % 2:
        y[:h, w] = y[:h, w - 1]
    if h % 2:
        y[h, :] = y[h - 1, :]


def _odd_edges(array: np.ndarray, out: Planes, gray: int) -> None:
    """An odd last row or column: luma as it is, chroma from it alone (libjpeg repeats
    the edge pixel to fill the 2x2 block, so its mean is the pixel pair's)."""
    h, w = array.shape[:2]
    h2, w2 = h // 2, w // 2
    if h % 2:
        cv2.cvtColor(array[h - 1 :], gray, dst=out.y[h - 1 :])
        if w2:
            row = cv2.resize(array[h - 1 :, : 2 * w2], (w2, 1), interpolation=cv2.INTER_AREA)
            _put_chroma(row, out, h2, 0)
    if w % 2:
        if h2:
            column = cv2.resize(array[: 2 * h2, w - 1 :], (1, h2), interpolation=cv2.INTER_AREA)
            _put_chroma(column.reshape(h2, 1, -1), out, 0, w2)
        if h % 2:
            _put_chroma(array[h - 1 :, w - 1 :], out, h2, w2)


def _put_chroma(rgb: np.ndarray, out: Planes, top: int, left: int) -> None:
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb)
    rows, cols = ycc.shape[:2]
    out.v[top : top + rows, left : left + cols] = ycc[:, :, 1]
    out.u[top : top + rows, left : left + cols] = ycc[:, :, 2]


def downscale(
    frame: Planes,
    sizes: Iterable[Size],
    buffers: Buffers,
    lores: Planes | None = None,
    half: np.ndarray | None = None,
) -> Iterator[tuple[Size, Planes]]:
    """Each of `sizes` (all smaller than `frame`) made from `frame`, largest first, and
    from `lores` (the camera's own smaller copy) for the sizes it covers; `half` is Y
    halved, when `from_rgb` made it. As `pyramid.downscale`, plane by plane: the
    chroma planes of a size take the filter chosen for its luma (`pyramid.step`).
    The planes are `buffers`' and stay valid until its `end_frame`."""
    main = _pyramids(frame, buffers, "main", half)
    small = None if lores is None else _pyramids(lores, buffers, "lores")
    made: list[tuple[Planes, bool]] = []  # (planes, from lores)
    cascades = plan_cascades(frame.size, sizes, None if lores is None else lores.size)
    by_size: dict[Size, Planes] = {}
    for size in sorted(set(sizes), key=lambda s: s[0] * s[1], reverse=True):
        # The ISP's copy costs no CPU and was scaled once: start from it.
        from_lores = lores is not None and pyramid.covers(lores.y, size)
        levels = small if small is not None and from_lores else main
        if size in cascades:
            planes = _from_variant(by_size[cascades[size]], size, buffers)
            made.append((planes, from_lores))
            by_size[size] = planes
            yield size, planes
            continue
        out = []
        for i, target in enumerate((size, chroma_size(size), chroma_size(size))):
            exact = [
                (k, m[i])
                for m, lo in made
                if lo == from_lores and (k := pyramid.halvings(m[i], target))
            ]
            if exact:
                k, source = exact[-1]
                plane = pyramid.halve(source, k, buffers, ("halved", size, i))
                out.append(padded(plane, buffers, size) if i == 0 else plane)
            elif i:
                out.append(_chroma(levels[i], size, buffers, (i, size)))
            else:
                out.append(_luma(levels[i], size, buffers))
        planes = Planes(*out)
        made.append((planes, from_lores))
        by_size[size] = planes
        yield size, planes


def _levels_used(frame: Size, sizes: Iterable[Size], lores: Size | None) -> dict[Size, int]:
    """The frame's luma level each size is resized from, largest first (sizes that are
    exact halvings of a larger one, or come from `lores`, use none)."""
    used: dict[Size, int] = {}
    done: list[Size] = []
    for size in sorted(set(sizes), key=lambda s: s[0] * s[1], reverse=True):
        from_lores = lores is not None and lores[0] >= size[0] and lores[1] >= size[1]
        exact = any(pyramid.size_halvings(m, size) for m in done)
        done.append(size)
        if not from_lores and not exact:
            used[size] = pyramid.level_of(frame, size)[0]
    return used


def needs_half(frame: Size, sizes: Iterable[Size], lores: Size | None = None) -> bool:
    """Whether `downscale` will read the frame's luma halved (pyramid level 1)."""
    used, cascades = _plan(frame, sizes, lores)
    return any(k >= 1 for s, k in used.items() if s not in cascades)


def plan_cascades(frame: Size, sizes: Iterable[Size], lores: Size | None) -> dict[Size, Size]:
    """Sizes to make from a larger variant instead of the pyramid: where the pyramid's
    step would be bicubic (its level is less than 1.35x larger), and a variant made
    from the frame (not from lores) is 1.35 to `CASCADE_MAX` times larger, one bilinear
    step from it, which reads fewer pixels and costs 0.7x a bicubic one's per pixel.
    The variant must be made from the frame itself (a sharp image: a step from a
    halved level is already soft, and a third step loses 0.6 dB at 12 MP), unless the
    cascade spares a pyramid level that no other size needs. 1080p's 800x450 from
    1280x720: Y halved and its chroma level are not made at all, 0.5-0.8 ms of CPU a
    frame; 2028x1520's 961x720 from 1441x1080: 0.2-0.33 ms, its bench margin 0.06 dB
    lower. tests/test_planes.py holds both within 1 dB of Pillow's BILINEAR."""
    return _plan(frame, sizes, lores)[1]


# A bilinear step from a variant up to this factor: past it, it aliases more than the
# pyramid's bicubic step (against Pillow's BILINEAR from full, on the photo-like frame:
# about equal at 1.45-1.7, 0.5-1 dB worse at 1.8-1.9).
CASCADE_MAX = 1.7


def _plan(
    frame: Size, sizes: Iterable[Size], lores: Size | None
) -> tuple[dict[Size, int], dict[Size, Size]]:
    """`_levels_used` and `plan_cascades`, the one made from the other."""
    used = _levels_used(frame, sizes, lores)
    out: dict[Size, Size] = {}
    for size, k in used.items():  # largest first
        level = pyramid.level_of(frame, size)[1]
        if k < 1 or min(level[0] / size[0], level[1] / size[1]) >= pyramid.CUBIC_BELOW:
            continue
        if level[0] - size[0] <= 1 and level[1] - size[1] <= 1:
            continue  # the level is the size already: a view, no step at all
        spares = not any(j >= k for s, j in used.items() if s != size and s not in out)
        sources = [
            m
            for m in used
            if m not in out
            and (spares or used[m] == 0)
            and m[0] * m[1] > size[0] * size[1]
            and pyramid.CUBIC_BELOW <= min(m[0] / size[0], m[1] / size[1]) < CASCADE_MAX
        ]
        if sources:
            out[size] = min(sources, key=lambda m: m[0] * m[1])
    return used, out


def _from_variant(source: Planes, size: Size, buffers: Buffers) -> Planes:
    """`size` made from a variant 1.35 to `CASCADE_MAX` times larger: one bilinear step
    per plane (see `plan_cascades`), the chroma placed as `_chroma` places it. An odd
    variant's chroma covers one column or row of padding past the image: its extent
    says so, so that chroma takes the luma's scale."""
    w, h = size
    # Straight into the padded buffer the encoder reads, as `_luma` does.
    buffer = buffers.get(("padded", size), (h + h % 2, w + w % 2))
    luma = cv2.resize(source.y, size, dst=buffer[:h, :w], interpolation=cv2.INTER_LINEAR)
    if luma.base is buffer:
        _pad_edge(buffer, size)
    else:  # OpenCV made an array of its own: copied, padded
        luma = padded(luma, buffers, size)
    chroma = []
    for i, plane in ((1, source.u), (2, source.v)):
        name = ("from variant", size, i)
        levels = pyramid.Pyramid(plane, buffers, name, extent=_extent(source, i))
        chroma.append(_chroma(levels, size, buffers, name))
    return Planes(luma, *chroma)


def _pyramids(
    source: Planes, buffers: Buffers, name: str, half: np.ndarray | None = None
) -> list[pyramid.Pyramid]:
    """A pyramid per plane of `source`, under (`name`, plane); `half` is Y's level 1."""
    return [
        pyramid.Pyramid(p, buffers, (name, i), half if i == 0 else None, _extent(source, i))
        for i, p in enumerate(source)
    ]


def _extent(source: Planes, i: int) -> tuple[float, float]:
    """The share of the image plane `i` of `source` shows: an odd image's chroma covers
    one column or row of padding past it, so that a resize at the luma's scale keeps
    its samples where JPEG has them (with the chroma's own, they drift by up to half a
    sample towards the right and bottom edges)."""
    if i == 0:
        return (1.0, 1.0)
    w, h = source.size
    return (2 * source.u.shape[1] / w, 2 * source.u.shape[0] / h)


def _luma(levels: pyramid.Pyramid, size: Size, buffers: Buffers) -> np.ndarray:
    """The luma plane of `size`, resized straight into the padded buffer the encoder
    reads when `size` is odd (saves `padded`'s copy: 0.25 ms at 1441x1080)."""
    w, h = size
    if not (w % 2 or h % 2):
        return levels.resize(size)
    buffer = buffers.get(("padded", size), (h + h % 2, w + w % 2))
    plane = levels.resize(size, out=buffer[:h, :w])
    if plane.base is not buffer:  # a view of a level: copied, padded
        return padded(plane, buffers, size)
    _pad_edge(buffer, size)
    return plane


def _chroma(levels: pyramid.Pyramid, size: Size, buffers: Buffers, name: object) -> np.ndarray:
    """A chroma plane of `size`, its samples where JPEG has them.

    Each chroma sample stands for 2x2 pixels of the image, so its place follows the
    luma's scale. A plain resize to ceil(w / 2) misplaces them by up to half a sample
    when `size` is odd (JPEG repeats the edge pixel to even) or the level left out an
    odd column: 7-8 dB lost on the chroma of 1441x1080 and 320x240 from 12 MP. OpenCV
    keeps a scale given as fx, fy; the edge is repeated where it rounds one short.
    No supersampling for small sizes, which luma has: chroma's error hides in the
    JPEG's (the decoded variants are within 0.25 dB of the RGBX path's)."""
    cw, ch = chroma_size(size)
    k = levels.level_for((cw, ch))
    source, (ex, ey) = levels.levels[k], levels.extents[k]
    if source.shape[1] - cw <= 1 and source.shape[0] - ch <= 1:
        return source[:ch, :cw]  # as the luma: the size itself, or a crop of a pixel
    fx, fy = ex * size[0] / (2 * source.shape[1]), ey * size[1] / (2 * source.shape[0])
    # Bicubic near a factor of 1, as for luma: bilinear there costs the decoded JPEGs
    # 0.4-0.7 dB (961x720 and 800x600 from 12 MP).
    cubic = 1 / min(fx, fy) < pyramid.CUBIC_BELOW
    interpolation = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    dst = buffers.get(("chroma", name), (ch, cw))
    # OpenCV makes round(n * f) samples (half to even, as Python's round): resized
    # straight into `dst` when they fit, the edge repeated into what is left (saves a
    # copy of the plane); else made apart and cropped.
    rows, cols = round(source.shape[0] * fy), round(source.shape[1] * fx)
    if 0 < rows <= ch and 0 < cols <= cw:
        made = cv2.resize(source, None, dst=dst[:rows, :cols], fx=fx, fy=fy,
                          interpolation=interpolation)  # fmt: skip
        if made.base is dst:
            dst[:rows, cols:] = dst[:rows, cols - 1 : cols]
            dst[rows:] = dst[rows - 1]
            return dst
    if rows and cols:
        made = cv2.resize(source, None, fx=fx, fy=fy, interpolation=interpolation)
    else:  # under one sample across or down (a 1x1 variant): one, at least
        made = cv2.resize(source, (max(cols, 1), max(rows, 1)), interpolation=cv2.INTER_AREA)
    rows, cols = min(made.shape[0], ch), min(made.shape[1], cw)
    cv2.copyMakeBorder(made[:rows, :cols], 0, ch - rows, 0, cw - cols, cv2.BORDER_REPLICATE,
                       dst=dst)  # fmt: skip
    return dst


def to_rgb(planes: Planes) -> np.ndarray:
    """The planes as an (height, width, 3) RGB array, chroma upsampled bilinearly as a
    decoder does (for tests and the bench: the pixels a JPEG of them shows)."""
    w, h = planes.size
    up = [cv2.resize(p, (2 * p.shape[1], 2 * p.shape[0]), interpolation=cv2.INTER_LINEAR)
          for p in (planes.v, planes.u)]  # fmt: skip
    ycc = cv2.merge((planes.y, up[0][:h, :w], up[1][:h, :w]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
