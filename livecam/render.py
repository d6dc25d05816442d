"""Turn one frame into the configured JPEG variants.

Each variant is a bounding box (aspect kept, never upscaled). CPU is the budget on a
Pi, so the work per frame is kept close to the floor, the time to JPEG-encode each
output once (docs/performance.md has the figures; `scripts/bench.py` reproduces them).

When OpenCV, numpy and simplejpeg import and the frame carries its pixels as a numpy
`array`, the frame is converted once to what a JPEG holds, YCbCr 4:2:0 planes (by
libjpeg-turbo's own conversion where libturbojpeg is installed, else OpenCV's; two
threads, in bands of rows), and everything after works on the planes
(livecam/planes.py): a halving pyramid and one short step per size
(livecam/pyramid.py), each plane a third or less of RGBX's bytes, then simplejpeg
encodes the planes as they are, without the colour conversion and chroma downsampling
it would otherwise repeat per variant. simplejpeg releases the GIL, so two encodes run
at once: a pool thread encodes the full size (a large frame's in strips that both
threads share, joined by restart markers: livecam/jpegstrips.py) while the calling
thread resizes. A camera's YUV420 lores stream is used as the planes it is. (With
`use_planes=False`, or a simplejpeg without planes, the same pyramid resizes the RGBX
array and the arrays are encoded.)

Otherwise Pillow does it all:

- each distinct output (size, quality) is encoded once, on a small thread pool, the
  full-size encode first (Pillow releases the GIL in resize and reduce, so they run
  beside an encode; its JPEG encoder holds it, so two encodes do not overlap);
- each smaller size is made from the smallest image already made that is at least
  `MIN_STEP` times larger, so every step reads fewer pixels than going back to the
  full frame; sizes the camera's ISP-scaled `lores` copy covers start from it;
- a step is an integer `reduce` (a cheap box average) followed by one HAMMING resize
  with the exact sub-pixel box; large ones are cut into strips, each reduced and
  filtered in one go, that the calling thread and the pool share.
"""

from __future__ import annotations

import ctypes
import io
import itertools
import logging
import math
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from livecam import jpegstrips
from livecam.camera.base import PIXEL_MODES, Frame
from livecam.camera.yuv import checked_planes, planes_to_rgb
from livecam.config import VariantConfig
from livecam.errors import RenderError

try:
    from livecam import planes, pyramid
except ImportError:  # no numpy or no OpenCV: Pillow resizes
    planes = None  # type: ignore[assignment]
    pyramid = None  # type: ignore[assignment]
try:
    import simplejpeg  # on a Pi with picamera2 already (python3-simplejpeg)
except ImportError:
    simplejpeg = None

if TYPE_CHECKING:
    import numpy as np

    from livecam.planes import Planes

log = logging.getLogger(__name__)

# HAMMING costs what BILINEAR costs (same support) but is sharper, so a cascade of
# steps stays within 1 dB of BILINEAR-from-full against a LANCZOS reference, where a
# BILINEAR cascade loses 3-5 dB (scripts/bench.py --alternatives, "cascade" rows).
FILTER = Image.Resampling.HAMMING
# A step of less than this factor blurs more than it saves: use a larger source.
MIN_STEP = 1.4
# `reduce` by int(factor / REDUCE_GAP) before the filter: 4056 -> 1441 becomes
# reduce(2) + HAMMING 1.41, a third of a direct HAMMING resize (bench "reduce" rows).
REDUCE_GAP = 1.4
_SUPPORT = 1.0  # HAMMING's, in output pixels
# Outputs smaller than this are made in one piece: splitting costs more than it saves.
STRIP_MIN_PIXELS = 400_000
# The full-size encode is cut into strips only from frames of this many pixels on, and
# the colour conversion is split between the threads only where it is: the pool's
# thread converts the lower rows and goes straight on to encode them. Elsewhere a split
# costs more CPU than its wall time is worth (1080p, interleaved: 12.0 instead of 11.6
# ms of CPU for 6.5 instead of 7.0 ms of wall; 2028x1520: 22.0 and 21.5, 11.8 and 13.1).
SPLIT_MIN_PIXELS = 1_000_000
# The full-size encode is cut into this many strips per thread (so that a thread done
# early takes another) when the frame has this many times the pixels of all smaller
# outputs together: 12 MP with the 4 default variants (4.4x), not 2028x1520 (1.1x).
STRIPS_PER_THREAD = 2
STRIPS_OUTWEIGH = 3


