#!/usr/bin/env python3
"""The timelapse process's peak memory (RSS) for days of different lengths.

Archives N photo-like frames (1280x720 by default) into a temporary local target, runs
`python -m livecam timelapse --day ... --background` as the service would, and reports
the child's peak RSS from wait4(): it must not grow with the number of frames.

    .venv/bin/python scripts/timelapse_rss.py --frames 200 1440
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import ImageChops, ImageEnhance  # noqa: E402

from livecam.config import ArchiveConfig  # noqa: E402
from livecam.history.archive import Archive  # noqa: E402
from livecam.history.archive import Image as Frame  # noqa: E402
from livecam.history.worker import timelapse_command  # noqa: E402
from livecam.targets.base import Target  # noqa: E402
from livecam.targets.local import LocalTarget  # noqa: E402
from livecam.testimage import photo_like  # noqa: E402

DAY = dt.date(2026, 12, 5)


def archive_day(
    directory: Path, frames: int, size: tuple[int, int], every: int = 60, day: dt.date = DAY
) -> None:
    """`archive_day_on` a local target in `directory`."""
    archive_day_on(LocalTarget(directory), frames, size, every, day)


def archive_day_on(
    target: Target, frames: int, size: tuple[int, int], every: int = 60, day: dt.date = DAY
) -> None:
    """`frames` archived frames of `day`, one per `every` s from midnight UTC, each a
    shifted and re-lit copy of a photo-like frame (so the encoder has motion to code)."""
    archive = Archive(target, ArchiveConfig(enabled=True, variant="live.jpeg"))
    base = photo_like(*size)
    start = dt.datetime.combine(day, dt.time(0), dt.UTC)
    for i in range(frames):
        image = ImageChops.offset(base, i * 7 % size[0], 0)
        image = ImageEnhance.Brightness(image).enhance(0.4 + 0.6 * (i % 100) / 100)
        data = io.BytesIO()
        image.save(data, "JPEG", quality=85)
        slot = archive.slot(start + dt.timedelta(seconds=i * every))
        archive.add(slot, Frame(data.getvalue(), *size))


def write_config(directory: Path, fps: int = 25, extra: str = "") -> Path:
    """A config for a local target in `directory`, its [archive] section last."""
    path = directory.parent / f"{directory.name}.toml"
    path.write_text(
        f'[target]\nkind = "local"\npath = "{directory}"\n'
        f"[archive]\nenabled = true\nfps = {fps}\n{extra}"
    )
    return path


def timelapse_rss(config_path: Path, day: dt.date = DAY) -> tuple[int, float, list[int]]:
    """Run the timelapse as the service does: its peak RSS in bytes (wait4), its
    seconds, and its RSS sampled every second (/proc, Linux)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*timelapse_command(str(config_path), day)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    samples = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = [line.split()[1] for line in f if line.startswith("VmRSS:")]
            samples += [int(kib) * 1024 for kib in rss]
        except OSError:
            pass
        time.sleep(1.0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the timelapse failed (exit {proc.returncode})")
    return usage.ru_maxrss * 1024, time.monotonic() - t0, samples  # Linux counts KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[200, 1440])
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    print(
        f"{'frames':>7} {'size':>10} {'peak RSS':>10} {'encode':>8} {'MP4':>8} {'B/px':>6}"
        f"  RSS over the last 90% of the run"
    )
    for n in args.frames:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp) / "target"
            archive_day(directory, n, (size[0], size[1]))
            rss, seconds, samples = timelapse_rss(write_config(directory))
            late = samples[len(samples) // 10 :] or [0]
            mp4 = (directory / f"archive/{DAY:%Y/%m/%d}/timelapse.mp4").stat().st_size
            per_pixel = mp4 / (n * size[0] * size[1])  # bytes per pixel per frame
            print(
                f"{n:>7} {args.size:>10} {rss / 2**20:>7.0f} MiB {seconds:>6.1f} s "
                f"{mp4 / 1e6:>5.1f} MB {per_pixel:>6.3f}"
                f"  {min(late) / 2**20:.0f}-{max(late) / 2**20:.0f} MiB"
            )


if __name__ == "__main__":
    main()
