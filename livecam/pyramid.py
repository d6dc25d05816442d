"""Downscaling with OpenCV: a halving pyramid, then one short step per size.

Imported only when numpy and OpenCV are (`pip install 'livecam[fast]'`); without them
the renderer uses Pillow. Level k of a `Pyramid` is the frame halved k times with
INTER_AREA, each level from the previous one: an exact halving takes OpenCV's SIMD 2x2
box path, 0.2 ns a source pixel here against 1.6 ns an output pixel for a bilinear
step (scripts/bench.py --alternatives). Levels are built only as deep as a size needs.
Each size is then made in one step from the smallest level that covers it, a factor
in [1, 2), with the filter that holds quality at that factor (`step`).

Arrays are uint8, (height, width, channels) or one plane (height, width), any row
stride: OpenCV reads a padded camera buffer in place. Outputs go into `Buffers`, kept
from frame to frame. livecam/planes.py runs one pyramid per YCbCr plane.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

# Below this factor a bilinear step blurs (most output pixels fall between two source
# pixels): bicubic keeps 2-3.5 dB more there. From 1.35 on, bicubic aliases more than
# bilinear (12 MP to 961x720 from level 2, factor 1.06: bilinear -3.6 dB, bicubic -0.7
# dB against Pillow's BILINEAR from full; 1441x1080 from level 1, 1.41: bilinear -0.9,
# bicubic -1.6).
CUBIC_BELOW = 1.35
# Up to this many output pixels, a step of 1.35 or more is a bicubic upscale to twice
# the size and an exact halving: +1.8 to +2.4 dB over bilinear for 320x240 (which loses
# 1.7 dB at 12 MP), at 0.45 ms instead of 0.1. Above it, plain bilinear: 4x the pixels
# would cost 10 ms at 1441x1080.
SUPERSAMPLE_MAX_PIXELS = 500_000

Size = tuple[int, int]  # (width, height), as Pillow and OpenCV's dsize have it


def configure() -> None:
    """One OpenCV thread: the renderer runs its own threads on the same cores, and
    OpenCV's pool on top of them only adds hand-offs."""
    cv2.setNumThreads(1)


def version() -> str:
    return str(cv2.__version__)


class Buffers:
    """Output arrays kept from one frame to the next, by name.

    Fresh arrays would be fresh pages every frame (glibc's mmap threshold is pinned,
    see render.py): ~0.2x the encode-only bound in page faults at 1080p, measured.
    Whatever a frame did not ask for is dropped at `end_frame`, so a change of size
    does not pile them up.
    """

    def __init__(self) -> None:
        self._kept: dict[object, np.ndarray] = {}
        self._used: dict[object, np.ndarray] = {}

    def get(self, name: object, shape: tuple[int, ...]) -> np.ndarray:
        array = self._used.get(name)
        if array is None:
            array = self._kept.get(name)
        if array is None or array.shape != shape:
            array = np.empty(shape, np.uint8)
        self._used[name] = array
        return array

    def end_frame(self) -> None:
        self._kept, self._used = self._used, {}

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._kept.values())


