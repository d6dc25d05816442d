"""The archive: one frame every `archive.every` seconds on the wall clock, kept under
`archive/` beside the live objects, with indexes the page reads without listing.

Keys (under the target's prefix), days and times in the archive's time zone:

    archive/days.json                   {"days": ["2026-12-07", ...]}, oldest first
    archive/YYYY/MM/DD/index.json       the day: its frames, strip, timelapse, poster
    archive/YYYY/MM/DD/HHMMSS.jpeg      one archived frame (immutable)
    archive/YYYY/MM/DD/strip.jpeg       the day strip (rewritten as the day goes on)
    archive/YYYY/MM/DD/timelapse.mp4    the day's timelapse, made after it ended
    archive/YYYY/MM/DD/poster.jpeg      the timelapse's poster frame

Order is what keeps readers safe: an image lands before the index that names it, a
day's index before days.json names the day; each index is replaced whole (a temp file
and os.replace, or one PUT). `Archive` does the writing and is driven by an injectable
clock; `livecam.history.worker` runs it beside the publishing loop.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from livecam.config import ArchiveConfig
from livecam.errors import PublishError
from livecam.history.strip import Strip
from livecam.targets.base import Target

log = logging.getLogger(__name__)

PREFIX = "archive/"
DAYS = PREFIX + "days.json"
# Archived images and timelapses never change under their key: cached for a year.
IMMUTABLE = "public, max-age=31536000, immutable"
JSON = "application/json"
JPEG = "image/jpeg"
MP4 = "video/mp4"
MAX_INDEX_BYTES = 8 << 20  # far above a day's index at the shortest every


def day_folder(day: dt.date) -> str:
    return f"{PREFIX}{day:%Y/%m/%d}/"


def index_key(day: dt.date) -> str:
    return day_folder(day) + "index.json"


def strip_key(day: dt.date) -> str:
    return day_folder(day) + "strip.jpeg"


def parse_day(text: str) -> dt.date | None:
    """A "YYYY-MM-DD" day, or None."""
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def folder_day(folder: str) -> dt.date | None:
    """The day of a day folder "archive/YYYY/MM/DD/", or None for anything else."""
    parts = folder.strip("/").split("/")
    if len(parts) != 4 or parts[0] != PREFIX.strip("/"):
        return None
    if not all(p.isdigit() for p in parts[1:]):
        return None
    return parse_day("-".join(parts[1:]))


def iso_z(when: dt.datetime) -> str:
    """`2026-12-07T14:05:00Z`: the UTC time of a slot, to the second."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class DayIndex:
    """`archive/YYYY/MM/DD/index.json`."""

    day: dt.date
    frames: list[dict[str, Any]] = field(default_factory=list)
    timelapse: str | None = None
    strip: str | None = None
    poster: str | None = None
    # Each frame's JSON, made once: the index is written again with every frame.
    _encoded: list[str] = field(default_factory=list, repr=False)

    @property
    def key(self) -> str:
        return index_key(self.day)

    def frame_keys(self) -> set[str]:
        return {str(f.get("key")) for f in self.frames}

    def append(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def pop(self) -> None:
        self.frames.pop()

    def to_json(self) -> bytes:
        encoded = self._encoded
        del encoded[len(self.frames) :]
        encoded.extend(_compact(f) for f in self.frames[len(encoded) :])
        head = {"day": self.day.isoformat()}
        tail = {"timelapse": self.timelapse, "strip": self.strip, "poster": self.poster}
        return (
            f'{_compact(head)[:-1]},"frames":[{",".join(encoded)}],{_compact(tail)[1:]}'
        ).encode()

    @classmethod
    def parse(cls, day: dt.date, data: bytes | None) -> DayIndex | None:
        """The published index of `day`; None if there is none or it is not one."""
        if data is None:
            return None
        try:
            doc = json.loads(data)
            frames = [f for f in doc["frames"] if isinstance(f, dict) and "key" in f]
            out = cls(day, frames)
            for name in ("timelapse", "strip", "poster"):
                value = doc.get(name)
                setattr(out, name, value if isinstance(value, str) else None)
        except (ValueError, KeyError, TypeError):
            log.warning("%s is not a day index; starting the day afresh", index_key(day))
            return None
        return out


LIFECYCLE_ID = "livecam-archive"


def lifecycle_rule(target_prefix: str, keep_days: int) -> dict[str, Any]:
    """An S3 lifecycle rule that expires archived objects a day after livecam's own
    retention would delete them: a backstop for when livecam is not running."""
    return {
        "ID": LIFECYCLE_ID,
        "Filter": {"Prefix": target_prefix + PREFIX},
        "Status": "Enabled",
        "Expiration": {"Days": keep_days + 1},
    }


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def parse_days(data: bytes | None) -> list[str]:
    """The days of a published days.json (empty when there is none or it is not one)."""
    if data is None:
        return []
    try:
        days = json.loads(data)["days"]
        return sorted({d for d in days if isinstance(d, str) and parse_day(d)})
    except (ValueError, KeyError, TypeError):
        log.warning("%s is not a list of days; it is made again", DAYS)
        return []


@dataclass(frozen=True)
class Image:
    """An image to archive: a JPEG of the archive variant."""

    data: bytes
    width: int
    height: int


class Archive:
    """The archive on one target; every method may raise `PublishError` (what was
    published stays consistent: the next call picks up from it)."""

    def __init__(self, target: Target, cfg: ArchiveConfig, index_cache: str = "no-cache") -> None:
        self.target = target
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.timezone)
        self.index_cache = index_cache  # like live.json's: indexes change
        self.days: list[str] | None = None  # days.json as published (None: not read yet)
        self.index: DayIndex | None = None  # the current day's
        self.strip: Strip | None = None
        self._unpublished = 0  # frames painted into the strip since it was published

    # --- the grid -----------------------------------------------------------------

    def local(self, now: dt.datetime) -> dt.datetime:
        return now.astimezone(self.tz)

    def slot(self, now: dt.datetime) -> dt.datetime:
        """The archive slot `now` falls in: local time floored to `every` seconds."""
        local = self.local(now)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        start = seconds - seconds % self.cfg.every
        return local.replace(
            hour=start // 3600, minute=start % 3600 // 60, second=start % 60, microsecond=0
        )

    def frame_key(self, slot: dt.datetime) -> str:
        return day_folder(slot.date()) + f"{slot:%H%M%S}.jpeg"

    # --- state read back from the target --------------------------------------------

    def _load_days(self) -> list[str]:
        if self.days is None:
            self.days = parse_days(self.target.read_object(DAYS, MAX_INDEX_BYTES))
        return self.days

    def _open_day(self, day: dt.date) -> DayIndex:
        """The index of `day`, continued from what is published (after a restart)."""
        if self.index is not None and self.index.day == day:
            return self.index
        data = self.target.read_object(index_key(day), MAX_INDEX_BYTES)
        index = DayIndex.parse(day, data) or DayIndex(day)
        strip = Strip()
        if index.strip and (published := self.target.read_object(index.strip)):
            strip.load(published)
        # The frames archived after the strip was last published (a crash loses the
        # paint, not the frames): at most strip_every of them.
        for frame in index.frames[-self.cfg.strip_every :]:
            t = parse_t(frame.get("t"))
            if t is not None and (jpeg := self.target.read_object(str(frame["key"]))):
                strip.paint_jpeg(*self._columns(t), jpeg)
        strip.changed = False
        self.index, self.strip, self._unpublished = index, strip, 0
        if index.frames and day.isoformat() not in self._load_days():
            # The index landed, days.json did not (a crash in between): name the day now.
            self._publish_days([*self._load_days(), day.isoformat()])
        return index

    def _columns(self, t: dt.datetime) -> tuple[int, int]:
        """The strip's first column and span for a frame at `t`."""
        local = self.local(t)
        return local.hour * 60 + local.minute, max(1, self.cfg.every // 60)

    # --- writing ----------------------------------------------------------------------

    def add(self, slot: dt.datetime, image: Image) -> bool:
        """Archive `image` at `slot` (a local time from `slot()`); False when that slot is
        archived already (a restart within it, the hour a DST change repeats)."""
        index = self._open_day(slot.date())
        key = self.frame_key(slot)
        if key in index.frame_keys():
            return False
        self.target.put_object(key, image.data, content_type=JPEG, cache_control=IMMUTABLE)
        assert self.strip is not None
        if self.strip.paint_jpeg(*self._columns(slot), image.data):
            self._unpublished += 1
        if self._unpublished >= self.cfg.strip_every:
            self._publish_strip(index)
        frame = {
            "t": iso_z(slot),
            "key": key,
            "width": image.width,
            "height": image.height,
            "bytes": len(image.data),
        }
        index.append(frame)
        try:
            self._publish_index(index)
        except PublishError:
            index.pop()  # not named: it is as if never archived
            raise
        if slot.date().isoformat() not in self._load_days():
            self._publish_days([*self._load_days(), slot.date().isoformat()])
        return True

    def end_day(self, today: dt.date) -> dt.date | None:
        """The day before `today` has ended: publish its final strip; returns that day if
        it had frames (its timelapse is due), else None."""
        index = self.index
        if index is None or index.day >= today:
            return None
        if self.strip is not None and self.strip.changed:
            self._publish_strip(index)
            self._publish_index(index)
        self.index, self.strip = None, None
        return index.day if index.frames else None

    def _publish_strip(self, index: DayIndex) -> None:
        assert self.strip is not None
        key = strip_key(index.day)
        # Rewritten in place as the day goes on: cached like an index, not immutable.
        self.target.put_object(
            key, self.strip.encode(), content_type=JPEG, cache_control=self.index_cache
        )
        index.strip = key
        self._unpublished = 0

    def _publish_index(self, index: DayIndex) -> None:
        self.target.put_object(
            index.key, index.to_json(), content_type=JSON, cache_control=self.index_cache
        )

    def _publish_days(self, days: Iterable[str]) -> None:
        ordered = sorted(set(days))
        body = json.dumps({"days": ordered}, separators=(",", ":")).encode()
        self.target.put_object(DAYS, body, content_type=JSON, cache_control=self.index_cache)
        self.days = ordered

    # --- retention ----------------------------------------------------------------------

    def prune(self, today: dt.date) -> list[dt.date]:
        """Delete the days older than `keep_days` (today counts as one); returns them.

        A day leaves days.json first, then its index goes, then the rest: no reader is
        ever pointed at a deleted object. The day folders are listed (only under
        archive/), so a day a crash left out of days.json goes too."""
        if not self.cfg.keep_days:
            return []
        oldest = today - dt.timedelta(days=self.cfg.keep_days - 1)
        old: list[dt.date] = []
        for year in self.target.list_folders(PREFIX):
            for month in self.target.list_folders(year):
                for folder in self.target.list_folders(month):
                    day = folder_day(folder)
                    if day is not None and day < oldest:
                        old.append(day)
        listed = self._load_days()
        kept = [d for d in listed if (parse_day(d) or oldest) >= oldest]
        if kept != listed:
            self._publish_days(kept)
        for day in sorted(old):
            names = [n for n in self.target.list_objects(day_folder(day)) if n.startswith(PREFIX)]
            first = [n for n in names if n == index_key(day)]
            self.target.delete_objects(first)
            self.target.delete_objects([n for n in names if n not in first])
            log.info("archive: deleted %s (%d objects), older than %d days", day, len(names),
                     self.cfg.keep_days)  # fmt: skip
        return sorted(old)


def parse_t(text: Any) -> dt.datetime | None:
    """The UTC time of an index entry's "t", or None."""
    try:
        return dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
