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

    `fast=False` forces the Pillow path (the tests and the bench compare the two)."""

    def __init__(
        self, variants: Sequence[VariantConfig], threads: int = 2, fast: bool = True
    ) -> None:
        self.variants = tuple(variants)
        self.threads = max(1, threads)
        self.fast = fast and not NO_FAST
        self.path = "planes" if self.fast else "pillow"
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="render")
        if self.fast:
            log.info("render: YUV420 planes, OpenCV resizes, simplejpeg encodes")
        elif fast:
            log.info("render: Pillow only (%s); `pip install 'livecam[fast]'`", NO_FAST)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def render(self, frame: Frame, names: Iterable[str] | None = None) -> list[Rendered]:
        """Encode the variants named in `names` (all when None), in configured order."""
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
        try:
            if self.fast:
                top = fast.planes_of(_image(frame)) if planes is None else fast.padded(*planes)
                return self._render(top, lores, wanted, full, fast.shrink, fast.encode)
            small = None if lores is None else _to_image(lores)
            return self._render(_image(frame), small, wanted, full, pillow.shrink, pillow.encode)
        except (OSError, ValueError, MemoryError) as e:
            raise RenderError(f"could not encode frame: {e}") from e

    def _render(
        self,
        top: Any,
        lores: Any,
        wanted: list[VariantConfig],
        full: Size,
        shrink: Callable[[Any, Size], Any],
        encode: Callable[[Any, int], bytes],
    ) -> list[Rendered]:
        sizes = {v.name: v.size_for(*full) for v in wanted}
        jobs: dict[tuple[Size, int], Future[bytes]] = {}

        def submit(size: Size, pixels: Any) -> None:
            for v in wanted:
                key = (size, v.quality)
                if sizes[v.name] == size and key not in jobs:
                    jobs[key] = self._pool.submit(encode, pixels, v.quality)

        try:
            submit(full, top)
            for size in sorted(set(sizes.values()) - {full}, key=lambda s: -s[0] * s[1]):
                # The ISP's copy costs no CPU and was scaled once: start from it.
                from_lores = lores is not None and _covers(_size(lores), size)
                source = lores if from_lores else top
                submit(size, source if _size(source) == size else shrink(source, size))
            out = []
            for v in wanted:
                w, h = sizes[v.name]
                out.append(Rendered(v.name, jobs[((w, h), v.quality)].result(), w, h))
            return out
        finally:
            # Never leave a job reading the frame after it is handed back to the camera.
            wait(jobs.values())


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