class Pyramid:
    """`root` and its halvings, made on demand into `buffers` under `name`; `half`, when
    given, is level 1 made already. `extent` is the share of the image's width and
    height that `root` shows: more than 1 for an odd image's chroma plane, whose last
    sample covers a column or row of padding."""

    def __init__(
        self,
        root: np.ndarray,
        buffers: Buffers,
        name: object,
        half: np.ndarray | None = None,
        extent: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        self.levels = [root] if half is None else [root, half]
        # The share of the image's width and height each level shows (odd rows and
        # columns are left out of a halving).
        self.extents = [extent]
        if half is not None:
            self.extents.append(_halved_extent(extent, root))
        self._buffers = buffers
        self._name = name

    def source_for(self, size: Size) -> np.ndarray:
        """The smallest level that covers `size` (the root always does)."""
        return self.levels[self.level_for(size)]

    def level_for(self, size: Size) -> int:
        """The index of `source_for(size)`, made if it was not."""
        root = self.levels[0]
        k = level_of((root.shape[1], root.shape[0]), size)[0]
        self._level(k)
        return k

    def resize(
        self, size: Size, pixels: int | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """`size` made from the smallest level that covers it, in one step (`pixels`,
        `out`: see `step`); a view of a level when it has the size already."""
        source = self.source_for(size)
        if source.shape[1] - size[0] <= 1 and source.shape[0] - size[1] <= 1:
            # The size itself, or a pixel larger (an even-sized lores stream for an odd
            # variant, 1442x1080 for 1441x1080): a view, not a 3 ms near-1x resample.
            return source[: size[1], : size[0]]
        return step(source, size, self._buffers, (self._name, size), pixels, out)

    def _level(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            prev = self.levels[-1]
            h, w = prev.shape[0] // 2, prev.shape[1] // 2
            # An odd row or column is left out (a view): OpenCV takes its fast path
            # only for an exact factor of 2 (27 ms instead of 0.8 at 2029x1521). The
            # level then shows one source pixel less, under half a pixel of the output.
            src = prev[: 2 * h, : 2 * w]
            dst = self._buffers.get((self._name, len(self.levels)), (h, w, *prev.shape[2:]))
            self.levels.append(cv2.resize(src, (w, h), dst=dst, interpolation=cv2.INTER_AREA))
            self.extents.append(_halved_extent(self.extents[-1], prev))
        return self.levels[k]


def _halved_extent(extent: tuple[float, float], level: np.ndarray) -> tuple[float, float]:
    h, w = level.shape[:2]
    return extent[0] * (w - w % 2) / w, extent[1] * (h - h % 2) / h


def downscale(
    frame: np.ndarray,
    sizes: Iterable[Size],
    buffers: Buffers,
    lores: np.ndarray | None = None,
) -> Iterator[tuple[Size, np.ndarray]]:
    """Each of `sizes` (all smaller than `frame`) made from `frame`, largest first, and
    from `lores` (the camera's own smaller copy) for the sizes it covers.

    A size that is an exact 2^k of one already made is halved from it (1080p: 320x180
    from 1280x720, 0.03 ms); the rest come from a pyramid. The arrays are `buffers`'
    and stay valid until its `end_frame`."""
    main = Pyramid(frame, buffers, "main")
    small = None if lores is None else Pyramid(lores, buffers, "lores")
    made: list[tuple[np.ndarray, bool]] = []  # (pixels, from lores)
    for size in sorted(set(sizes), key=lambda s: s[0] * s[1], reverse=True):
        # The ISP's copy costs no CPU and was scaled once: start from it.
        from_lores = small is not None and covers(small.levels[0], size)
        exact = [(k, m) for m, lo in made if lo == from_lores and (k := halvings(m, size))]
        if exact:
            k, source = exact[-1]
            pixels = halve(source, k, buffers, ("halved", size))
        elif small is not None and from_lores:
            pixels = small.resize(size)
        else:
            pixels = main.resize(size)
        made.append((pixels, from_lores))
        yield size, pixels


def covers(array: np.ndarray, size: Size) -> bool:
    return array.shape[1] >= size[0] and array.shape[0] >= size[1]


def level_of(root: Size, size: Size) -> tuple[int, Size]:
    """The level of a pyramid over `root` that `size` is made from (the smallest that
    covers it: its halving would not), and that level's size."""
    (w, h), k = root, 0
    while w // 2 >= size[0] and h // 2 >= size[1]:
        w, h, k = w // 2, h // 2, k + 1
    return k, (w, h)


def halvings(source: np.ndarray, size: Size) -> int:
    """k >= 1 when `size` is `source` halved exactly k times, else 0."""
    return size_halvings((source.shape[1], source.shape[0]), size)


def size_halvings(source: Size, size: Size) -> int:
    """`halvings` for an image of size `source`."""
    (w, h), k = source, 0
    while w > size[0] and h > size[1] and w % 2 == 0 and h % 2 == 0:
        w, h, k = w // 2, h // 2, k + 1
    return k if (w, h) == size else 0


def halve(source: np.ndarray, times: int, buffers: Buffers, name: object) -> np.ndarray:
    """`source` halved `times` times: 1280x720 to 320x180 in 0.03 ms, a 2x2 box of a
    good image (+1.4 dB over a bicubic step from the frame's level 2 at 1080p)."""
    for k in range(times):
        h, w = source.shape[0] // 2, source.shape[1] // 2
        dst = buffers.get((name, k), (h, w, *source.shape[2:]))
        source = cv2.resize(source, (w, h), dst=dst, interpolation=cv2.INTER_AREA)
    return source


def step(
    source: np.ndarray,
    size: Size,
    buffers: Buffers,
    name: object,
    pixels: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """`source` shrunk to `size` by a factor below 2 (see the constants above), into
    `out` when given (a view of the right shape, any row stride), else into `buffers`.
    `pixels` is the output image's size the filter is chosen for, when `size` is a
    chroma plane of it (a quarter of its pixels): both planes of an image take the
    same filter."""
    w, h = size
    channels = source.shape[2:]
    dst = buffers.get(name, (h, w, *channels)) if out is None else out
    factor = min(source.shape[1] / w, source.shape[0] / h)
    if factor < CUBIC_BELOW:
        return cv2.resize(source, size, dst=dst, interpolation=cv2.INTER_CUBIC)
    if (w * h if pixels is None else pixels) <= SUPERSAMPLE_MAX_PIXELS:
        double = buffers.get(("x2", name), (2 * h, 2 * w, *channels))
        cv2.resize(source, (2 * w, 2 * h), dst=double, interpolation=cv2.INTER_CUBIC)
        return cv2.resize(double, size, dst=dst, interpolation=cv2.INTER_AREA)
    return cv2.resize(source, size, dst=dst, interpolation=cv2.INTER_LINEAR)
