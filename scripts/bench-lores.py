#!/usr/bin/env python3
"""CPU cost of the small variants: downscaled from the full frame on the CPU, or taken
from picamera2's lores stream (scaled by the ISP, YUV420, converted to RGB here).

    .venv/bin/python scripts/bench-lores.py [--size 2028x1520] [--repeat 30]

Runs anywhere: the frames are the test pattern laid out as the camera delivers them
(XBGR8888 main stream with padded rows, YUV420 lores). CPU time counts every thread
(the renderer uses two). On a Pi, scripts/pi-smoke.sh measures the same with the
real camera.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from livecam.camera.base import Frame
from livecam.camera.picam import lores_size
from livecam.camera.testpattern import scene
from livecam.camera.yuv import yuv420_to_rgb
from livecam.config import DEFAULT_VARIANTS
from livecam.render import Renderer


def padded(rows: bytes, width: int, stride: int) -> bytes:
    pad = b"\x5a" * (stride - width)
    return b"".join(rows[i : i + width] + pad for i in range(0, len(rows), width))


def camera_buffers(size: tuple[int, int], lores: tuple[int, int]) -> tuple[Image.Image, bytes, int]:
    """The main stream as the camera lends it (RGBX mapped over a padded buffer) and
    the lores stream's YUV420 bytes and stride."""
    w, h = size
    picture = scene(w, h)
    stride = -(-w * 4 // 64) * 64
    main_buf = bytearray(padded(picture.convert("RGBX").tobytes(), w * 4, stride))
    main = Image.frombuffer("RGBX", size, main_buf, "raw", "RGBX", stride, 1)
    lw = lores[0]
    small = picture.resize(lores, Image.Resampling.BOX).convert("YCbCr")
    y, u, v = small.split()
    lstride = -(-lw // 64) * 64
    yuv = padded(y.tobytes(), lw, lstride)
    for plane in (u.reduce(2), v.reduce(2)):
        yuv += padded(plane.tobytes(), lw // 2, lstride // 2)
    return main, yuv, lstride


def cpu_ms(work: Callable[[], object], repeat: int) -> float:
    work()  # warm up: thread pool, caches
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        work()
        times.append(time.process_time() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="2028x1520", help="main stream WxH (default 2028x1520)")
    parser.add_argument("--repeat", type=int, default=30, help="runs per case (median)")
    args = parser.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    small = [v for v in DEFAULT_VARIANTS if v.width is not None]
    lores = lores_size((w, h), small)
    if lores is None:
        sys.exit(f"no variant of {[v.name for v in small]} is much smaller than {w}x{h}")
    main_image, yuv, lstride = camera_buffers((w, h), lores)
    now = datetime.now(UTC)
    renderer = Renderer(small)
    try:
        full = cpu_ms(lambda: renderer.render(Frame(main_image, now)), args.repeat)
        convert = cpu_ms(lambda: yuv420_to_rgb(yuv, lores, lstride), args.repeat)

        def from_lores() -> object:
            frame = Frame(main_image, now, lores=yuv420_to_rgb(yuv, lores, lstride))
            return renderer.render(frame)

        isp = cpu_ms(from_lores, args.repeat)
    finally:
        renderer.close()
    names = ", ".join(v.name for v in small)
    print(
        f"small variants ({names}) of a {w}x{h} frame, CPU ms per frame, median of {args.repeat}:"
    )
    lores_text = f"from the {lores[0]}x{lores[1]} lores frame (ISP scales):"
    print(f"  {'from the full frame (CPU downscales):':<46}{full:7.1f}")
    print(f"  {lores_text:<46}{isp:7.1f}  (of which YUV420 to RGB: {convert:.1f})")
    print(f"  saved: {full - isp:.1f} ms ({(1 - isp / full) * 100:.0f} %)")


if __name__ == "__main__":
    main()
