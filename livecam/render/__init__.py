"""Turn one frame into the configured JPEG variants.

Each variant is a bounding box (aspect kept, never upscaled). Each distinct size is
made once, from the camera's lores copy when that covers it, else from the frame, and
each distinct (size, quality) encoded once. The full-size encode, the longest job,
starts first on a pool thread while the calling thread resizes; both encoders release
the GIL. With numpy and simplejpeg (fast.py) the pixels are YUV420 planes throughout;
without them Pillow does it all on images (pillow.py). docs/performance.md has the cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from PIL import Image

from livecam.camera.base import PIXEL_MODES, Frame, Planes
from livecam.camera.yuv import checked_planes, to_image
from livecam.config import VariantConfig
from livecam.errors import RenderError
from livecam.render import pillow
from livecam.render.overlay import Overlay, Stamp
from livecam.rendered import Rendered

try:
    from livecam.render import fast
except ImportError as e:  # no numpy or no simplejpeg: Pillow does it all
    fast = None  # type: ignore[assignment]
    NO_FAST = str(e)
else:  # Raspberry Pi OS before picamera2 0.3.26 had a simplejpeg without planes
    import simplejpeg

    NO_FAST = "" if hasattr(simplejpeg, "encode_jpeg_yuv_planes") else "simplejpeg < 1.8"

__all__ = ["Rendered", "Renderer"]

log = logging.getLogger(__name__)

Size = tuple[int, int]


class Renderer:
    """Renders frames into variants; holds a small thread pool for the whole run.

    `fast=False` forces the Pillow path (the tests and the bench compare the two).
    `overlay` stamps its caption on each variant that does not opt out, after resizing."""

    def __init__(
        self,
        variants: Sequence[VariantConfig],
        threads: int = 2,
        fast: bool = True,
        overlay: Overlay | None = None,
    ) -> None:
        self.variants = tuple(variants)
        self.threads = max(1, threads)
        self.fast = fast and not NO_FAST
        self.path = "planes" if self.fast else "pillow"
        self.overlay = overlay
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="render")
        if self.fast:
            log.info("render: YUV420 planes, OpenCV resizes, simplejpeg encodes")
        elif fast:
            log.info("render: Pillow only (%s); `pip install 'livecam[fast]'`", NO_FAST)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def render(
        self, frame: Frame, names: Iterable[str] | None = None, *, seq: int = 0
    ) -> list[Rendered]:
        """Encode the variants named in `names` (all when None), in configured order;
        `seq` is the frame's number, for the overlay."""
        wanted_names = None if names is None else set(names)
        wanted = [v for v in self.variants if wanted_names is None or v.name in wanted_names]
        if not wanted:
            return []
        full = frame.size
        if frame.image is not None and frame.image.mode not in PIXEL_MODES:
            raise RenderError(f"frame has pixel mode {frame.image.mode!r}, expected RGB or YUV")
        if full[0] < 1 or full[1] < 1:
            raise RenderError(f"frame has no pixels ({full[0]}x{full[1]})")
        try:
            planes, lores = (
                None if p is None else checked_planes(p, f"frame.{name}")
                for p, name in ((frame.planes, "planes"), (frame.lores, "lores"))
            )
        except ValueError as e:
            raise RenderError(str(e)) from e
        if lores is not None and not _usable_lores(lores, full):
            lores = None
        caption = ""
        if self.overlay is not None and any(v.overlay for v in wanted):
            caption = self.overlay.text(frame.captured_at, seq, frame.metadata)
        try:
            if self.fast:
                top = fast.planes_of(_image(frame)) if planes is None else fast.padded(*planes)
                return self._render(top, lores, wanted, full, fast, caption)
            small = None if lores is None else _to_image(lores)
            return self._render(_image(frame), small, wanted, full, pillow, caption)
        except (OSError, ValueError, MemoryError) as e:
            raise RenderError(f"could not encode frame: {e}") from e

    def _render(
        self,
        top: Any,
        lores: Any,
        wanted: list[VariantConfig],
        full: Size,
        path: Any,
        caption: str,
    ) -> list[Rendered]:
        sizes = {v.name: v.size_for(*full) for v in wanted}
        jobs: dict[Size, list[Future[dict[Key, bytes]]]] = {}
        # A caption is composited into shared pixels in place (the frame's, or its lores
        # copy, as they are): only once nothing else still has to resize from them.
        readers = {"top": 0, "lores": 0}
        waiting: dict[str, list[Callable[[], None]]] = {"top": [], "lores": []}

        def submit(size: Size, pixels: Any, shared: str) -> None:
            jobs[size] = []
            kinds = {
                (v.quality, bool(caption) and v.overlay) for v in wanted if sizes[v.name] == size
            }
            clean = [q for q, m in sorted(kinds) if not m]
            marked = [q for q, m in sorted(kinds) if m]
            st = self.overlay.stamp(caption, size) if marked and self.overlay else None
            if st is None:  # nothing to draw: the plain encodes, in parallel
                for q in sorted({q for q, _ in kinds}):
                    jobs[size].append(
                        self._pool.submit(_encode, path, pixels, [q], [], None, False)
                    )
                return

            def go() -> None:
                jobs[size].append(
                    self._pool.submit(_encode, path, pixels, clean, marked, st, bool(shared))
                )

            if shared and readers[shared]:
                waiting[shared].append(go)
            else:
                go()

        def done_reading(shared: str) -> None:
            readers[shared] -= 1
            if not readers[shared]:
                for go in waiting[shared]:
                    go()

        try:
            smaller = sorted(set(sizes.values()) - {full}, key=lambda s: -s[0] * s[1])
            # The ISP's copy costs no CPU and was scaled once: start from it.
            sources = {
                s: "lores" if lores is not None and _covers(_size(lores), s) else "top"
                for s in smaller
            }
            for s in smaller:
                if _size(lores if sources[s] == "lores" else top) != s:
                    readers[sources[s]] += 1
            if full in sizes.values():
                submit(full, top, "top")
            for size in smaller:
                source = lores if sources[size] == "lores" else top
                if _size(source) == size:
                    submit(size, source, sources[size])
                else:
                    pixels = path.shrink(source, size)
                    done_reading(sources[size])
                    submit(size, pixels, "")
            out = []
            results: dict[Size, dict[Key, bytes]] = {}
            for v in wanted:
                size = sizes[v.name]
                if size not in results:
                    results[size] = {k: b for f in jobs[size] for k, b in f.result().items()}
                key = (v.quality, v.overlay and (v.quality, True) in results[size])
                out.append(Rendered(v.name, results[size][key], *size))
            return out
        finally:
            # Never leave a job reading the frame after it is handed back to the camera.
            wait([f for fs in jobs.values() for f in fs])


