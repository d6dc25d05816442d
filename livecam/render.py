"""Turn one frame into the configured JPEG variants.

Each variant is a bounding box (aspect kept, never upscaled). The full-size encode
runs on a second thread while the smaller sizes are made (Pillow releases the GIL in
resize, reduce and encode).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from livecam.camera.base import Frame
from livecam.config import VariantConfig
from livecam.errors import RenderError

log = logging.getLogger(__name__)


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


def downscale(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` shrunk to `size`. `reducing_gap=3.0` lets Pillow first `reduce` by an
    integer factor (a cheap box average, with the exact sub-pixel box kept) and then
    filter: as good as plain BILINEAR against a LANCZOS reference, much faster."""
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


class Renderer:
    """Renders frames into variants; holds a small thread pool for the whole run."""

    def __init__(self, variants: Sequence[VariantConfig], threads: int = 2) -> None:
        self.variants = tuple(variants)
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="render")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def render(self, frame: Frame, names: Iterable[str] | None = None) -> list[Rendered]:
        """Encode the variants named in `names` (all when None), in configured order."""
        wanted = [v for v in self.variants if names is None or v.name in set(names)]
        if not wanted:
            return []
        full = frame.image
        if full.mode not in ("RGB", "RGBX", "L"):
            raise RenderError(f"frame has pixel mode {full.mode!r}, expected RGB, RGBX or L")
        if full.width < 1 or full.height < 1:
            raise RenderError(f"frame has no pixels ({full.width}x{full.height})")
        sizes = {v.name: v.size_for(full.width, full.height) for v in wanted}
        try:
            return self._render(full, frame.lores, wanted, sizes)
        except (OSError, ValueError, MemoryError) as e:
            raise RenderError(f"could not encode frame: {e}") from e

    def _render(
        self,
        full: Image.Image,
        lores: Image.Image | None,
        wanted: list[VariantConfig],
        sizes: dict[str, tuple[int, int]],
    ) -> list[Rendered]:
        jobs: dict[tuple[tuple[int, int], int], Future[bytes] | bytes] = {}

        # The full-size encodes are the single biggest job: start them first, on the pool.
        for v in wanted:
            key = (sizes[v.name], v.quality)
            if sizes[v.name] == full.size and key not in jobs:
                jobs[key] = self._pool.submit(encode, full, v.quality)

        # Each smaller size from the full frame (or the camera's own lores copy when
        # that covers it): resampling a resampled image compounds the blur.
        smaller = sorted(
            {sizes[v.name] for v in wanted if sizes[v.name] != full.size},
            key=lambda s: s[0] * s[1],
            reverse=True,
        )
        use_lores = lores is not None and _same_aspect(lores.size, full.size)
        for size in smaller:
            base = full
            if (
                use_lores
                and lores is not None
                and lores.width >= size[0]
                and lores.height >= size[1]
            ):
                base = lores
            image = downscale(base, size)
            for v in wanted:
                key = (size, v.quality)
                if sizes[v.name] == size and key not in jobs:
                    jobs[key] = encode(image, v.quality)

        out = []
        for v in wanted:
            job = jobs[(sizes[v.name], v.quality)]
            data = job.result() if isinstance(job, Future) else job
            w, h = sizes[v.name]
            out.append(Rendered(v.name, data, w, h))
        return out


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] * b[1] - a[1] * b[0]) <= 0.01 * a[1] * b[0]
