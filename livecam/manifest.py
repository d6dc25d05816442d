"""`live.json`: the small manifest the page polls, written after every image it names.

`Manifest` keeps what is published: the last `seq`, each variant's entry (the frame its
image shows) and which variants are due on the next frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from livecam import frames
from livecam.config import SiteConfig, VariantConfig

NAME = "live.json"


@dataclass(frozen=True)
class ImageEntry:
    """What the manifest says of one published image; `seq` and `captured_at` are those
    of the frame it shows."""

    width: int
    height: int
    bytes: int
    seq: int
    captured_at: datetime | None = None
    key: str = ""  # its immutable per-frame copy (publish.frame_keys), "" when none


class Image(Protocol):
    """One rendered image as the manifest needs it (livecam.render.Rendered)."""

    @property
    def name(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def data(self) -> bytes | memoryview: ...


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
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The manifest as compact UTF-8 JSON bytes; `extra`: more top-level keys (the
    archive's)."""
    doc: dict[str, Any] = {
        "seq": seq,
        "captured_at": iso_utc(captured_at),
        "interval": interval,
        "images": {name: _entry(e) for name, e in images.items()},
    }
    if site is not None:
        doc["title"] = site.title
        doc["stale_after"] = site.stale_seconds(interval)
        for key in ("caption", "location", "link"):
            if value := getattr(site, key):
                doc[key] = value
    doc.update(extra or {})
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _entry(e: ImageEntry) -> dict[str, Any]:
    entry: dict[str, Any] = {"width": e.width, "height": e.height, "bytes": e.bytes, "seq": e.seq}
    if e.captured_at is not None:
        entry["captured_at"] = iso_utc(e.captured_at)
    if e.key:
        entry["key"] = e.key
    return entry


def read_seq(data: bytes | None) -> int:
    """The `seq` of a previously published manifest, or 0 when there is none usable."""
    if not data:
        return 0
    try:
        seq = json.loads(data).get("seq")
    except (ValueError, AttributeError):
        return 0
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else 0


@dataclass(frozen=True)
class Update:
    """A frame's manifest, ready to publish after its images; `Manifest.commit` it once
    it landed."""

    seq: int
    entries: dict[str, ImageEntry]
    body: bytes


class Manifest:
    """The published state: `seq`, one entry per variant on the target, what is due."""

    def __init__(
        self,
        variants: Sequence[VariantConfig],
        interval: float,
        site: SiteConfig | None = None,
        extra: Mapping[str, Any] | None = None,
        *,
        frame_keys: bool = False,
    ) -> None:
        self.variants = list(variants)
        self.interval = interval
        self.site = site
        self.extra = dict(extra or {})
        self.frame_keys = frame_keys
        self.run = frames.run_id()
        self.seq = 0
        self.entries: dict[str, ImageEntry] = {}
        self._frames = 0  # frames published by this process: the clock of `every`

    def resume(self, published: bytes | None) -> None:
        """Continue after the manifest already published (None: a fresh start); `seq`
        never goes back."""
        self.seq = max(self.seq, read_seq(published))

    def due(self) -> list[str]:
        """The variants to render for the next frame: those on their `every` turn and
        those not on the target."""
        n = self._frames
        return [v.name for v in self.variants if n % v.every == 0 or v.name not in self.entries]

    def kept(self) -> list[str]:
        """The images the next manifest names without publishing them again."""
        due = self.due()
        return [name for name in self.entries if name not in due]

    def forget(self, names: Iterable[str]) -> None:
        """These images are gone from the target: they are due on the next frame."""
        for name in names:
            self.entries.pop(name, None)

    def update(self, images: Iterable[Image], captured_at: datetime) -> Update:
        """The manifest naming `images` (captured at `captured_at`) and the kept ones."""
        seq = self.seq + 1
        entries = dict(self.entries)
        for r in images:
            k = frames.key(seq, self.run, r.name) if self.frame_keys else ""
            entries[r.name] = ImageEntry(r.width, r.height, len(r.data), seq, captured_at, k)
        ordered = {v.name: entries[v.name] for v in self.variants if v.name in entries}
        body = build(seq, captured_at, self.interval, ordered, self.site, self.extra)
        return Update(seq, ordered, body)

    def commit(self, update: Update) -> None:
        """The update's manifest landed: it is what viewers see now."""
        self.seq = update.seq
        self.entries = update.entries
        self._frames += 1