Key = tuple[int, bool]  # (quality, with the caption)


def _encode(
    path: Any,
    pixels: Any,
    clean: list[int],
    marked: list[int],
    st: Stamp | None,
    shared: bool,
) -> dict[Key, bytes]:
    """One size's encodes: without the caption, then with it (drawn once for all)."""
    out = {(q, False): path.encode(pixels, q) for q in clean}
    if st is not None and marked:
        stamped, undo = path.stamp(pixels, st, shared)
        try:
            out.update({(q, True): path.encode(stamped, q) for q in marked})
        finally:
            undo()
    return out


def _to_image(planes: Planes) -> Image.Image:
    return to_image(planes)


def _image(frame: Frame) -> Image.Image:
    if frame.image is not None:
        return frame.image
    assert frame.planes is not None
    return _to_image(frame.planes)


def _size(pixels: Image.Image | Planes) -> Size:
    return pixels.size


def _covers(a: Size, b: Size) -> bool:
    return a[0] >= b[0] and a[1] >= b[1]


def _usable_lores(lores: Planes, full: Size) -> bool:
    """A lores copy is smaller than the frame and of its aspect ratio."""
    (aw, ah), (bw, bh) = lores.size, full
    return aw < bw and ah < bh and abs(aw * bh - ah * bw) <= 0.01 * ah * bw
