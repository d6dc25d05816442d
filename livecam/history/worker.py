"""The archive beside the publishing loop.

On each wall-clock slot (a `schedule` job) the loop hands over its newest image of the
archive variant; a worker thread writes it, so a slow target never delays a frame.
At the end of a day the worker publishes the day's final strip, prunes old days and
starts the day's timelapse as a separate, low-priority process (`livecam timelapse
--background`), whose result it only notes in the log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from livecam.config import Config
from livecam.errors import PublishError
from livecam.history.archive import DAYS, Archive, DayIndex, Image, index_key
from livecam.jobs import Jobs
from livecam.rendered import Rendered
from livecam.targets.base import Target

log = logging.getLogger(__name__)

Now = Callable[[], dt.datetime]
Clock = Callable[[], float]
Spawn = Callable[[dt.date], "subprocess.Popen[bytes] | None"]
QUEUE = 10  # slots waiting for a stalled target; older ones are dropped beyond
JOIN_WITHIN = 0.3  # a stop waits this long for the frame being written


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def manifest_entry(cfg: Config) -> dict[str, object]:
    """What live.json says of the archive: where the page finds it."""
    return {"archive": {"days": DAYS, "timezone": cfg.archive.timezone, "every": cfg.archive.every}}


def timelapse_command(config_path: str, day: dt.date) -> list[str]:
    return [
        sys.executable,
        "-m",
        "livecam",
        "timelapse",
        "-c",
        config_path,
        "--day",
        day.isoformat(),
        "--background",
    ]


@dataclass
class _Slot:
    now: dt.datetime
    slot: dt.datetime | None
    image: Image | None


class Archiver:
    """Archives the loop's newest image on every slot; see the module's docstring."""

    def __init__(
        self,
        cfg: Config,
        target: Target,
        *,
        now: Now = utc_now,
        clock: Clock = time.monotonic,
        spawn: Spawn | None = None,
    ) -> None:
        self.cfg = cfg
        self.archive = Archive(target, cfg.archive, target_cache(cfg))
        self.now = now
        self.clock = clock
        self.spawn = spawn or self._spawn
        # The newest image of the archive variant and when the camera last showed the
        # scene it shows (an unchanged frame counts).
        self._latest: Rendered | None = None
        self._seen_at: float | None = None
        self._last_slot: dt.datetime | None = None
        self._queue: queue.Queue[_Slot | None] = queue.Queue(QUEUE)
        self._thread: threading.Thread | None = None
        self._started = False  # state read back, retention and catch-up done
        self._pruned: dt.date | None = None  # the day retention last ran
        self._process: subprocess.Popen[bytes] | None = None
        self._process_day: dt.date | None = None
        self.archived = 0  # frames archived by this process

    # --- the loop's side (cheap: never waits for the target) ------------------------

    def offer(self, images: Sequence[Rendered], at: float) -> None:
        """A frame was published at `at` (the loop's clock) with these images."""
        for image in images:
            if image.name == self.cfg.archive.variant:
                self._latest = image
        self._seen_at = at

    def seen(self, at: float) -> None:
        """The camera delivered a frame that did not change the picture."""
        if self._latest is not None:
            self._seen_at = at

    def schedule(self, jobs: Jobs) -> None:
        every = self.cfg.archive.every
        jobs.each_minute(self.tick, range(0, 60, every) if every < 60 else (0,))

    def tick(self) -> None:
        """A wall-clock slot: hand the newest image (if fresh) to the worker."""
        self.start()
        now = self.now()
        slot: dt.datetime | None = self.archive.slot(now)
        image = None
        if slot == self._last_slot:
            slot = None
        else:
            self._last_slot = slot
            image = self._fresh()
            if image is None:
                log.debug("archive: no fresh frame for %s", slot)
        try:
            self._queue.put_nowait(_Slot(now, slot, image))
        except queue.Full:
            log.warning("archive: the target is too slow, dropped the frame of %s", slot)

    def _fresh(self) -> Image | None:
        latest, seen = self._latest, self._seen_at
        # A frame older than this shows no longer what the slot's time says.
        max_age = max(self.cfg.archive.every, 2 * self.cfg.camera.interval)
        if latest is None or seen is None or self.clock() - seen > max_age:
            return None
        return Image(bytes(latest.data), latest.width, latest.height)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="archive", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join(JOIN_WITHIN)
            self._thread = None
        if self._process is not None and self._process.poll() is None:
            log.info("archive: stopping the timelapse of %s (made at the next start)",
                     self._process_day)  # fmt: skip
            self._process.terminate()

    # --- the worker's side --------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=5.0)
            except queue.Empty:
                self._note_timelapse()
                continue
            if item is None:
                return
            try:
                self.handle(item.now, item.slot, item.image)
            except PublishError as e:
                log.warning("archive: %s", e)
            except Exception:
                log.exception("archive: unexpected error; carrying on")

    def handle(self, now: dt.datetime, slot: dt.datetime | None, image: Image | None) -> None:
        """One wall-clock slot: start up (once), end the day if it changed, archive."""
        today = self.archive.local(now).date()
        if not self._started:
            self._start(today)
        if (ended := self.archive.end_day(today)) is not None:
            self._day_ended(ended, today)
        elif today != self._pruned:  # a new day without frames at its end: prune all the same
            self.archive.prune(today)
            self._pruned = today
        if slot is not None and image is not None and self.archive.add(slot, image):
            self.archived += 1
        self._note_timelapse()

    def _start(self, today: dt.date) -> None:
        """State from the target, old days pruned, and yesterday's timelapse if a stop
        prevented it."""
        self.archive.prune(today)
        self._started, self._pruned = True, today
        yesterday = today - dt.timedelta(days=1)
        if self.cfg.archive.timelapse and self._kept(yesterday):
            data = self.archive.target.read_object(index_key(yesterday))
            index = DayIndex.parse(yesterday, data)
            if index is not None and index.frames and index.timelapse is None:
                self._start_timelapse(yesterday)

    def _day_ended(self, day: dt.date, today: dt.date) -> None:
        self.archive.prune(today)
        self._pruned = today
        if self.cfg.archive.timelapse and self._kept(day):
            self._start_timelapse(day)

    def _kept(self, day: dt.date) -> bool:
        keep = self.cfg.archive.keep_days
        today = self.archive.local(self.now()).date()
        return not keep or (today - day).days < keep

    def _start_timelapse(self, day: dt.date) -> None:
        if self._process is not None and self._process.poll() is None:
            log.warning("archive: the timelapse of %s is still running; %s waits",
                        self._process_day, day)  # fmt: skip
            return
        process = self.spawn(day)
        if process is not None:
            self._process, self._process_day = process, day
            log.info("archive: making the timelapse of %s (pid %d)", day, process.pid)

    def _spawn(self, day: dt.date) -> subprocess.Popen[bytes] | None:
        if self.cfg.source_path is None:
            log.info("archive: no timelapse without a config file (livecam timelapse -c)")
            return None
        if importlib.util.find_spec("av") is None:
            log.warning("archive: timelapses need PyAV: pip install 'livecam[timelapse]'")
            return None
        # Its own session: a Ctrl-C in the terminal stops the service, which stops it.
        return subprocess.Popen(
            timelapse_command(self.cfg.source_path, day),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _note_timelapse(self) -> None:
        process = self._process
        if process is None or (code := process.poll()) is None:
            return
        if code == 0:
            log.info("archive: the timelapse of %s is published", self._process_day)
        else:
            log.warning("archive: the timelapse of %s failed (exit %d); see its lines above",
                        self._process_day, code)  # fmt: skip
        self._process = None


def target_cache(cfg: Config) -> str:
    """Indexes are cached like live.json."""
    return cfg.target.cache_control
