"""An archive in the published format (issue #15), written as plain files.

The page's history tests (and scripts/screenshots.py) need archive days without
waiting for days of wall clock: this writes `archive/days.json`, each day's
`index.json`, its frames and its strip exactly as the publisher's contract says, each
frame a solid colour that names it, so a test can tell from pixels which frame is on
screen.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image

Colour = tuple[int, int, int]
STRIP_WIDTH = 1440  # one column per minute of the day
STRIP_HEIGHT = 120


def solid(day_index: int, frame_index: int, minute: int) -> Colour:
    """Neighbouring frames and days differ by far more than JPEG's error."""
    i = frame_index
    return (40 + 90 * (day_index % 3), 30 + (i * 47) % 200, 30 + (i * 101) % 200)


@dataclass(frozen=True)
class Frame:
    day: str  # YYYY-MM-DD in the archive's time zone
    hhmm: str  # HH:MM in the archive's time zone
    t: str  # ISO 8601 UTC
    key: str
    colour: Colour


def write_json(path: Path, doc: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc))
    tmp.chmod(0o644)
    os.replace(tmp, path)


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    path.write_bytes(data)
    path.chmod(0o644)


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def write_archive(
    root: Path,
    days: list[str],
    minutes: list[int],
    timezone: str = "UTC",
    size: tuple[int, int] = (160, 90),
    paint: Callable[[int, int, int], Colour] = solid,
    timelapse_days: tuple[str, ...] = (),
    picture: Callable[[int, tuple[int, int]], Image.Image] | None = None,
) -> dict[str, list[Frame]]:
    """Write the archive of `days` (oldest first) under `root`/archive, a frame at each
    of `minutes` (of the day, in `timezone`); returns each day's frames. `picture`
    (minute, size) draws a frame instead of the solid colour (for screenshots)."""
    zone = ZoneInfo(timezone)
    width, height = size
    out: dict[str, list[Frame]] = {}
    for day_index, day in enumerate(days):
        y, m, d = (int(p) for p in day.split("-"))
        folder = f"archive/{y:04d}/{m:02d}/{d:02d}"
        strip = Image.new("RGB", (STRIP_WIDTH, STRIP_HEIGHT))  # black where no frame
        frames: list[Frame] = []
        entries = []
        for i, minute in enumerate(minutes):
            local = datetime(y, m, d, tzinfo=zone) + timedelta(minutes=minute)
            colour = paint(day_index, i, minute)
            key = f"{folder}/{local:%H%M%S}.jpeg"
            image = picture(minute, size) if picture else Image.new("RGB", size, colour)
            data = jpeg(image)
            write_file(root / key, data)
            column = image.resize((1, STRIP_HEIGHT))
            strip.paste(column, (minute, 0))
            t = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            frames.append(Frame(day, f"{local:%H:%M}", t, key, colour))
            entries.append({"t": t, "key": key, "width": width, "height": height,
                            "bytes": len(data)})  # fmt: skip
        write_file(root / folder / "strip.jpeg", jpeg(strip))
        timelapse = f"{folder}/timelapse.mp4" if day in timelapse_days else None
        write_json(
            root / folder / "index.json",
            {
                "day": day,
                "frames": entries,
                "timelapse": timelapse,
                "poster": frames[len(frames) // 2].key if timelapse else None,
                "strip": f"{folder}/strip.jpeg",
            },
        )
        out[day] = frames
    write_json(root / "archive" / "days.json", {"days": days})
    return out


def add_to_manifest(root: Path, timezone: str = "UTC", every: int = 60) -> dict[str, object]:
    """Name the archive in `root`/live.json as the publisher does when it is enabled."""
    doc = json.loads((root / "live.json").read_text())
    doc["archive"] = {"days": "archive/days.json", "timezone": timezone, "every": every}
    write_json(root / "live.json", doc)
    return doc
