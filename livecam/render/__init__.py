"""Turn one frame into the configured JPEG variants.

Each variant is a bounding box (aspect kept, never upscaled). Each distinct size is
made once, from the camera's lores copy when that covers it, else from the frame, and
each distinct (size, quality) encoded once, all in the calling thread: encoding on a
second thread would save wall time that no viewer sees, for more CPU (two encoders
contend for the caches). With numpy and simplejpeg (fast.py) the pixels are YUV420
planes throughout; without them Pillow does it all on images (pillow.py).
docs/performance.md has the cost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from PIL import Image

from livecam.camera.base import PIXEL_MODES, Frame, Planes
from livecam.camera.yuv import checked_planes, to_image
from livecam.config import VariantConfig
from livecam.errors import RenderError
from livecam.render import pillow
from livecam.render.overlay import Overlay
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
    """Renders frames into variants, in the calling thread.

    `fast=False` forces the Pillow path (the tests and the bench compare the two).
    `overlay` stamps its caption on each variant that does not opt out, after resizing."""

    def __init__(
        self,
        variants: Sequence[VariantConfig],
        fast: bool = True,
        overlay: Overlay | None = None,
    ) -> None:
        self.variants = tuple(variants)
        self.fast = fast and not NO_FAST
        self.path = "planes" if self.fast else "pillow"
        self.overlay = overlay
        if self.fast:
            log.info("render: YUV420 planes, OpenCV resizes, simplejpeg encodes")
        elif fast:
            log.info("render: Pillow only (%s); `pip install 'livecam[fast]'`", NO_FAST)

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
        """Each distinct size made once, and each of its (quality, caption) encoded once."""
        sizes = {v.name: v.size_for(*full) for v in wanted}
        encoded: dict[tuple[Size, int, bool], bytes] = {}
        for size in dict.fromkeys(sizes.values()):
            # The ISP's copy costs no CPU and was scaled once: start from it.
            source = lores if lores is not None and _covers(_size(lores), size) else top
            shared = _size(source) == size  # the camera's own pixels: given back as lent
            pixels = source if shared else path.shrink(source, size)
            kinds = {(v.quality, v.overlay) for v in wanted if sizes[v.name] == size}
            st = None
            if caption and self.overlay and any(marked for _, marked in kinds):
                st = self.overlay.stamp(caption, size)  # None: no room at this size
            for q in sorted({q for q, marked in kinds if not marked or st is None}):
                encoded[size, q, False] = path.encode(pixels, q)
            if st is not None:
                stamped, undo = path.stamp(pixels, st, shared)
                try:
                    for q in sorted({q for q, marked in kinds if marked}):
                        encoded[size, q, True] = path.encode(stamped, q)
                finally:
                    undo()
        out = []
        for v in wanted:
            size = sizes[v.name]
            data = encoded.get((size, v.quality, v.overlay)) or encoded[size, v.quality, False]
            out.append(Rendered(v.name, data, *size))
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