@dataclass(frozen=True)
class Rendered:
    """One encoded variant."""

    name: str
    data: bytes
    width: int
    height: int


def encode(image: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0: `optimize` costs 2.7x and `progressive` 5x per encode."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_array(array: np.ndarray, quality: int) -> bytes:
    """`encode` for a uint8 (height, width, 4) RGBX or (height, width, 3) RGB array, rows
    maybe padded: simplejpeg when installed (the settings of Pillow's: baseline, 4:2:0,
    the accurate DCT, standard tables; sizes and PSNR within 0.1%), else Pillow."""
    channels = array.shape[2]
    if simplejpeg is not None:
        colorspace = "RGBX" if channels == 4 else "RGB"
        return bytes(simplejpeg.encode_jpeg(array, quality, colorspace, "420", False))
    return encode(_image(array), quality)


def encode_planes(pixels: Planes, quality: int) -> bytes:
    """`encode` for YCbCr 4:2:0 planes (livecam/planes.py) with simplejpeg: the same
    libjpeg-turbo settings, minus its colour conversion and chroma downsampling."""
    assert simplejpeg is not None
    return bytes(simplejpeg.encode_jpeg_yuv_planes(*pixels, quality, False))


def planes_encoder() -> bool:
    """Whether simplejpeg can encode planes (`encode_jpeg_yuv_planes`, which picamera2's
    own JPEG encoder uses, so Raspberry Pi OS's has it)."""
    return simplejpeg is not None and hasattr(simplejpeg, "encode_jpeg_yuv_planes")


def downscale(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` shrunk to `size` in one thread, as `Renderer` does it in strips (whose
    float boxes may round a filter weight the other way: 1 of 255 at most)."""
    return _shrink(image, size, _serial)


def pick_source(images: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    """The image to make `size` from: one of exactly that size, else the smallest at
    least `MIN_STEP` times larger, else the largest (the first in `images`, the full
    frame, which always covers `size`)."""
    best = images[0]
    for image in images:
        if image.size == size:
            return image
        factor = min(image.width / size[0], image.height / size[1])
        if factor >= MIN_STEP and image.width * image.height < best.width * best.height:
            best = image
    return best


def _return_freed_images_to_the_os() -> None:
    """Make glibc hand large freed blocks (image memory) straight back to the OS.

    glibc raises its mmap threshold each time a large block is freed, after which
    image-sized blocks come from per-thread heaps that keep them and fragment: at 12 MP
    the RSS between frames sat a frame's worth higher and crept up (bench.py --soak:
    +143 MiB, 3.0 frames; with glibc's initial 128 KiB threshold fixed, +98-102 MiB,
    the test camera's own two frames, flat after 250 frames).
    """
    global _malloc_tuned
    if _malloc_tuned or not sys.platform.startswith("linux"):
        return
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt  # glibc only; musl has none
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3
    if not mallopt(m_mmap_threshold, 1 << 17):
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; freed images may stay resident")


_malloc_tuned = False


class Renderer:
    """Renders frames into variants; holds a small thread pool for the whole run.

    With `use_opencv` (the default) frames that carry a numpy `array` are resized with
    OpenCV when it is installed; others, or all with `use_opencv=False`, with Pillow.
    `use_planes` (the default, when simplejpeg can encode planes) makes the OpenCV path
    work on YCbCr 4:2:0 planes; False keeps it on the RGBX array (the bench compares).
    One frame at a time: the OpenCV path reuses its arrays from frame to frame.
    """

    def __init__(
        self,
        variants: Sequence[VariantConfig],
        threads: int = 2,
        use_opencv: bool = True,
        use_planes: bool = True,
    ) -> None:
        self.variants = tuple(variants)
        self.threads = max(1, threads)
        self.use_opencv = use_opencv and pyramid is not None
        self.use_planes = self.use_opencv and use_planes and planes_encoder()
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="render")
        self._lock = threading.Lock()
        self._buffers: pyramid.Buffers | None = None
        self._path = ""
        self._join_failed = False
        if self.use_opencv:
            pyramid.configure()
            self._buffers = pyramid.Buffers()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @property
    def path(self) -> str:
        """How the last frame was resized: "opencv" or "pillow" ("" before the first)."""
        return self._path

    def render(self, frame: Frame, names: Iterable[str] | None = None) -> list[Rendered]:
        """Encode the variants named in `names` (all when None), in configured order."""
        wanted_names = None if names is None else set(names)
        wanted = [v for v in self.variants if wanted_names is None or v.name in wanted_names]
        if not wanted:
            return []
        full = frame.image
        if full.mode not in PIXEL_MODES:
            raise RenderError(f"frame has pixel mode {full.mode!r}, expected RGB, RGBX or L")
        if full.width < 1 or full.height < 1:
            raise RenderError(f"frame has no pixels ({full.width}x{full.height})")
        sizes = {v.name: v.size_for(full.width, full.height) for v in wanted}
        lores = frame.lores
        if lores is not None and not (_usable_lores(lores.size, full) and _same_kind(lores, full)):
            lores = None
        lores_planes = frame.lores_planes if full.mode != "L" else None
        if lores_planes is not None:
            try:
                lores_planes = checked_planes(lores_planes, "frame.lores_planes")
            except ValueError as e:
                raise RenderError(str(e)) from e
            y = lores_planes[0]
            if not _usable_lores((y.shape[1], y.shape[0]), full):
                lores_planes = None
        array = frame.array if self.use_opencv and full.mode != "L" else None
        self._note_path("opencv" if array is not None else "pillow", frame)
        try:
            if array is not None:
                _check_array(array, full, "frame.array")
                lores_array = frame.lores_array if lores is not None else None
                if lores is not None and lores_array is not None:
                    _check_array(lores_array, lores, "frame.lores_array")
                with self._lock:
                    return self._render_fast(
                        full, array, lores, lores_array, lores_planes, wanted, sizes
                    )
            if lores is None and lores_planes is not None:
                lores = planes_to_rgb(*lores_planes)
            return self._render(full, lores, wanted, sizes)
        except (OSError, ValueError, MemoryError) as e:
            raise RenderError(f"could not encode frame: {e}") from e
        except Exception as e:
            if pyramid is not None and isinstance(e, pyramid.cv2.error):
                raise RenderError(f"could not resize frame: {e}") from e
            raise

    def _note_path(self, path: str, frame: Frame) -> None:
        """Log which way frames are resized: at the first frame, and on a change."""
        if path == self._path:
            return
        self._path = path
        if path == "pillow":
            _return_freed_images_to_the_os()
        if path == "opencv":
            if self.use_planes:
                log.info(
                    "render: OpenCV %s resizes YCbCr 4:2:0 planes, simplejpeg encodes",
                    pyramid.version(),
                )
            else:
                log.info(
                    "render: OpenCV %s resizes RGB arrays, %s encodes%s",
                    pyramid.version(),
                    "Pillow" if simplejpeg is None else "simplejpeg",
                    ""
                    if not self.use_opencv or planes_encoder()
                    else " (a newer simplejpeg would encode YCbCr planes, cheaper)",
                )
        elif pyramid is None:
            log.info(
                "render: Pillow only (no OpenCV); `pip install opencv-python-headless` "
                "cuts the CPU per frame %s (docs/performance.md)",
                OPENCV_SAVES,
            )
        elif not self.use_opencv:
            log.info("render: Pillow (use_opencv=False)")
        else:
            log.info("render: Pillow (%s frames carry no numpy array)", frame.image.mode)

    def _render_fast(
        self,
        full: Image.Image,
        array: np.ndarray,
        lores: Image.Image | None,
        lores_array: np.ndarray | None,
        lores_yuv: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        wanted: list[VariantConfig],
        sizes: dict[str, tuple[int, int]],
    ) -> list[Rendered]:
        assert pyramid is not None and planes is not None and self._buffers is not None
        buffers = self._buffers
        jobs = _Jobs()
        helpers: list[Future[None]] = []
        full_qualities: list[int] = []
        strips: tuple[list[int], int] | None = None
        smaller = {sizes[v.name] for v in wanted} - {full.size}
        lores_planes = None
        if lores_yuv is not None:  # a camera's are even-sized; the encoder pads odd ones
            y = planes.padded(lores_yuv[0], buffers, "lores")
            lores_planes = planes.Planes(y, lores_yuv[1], lores_yuv[2])
        try:
            made: Iterable[tuple[tuple[int, int], np.ndarray | Planes]]
            top: Image.Image | np.ndarray | Planes
            if self.use_planes:
                # Converted once (on both threads where the full size goes in strips):
                # the encodes and resizes that follow handle 1.5 bytes a pixel instead
                # of 4, and no encode converts again.
                lores_size = lores.size if lores is not None else None
                if lores_planes is not None:
                    lores_size = lores_planes.size
                half_needed = planes.needs_half(full.size, smaller, lores_size)
                strips = self._strips(full.size, smaller)
                # Split between the threads only where the full size is encoded in
                # strips: the pool's thread goes on to encode the rows it converted.
                # Elsewhere the split's hand-offs cost more CPU than they save wall.
                split = planes.serial if strips is None else self._split_then_help(jobs, helpers)
                top, half = planes.from_rgb(array, buffers, "frame", split, want_half=half_needed)
                if lores_planes is None and lores is not None:
                    rgb = lores_array if lores_array is not None else _array(lores)
                    lores_planes, _ = planes.from_rgb(rgb, buffers, "lores")
                made = planes.downscale(top, smaller, buffers, lores_planes, half)
            else:
                top = full if simplejpeg is None else array
                if lores is not None and lores_array is None:
                    lores_array = _array(lores)  # a copy, ~1 ms at 1.5 MP
                elif lores is None and lores_planes is not None:
                    lores_array = planes.to_rgb(lores_planes)
                made = pyramid.downscale(array, smaller, buffers, lores_array)
            # The full-size encode, the longest single job, goes first to the pool; the
            # calling thread resizes meanwhile, and both encode what is left (bench rows
            # "pipeline" vs "pipeline, threads=1"). Where `_strips` cuts it (12 MP), both
            # threads encode the strips (livecam/jpegstrips.py), bottom first: the pool
            # converted the lower rows, which its cache still holds.
            for v in wanted:
                if sizes[v.name] != full.size or v.quality in full_qualities:
                    continue
                full_qualities.append(v.quality)
                if strips is None or not isinstance(top, planes.Planes):
                    jobs.put((full.size, v.quality, WHOLE), top)
                    continue
                edges = strips[0]
                for k in reversed(range(len(edges) - 1)):
                    jobs.put((full.size, v.quality, k), top.rows(edges[k], edges[k + 1]))
            more = self.threads - 1 - len(helpers)  # the conversion's are encoding already
            helpers += [self._pool.submit(jobs.work, True) for _ in range(more)]
            for size, pixels in made:
                for v in wanted:
                    key = (size, v.quality, WHOLE)
                    if sizes[v.name] == size and key not in jobs.keys:
                        jobs.put(key, pixels)
        except BaseException:
            jobs.cancel()
            raise
        finally:
            jobs.close()
            try:
                jobs.work(False)
            finally:
                # Never leave a job reading the frame after it is handed back.
                wait(helpers)
                buffers.end_frame()
        for helper in helpers:
            helper.result()
        jobs.raise_error()
        if strips is not None and isinstance(top, planes.Planes):
            edges, interval = strips
            for q in full_qualities:
                parts = [jobs.results.pop((full.size, q, k)) for k in range(len(edges) - 1)]
                jobs.results[(full.size, q, WHOLE)] = self._join(parts, top, q, interval)
        out = []
        for v in wanted:
            w, h = sizes[v.name]
            out.append(Rendered(v.name, jobs.results[((w, h), v.quality, WHOLE)], w, h))
        return out

    def _strips(
        self, size: tuple[int, int], smaller: set[tuple[int, int]]
    ) -> tuple[list[int], int] | None:
        """Row edges and restart interval of the full-size encode's strips, or None for
        one piece: with one thread, and where the full size does not outweigh the rest
        of the frame's work (whose resizes and encodes then keep the other thread busy
        while one encodes it: strips gained no wall time at 2028x1520 and 1080p and
        cost 0.2-0.4 ms of CPU; at 12 MP they take 5 ms off the wall time)."""
        w, h = size
        rest = sum(a * b for a, b in smaller)
        if self.threads < 2 or w * h < max(SPLIT_MIN_PIXELS, STRIPS_OUTWEIGH * rest):
            return None
        edges, interval = jpegstrips.plan(w, h, STRIPS_PER_THREAD * self.threads)
        return (edges, interval) if len(edges) > 2 else None

    def _join(self, parts: list[bytes], pixels: Planes, quality: int, interval: int) -> bytes:
        """The strips as one JPEG; encoded again in one piece should they not join (an
        encoder that wrote other headers per strip: never seen, but never a broken file)."""
        try:
            return jpegstrips.join(parts, pixels.size[1], interval)
        except ValueError as e:
            if not self._join_failed:
                self._join_failed = True
                log.warning("render: could not join a JPEG's strips (%s); one piece instead", e)
            return encode_planes(pixels, quality)

    def _split_then_help(
        self, jobs: _Jobs, helpers: list[Future[None]]
    ) -> Callable[[int, int, Callable[[int, int], None]], None]:
        """A row splitter for `planes.from_rgb`: `convert(top, bottom)` over rows 0..n in
        one range per thread (the pool's are idle before the first encode is queued),
        returning when all are converted. The pool's threads then go on to encode
        (`jobs.work`) instead of going back to the pool to be woken again for it: a
        hand-off to a thread that sat idle costs 0.2-0.4 ms of CPU here. Their futures
        are added to `helpers`."""

        def split(n: int, width: int, convert: Callable[[int, int], None]) -> None:
            parts = min(self.threads, n)
            edges = [n * i // parts for i in range(parts + 1)]
            converted = [threading.Event() for _ in range(parts - 1)]
            failed: list[BaseException] = []

            def helper(top: int, bottom: int, done: threading.Event) -> None:
                try:
                    convert(top, bottom)
                except BaseException as e:
                    failed.append(e)
                    return
                finally:
                    done.set()
                jobs.work(True)

            ranges = itertools.pairwise(edges[1:])
            for (top, bottom), done in zip(ranges, converted, strict=True):
                helpers.append(self._pool.submit(helper, top, bottom, done))
            try:
                convert(edges[0], edges[1])
            finally:
                for done in converted:  # never return while a thread still reads the frame
                    done.wait()
            if failed:
                raise failed[0]

        return split

    def _render(
        self,
        full: Image.Image,
        lores: Image.Image | None,
        wanted: list[VariantConfig],
        sizes: dict[str, tuple[int, int]],
    ) -> list[Rendered]:
        jobs: dict[tuple[tuple[int, int], int], Future[bytes]] = {}
        try:
            # The full-size encode is the longest single job: it starts first, and a
            # variant whose box covers the frame shares its bytes (encoded once).
            for v in wanted:
                key = (sizes[v.name], v.quality)
                if key[0] == full.size and key not in jobs:
                    jobs[key] = self._pool.submit(encode, full, v.quality)
            made = [full] if lores is None else [full, lores]
            smaller = sorted(
                {sizes[v.name] for v in wanted} - {full.size},
                key=lambda s: s[0] * s[1],
                reverse=True,
            )
            for size in smaller:
                sources = made
                if lores is not None and lores.width >= size[0] and lores.height >= size[1]:
                    # The ISP's copy costs no CPU and was scaled once: start from it.
                    sources = [lores, *(m for m in made[2:] if m.width < lores.width)]
                image = pick_source(sources, size)
                if image.size != size:
                    image = _shrink(image, size, self._split)
                    made.append(image)
                for v in wanted:
                    key = (size, v.quality)
                    if sizes[v.name] == size and key not in jobs:
                        jobs[key] = self._pool.submit(encode, image, v.quality)
            out = []
            for v in wanted:
                w, h = sizes[v.name]
                out.append(Rendered(v.name, jobs[((w, h), v.quality)].result(), w, h))
            return out
        finally:
            # Never leave a job reading the frame after it is handed back to the camera.
            wait(jobs.values())

    def _split(
        self, mode: str, size: tuple[int, int], strip: Callable[[int, int], Image.Image]
    ) -> Image.Image:
        """`size` made by `strip(top, bottom)` in horizontal strips, one per pool thread.

        The calling thread makes the first strip and then any the pool has not started,
        so a busy pool (the full-size encode) costs no waiting (bench "strips" rows)."""
        w, h = size
        n = min(self.threads, max(1, w * h // (STRIP_MIN_PIXELS // 2)), h)
        if n < 2 or w * h < STRIP_MIN_PIXELS:
            return strip(0, h)
        edges = [h * i // n for i in range(n + 1)]
        futures = [
            self._pool.submit(strip, top, bottom) for top, bottom in itertools.pairwise(edges[1:])
        ]
        out = Image.new(mode, size)
        try:
            out.paste(strip(edges[0], edges[1]), (0, 0))
            for top, bottom, future in zip(edges[1:-1], edges[2:], futures, strict=True):
                part = strip(top, bottom) if future.cancel() else future.result()
                out.paste(part, (0, top))
        finally:
            wait(futures)
        return out


_Splitter = Callable[[str, tuple[int, int], Callable[[int, int], Image.Image]], Image.Image]


def _serial(
    mode: str, size: tuple[int, int], strip: Callable[[int, int], Image.Image]
) -> Image.Image:
    return strip(0, size[1])


def _shrink(image: Image.Image, size: tuple[int, int], split: _Splitter) -> Image.Image:
    """`image` reduced by an integer factor, then filtered to `size`.

    Each strip reduces only the rows it needs and filters them at once: no full-size
    reduced copy is kept (a quarter frame less memory at 12 MP, no paste)."""
    w, h = size
    k = max(1, int(min(image.width / w, image.height / h) / REDUCE_GAP))
    # The reduced image shows image.size / k exactly, a last partial block included:
    # the float box keeps the variant aligned where the size is not a multiple of k.
    bw, bh = image.width / k, image.height / k
    rows = -(-image.height // k)
    sy = bh / h
    # Rows the filter reads beyond a strip: Pillow clips the filter at an image edge,
    # so a strip must bring them along to come out as the whole would (no seams).
    margin = _SUPPORT * max(sy, 1.0) + 1

    def strip(top: int, bottom: int) -> Image.Image:
        y0, y1 = top * sy, bottom * sy
        a = max(0, int(y0 - margin))
        b = min(rows, math.ceil(y1 + margin))
        part = image
        if k > 1:
            part = image.reduce(k, (0, a * k, image.width, min(b * k, image.height)))
        else:
            a = 0
        return part.resize((w, bottom - top), FILTER, box=(0.0, y0 - a, bw, y1 - a))

    return split(image.mode, size, strip)


# What the log says OpenCV would save on the Pillow path (docs/performance.md).
OPENCV_SAVES = "by 2-3x"


_Key = tuple[tuple[int, int], int, int]  # (size, quality, strip or WHOLE): one encode
WHOLE = -1
if TYPE_CHECKING:
    from typing import TypeAlias

    _Pixels: TypeAlias = "Image.Image | np.ndarray | Planes"


class _Jobs:
    """Encodes waiting for a thread: the pool's helpers wait for more until `close`,
    the calling thread takes what is left after it has resized everything."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: deque[tuple[_Key, _Pixels]] = deque()
        self._open = True
        self._error: BaseException | None = None
        self.keys: set[_Key] = set()
        self.results: dict[_Key, bytes] = {}

    def put(self, key: _Key, pixels: _Pixels) -> None:
        """Queue `pixels` (a Pillow image, an array for `encode_array` or planes for
        `encode_planes`) for `key`."""
        with self._cv:
            self.keys.add(key)
            self._queue.append((key, pixels))
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._open = False
            self._cv.notify_all()

    def cancel(self) -> None:
        with self._cv:
            self._queue.clear()

    def work(self, wait_for_more: bool) -> None:
        while True:
            with self._cv:
                while wait_for_more and self._open and not self._queue:
                    self._cv.wait()
                if not self._queue or self._error is not None:
                    return
                key, pixels = self._queue.popleft()
            try:
                if isinstance(pixels, Image.Image):
                    data = encode(pixels, key[1])
                elif isinstance(pixels, tuple):
                    data = encode_planes(pixels, key[1])
                else:
                    data = encode_array(pixels, key[1])
            except BaseException as e:
                with self._cv:
                    self._error = self._error or e
                raise
            self.results[key] = data

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def _image(array: np.ndarray) -> Image.Image:
    """A Pillow image over an (h, w, 4) RGBX array without a copy, or a copy of an
    (h, w, 3) RGB one (Pillow keeps RGB at 4 bytes a pixel)."""
    h, w, channels = array.shape
    mode = "RGBX" if channels == 4 else "RGB"
    if not array.flags.c_contiguous:
        import numpy as np

        array = np.ascontiguousarray(array)
    return Image.frombuffer(mode, (w, h), array, "raw", mode, 0, 1)


def _check_array(array: Any, image: Image.Image, what: str) -> None:
    """`array` must be `image`'s pixels as the renderer reads them, or a RenderError."""
    channels = {"RGBX": 4, "RGB": 3}.get(image.mode)
    shape = getattr(array, "shape", None)
    dtype = str(getattr(array, "dtype", ""))
    strides = getattr(array, "strides", (0, 0, 0))
    if (
        channels is None
        or shape != (image.height, image.width, channels)
        or dtype != "uint8"
        or tuple(strides[1:]) != (channels, 1)
    ):
        raise RenderError(
            f"{what} ({shape}, {dtype}, strides {strides}) is not the {image.width}x"
            f"{image.height} {image.mode} image's pixels as (height, width, channels) uint8"
        )


def _array(image: Image.Image) -> np.ndarray:
    import numpy as np

    return np.asarray(image)


def _same_kind(lores: Image.Image, full: Image.Image) -> bool:
    return lores.mode in PIXEL_MODES and (lores.mode == "L") == (full.mode == "L")


def _usable_lores(a: tuple[int, int], full: Image.Image) -> bool:
    """A lores copy of size `a` is smaller than the frame and of its aspect ratio."""
    b = full.size
    return a[0] < b[0] and a[1] < b[1] and abs(a[0] * b[1] - a[1] * b[0]) <= 0.01 * a[1] * b[0]
