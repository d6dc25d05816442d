"""`live.json`: the small manifest the page polls, written after every image it names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from livecam.config import SiteConfig

NAME = "live.json"


@dataclass(frozen=True)
class ImageEntry:
    """What the manifest says of one published image; `seq` is the frame it shows."""

    width: int
    height: int
    bytes: int
    seq: int


def iso_utc(when: datetime) -> str:
    """`2026-11-21T12:00:00.123Z`: ISO 8601, UTC, milliseconds."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def build(
    seq: int,
    captured_at: datetime,
    interval: float,
    images: Mapping[str, ImageEntry],
    site: SiteConfig | None = None,
) -> bytes:
    """The manifest as compact UTF-8 JSON bytes."""
    doc: dict[str, Any] = {
        "seq": seq,
        "captured_at": iso_utc(captured_at),
        "interval": interval,
        "images": {
            name: {"width": e.width, "height": e.height, "bytes": e.bytes, "seq": e.seq}
            for name, e in images.items()
        },
    }
    if site is not None:
        doc["title"] = site.title
        doc["stale_after"] = site.stale_seconds(interval)
        for key in ("caption", "location", "link"):
            if value := getattr(site, key):
                doc[key] = value
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_seq(data: bytes | None) -> int:
    """The `seq` of a previously published manifest, or 0 when there is none usable."""
    if not data:
        return 0
    try:
        seq = json.loads(data).get("seq")
    except (ValueError, AttributeError):
        return 0
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else 0
