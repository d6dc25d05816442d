"""The wall-clock jobs that run between frames: the status line, the page check (and
whatever else runs every so many seconds). Timed by `schedule`, on the wall clock: a
job runs late rather than twice when the clock jumps forward (NTP on a Pi without an
RTC), and never holds up a frame for longer than it takes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import schedule

from livecam.manifest import iso_utc

log = logging.getLogger(__name__)

# Seconds between looks at the target for a wipe: on S3 a HEAD per page file and kept
# image, which `cost` counts.
CHECK_EVERY = 60.0


class Jobs:
    """Jobs each run every so many seconds; one that raises is logged and runs again at
    its next turn."""

    def __init__(self) -> None:
        self._scheduler = schedule.Scheduler()

    def every(self, seconds: float, job: Callable[[], object]) -> None:
        """Run `job` every `seconds` (the first run one period from now); 0 = never."""
        if seconds > 0:
            # schedule counts in whole timedeltas: a period under their resolution
            # would never move on.
            self._scheduler.every(max(seconds, 0.001)).seconds.do(self._guarded, job)  # type: ignore[arg-type]

    def each_minute(self, job: Callable[[], object], seconds: Iterable[int] = (0,)) -> None:
        """Run `job` at each of these seconds past every wall-clock minute."""
        for second in seconds:
            self._scheduler.every().minute.at(f":{second:02d}").do(self._guarded, job)

    @staticmethod
    def _guarded(job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:
            log.exception("job %s failed; it runs again at its next turn", _name(job))

    def run_pending(self) -> None:
        self._scheduler.run_pending()

    def idle_seconds(self) -> float:
        """Seconds until the next job is due (0 if one is due; inf without jobs)."""
        idle = self._scheduler.idle_seconds
        return float("inf") if idle is None else max(0.0, idle)


def _name(job: Callable[[], object]) -> str:
    return getattr(job, "__qualname__", None) or repr(job)


@dataclass
class Status:
    """What the status line and systemd's STATUS= say: counters since the last status
    line, the last frame published and the outage, if any."""

    since: float
    published: int = 0
    skipped: int = 0
    failed: int = 0
    last_seq: int = 0
    last_published_at: dt.datetime | None = None
    failing: str = ""  # why publishing fails, while it does

    def text(self) -> str:
        last = iso_utc(self.last_published_at) if self.last_published_at else "never"
        state = f"failing: {self.failing}" if self.failing else "ok"
        return f"seq {self.last_seq}, last publish {last}, {state}"

    def line(self, now: float) -> str:
        """The periodic status line; starts the counters afresh."""
        elapsed = max(1e-9, now - self.since)
        text = (
            f"status: {self.published} published ({self.published / elapsed:.2f}/s), "
            f"{self.skipped} skipped, {self.failed} failed in {elapsed:.0f} s; {self.text()}"
        )
        self.published = self.skipped = self.failed = 0
        self.since = now
        return text
