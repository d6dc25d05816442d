"""The publishing loop: capture, decide, render, publish; never dies on one bad frame.

Collaborators come in through the constructor (camera factory, renderer, target,
clock, notifier) so tests drive the loop with real parts and a fake clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import schedule
from PIL import Image

from livecam import change, manifest
from livecam.camera.base import PIXEL_MODES, Camera, Frame, call_within
from livecam.config import Config
from livecam.errors import CameraError, CameraFatalError, PublishError, RenderError
from livecam.manifest import ImageEntry
from livecam.notify import Notifier
from livecam.render import Rendered, Renderer
from livecam.site import SiteFile
from livecam.site import load as load_site
from livecam.targets.base import Target

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class MonotonicJob(schedule.Job):
    """A `schedule` job timed by a monotonic clock, without drift and without backlog.

    schedule's own `Job` reschedules from the wall clock after the job ends: it drifts
    by the work time, stalls or races when NTP sets the clock on a Pi without an RTC,
    and loops forever at an interval of 0. This keeps its Scheduler API (run_pending,
    jobs, cancel) and times runs on a grid of `interval` from an injectable clock: a
    run that overran starts the next one at once, never a queue of missed ones.
    """

    def __init__(
        self,
        interval: float,
        scheduler: schedule.Scheduler,
        clock: Clock = time.monotonic,
        *,
        first_in: float = 0.0,
    ) -> None:
        super().__init__(1, scheduler)
        self.unit = "seconds"
        self.period = interval
        self._clock = clock
        self.due = clock() + first_in
        self._not_before = 0.0
        self._started = False

    @property
    def should_run(self) -> bool:
        return self._clock() >= self.due

    def seconds_until_due(self) -> float:
        return max(0.0, self.due - self._clock())

    def defer(self, seconds: float) -> None:
        """Do not run again for `seconds` (a backoff), whatever the grid says."""
        self._not_before = self._clock() + seconds

    def _schedule_next_run(self) -> None:
        now = self._clock()
        if not self._started:  # called by do(): keep the first due time
            self._started = True
        else:
            self.due = max(self.due + self.period, now)
        self.due = max(self.due, self._not_before)
        # schedule's repr and sorting look at next_run: keep a wall-clock mirror.
        self.next_run = dt.datetime.now() + dt.timedelta(seconds=self.due - now)

    def __lt__(self, other: Any) -> bool:
        if isinstance(other, MonotonicJob):
            return self.due < other.due
        return NotImplemented


class Backoff:
    """Exponential delays, 0.5 s doubling up to `cap`."""

    def __init__(self, cap: float, base: float = 0.5) -> None:
        self.cap, self.base, self.failures = cap, base, 0

    def fail(self) -> float:
        self.failures += 1
        return min(self.cap, self.base * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


@dataclass
class FrameResult:
    """What happened to one captured frame."""

    seq: int
    skipped: bool
    images: list[Rendered] = field(default_factory=list)
    captured_at: dt.datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)
    difference: float | None = None

    def summary(self) -> str:
        if self.skipped:
            return f"frame skipped: unchanged (difference {self.difference or 0:.2f}%)"
        parts = ", ".join(
            f"{r.name} {r.width}x{r.height} {len(r.data) / 1024:.0f} KiB" for r in self.images
        )
        ms = " ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.timings.items())
        return f"published frame {self.seq}: {parts} ({ms})"


@dataclass
class Stats:
    """Counters for the periodic status line."""

    published: int = 0
    skipped: int = 0
    failed: int = 0
    last_seq: int = 0
    last_published_at: dt.datetime | None = None
    since: float = 0.0


class Publisher:
    """Publishes frames from a camera to a target as configured."""

    def __init__(
        self,
        cfg: Config,
        open_camera: Callable[[], Camera],
        target: Target,
        *,
        renderer: Renderer | None = None,
        clock: Clock = time.monotonic,
        notifier: Notifier | None = None,
        site_files: Callable[[], Sequence[SiteFile]] = load_site,
    ) -> None:
        self.cfg = cfg
        self._open_camera = open_camera
        self.target = target
        self.renderer = renderer or Renderer(cfg.variants)
        self.clock = clock
        self.notifier = notifier or Notifier("")
        self._site_files = site_files
        self.camera: Camera | None = None
        self.seq = 0
        self._published: dict[str, ImageEntry] = {}
        self._publish_count = 0
        self._last_thumb: Image.Image | None = None
        self._last_publish_mono: float | None = None
        self._publish_backoff = Backoff(cap=max(cfg.camera.interval, 1.0))
        self._camera_backoff = Backoff(cap=30.0)
        self._failing_since: float | None = None
        self._last_error = ""
        self._healthy = False
        self.stats = Stats(since=clock())

    # --- one frame -----------------------------------------------------------------

    def start(self) -> None:
        """Prepare the target, publish the page, resume `seq` from what is published."""
        self.target.start()
        self.seq = manifest.read_seq(self.target.read_manifest())
        self.publish_site()

    def publish_site(self) -> list[str]:
        if not self.cfg.site.enabled:
            return []
        changed = self.target.publish_site(self._site_files())
        if changed:
            log.info("published page files: %s", ", ".join(changed))
        return changed

    def _capture(self) -> Frame:
        """Open the camera if needed and capture, within `camera.timeout` (+2 s for the
        camera's own timeout to speak first); anything wrong is a `CameraError`."""
        limit = self.cfg.camera.timeout + 2.0
        try:
            if self.camera is None:
                self.camera = call_within(self._open_camera, limit, "opening the camera")
                log.info("camera open: %s", self.camera.describe())
            frame = call_within(self.camera.capture, limit, "capture")
            _check_frame(frame)
            return frame
        except CameraError:
            self.close_camera()
            raise
        except Exception as e:  # a driver bug is a camera failure too: reopen
            self.close_camera()
            raise CameraError(f"capture failed: {type(e).__name__}: {e}") from e

    def close_camera(self) -> None:
        camera, self.camera = self.camera, None
        if camera is not None:
            try:
                # A camera that hung in capture may hang in close too: bounded as well.
                call_within(camera.close, self.cfg.camera.timeout, "closing the camera")
            except Exception:
                log.warning("closing the camera failed", exc_info=True)

    def publish_next(self, *, force: bool = False) -> FrameResult:
        """Capture one frame and publish it (unless unchanged and not yet due).

        Raises `CameraError`, `RenderError` or `PublishError`; what was published
        before stays intact and `seq` only advances when the manifest landed."""
        timings: dict[str, float] = {}
        t0 = self.clock()
        frame = self._capture()
        with frame:
            t1 = self.clock()
            timings["capture"] = t1 - t0
            thumb = None
            diff = None
            if self.cfg.publish.skip_unchanged:
                thumb = change.thumbnail(frame)
                if self._last_thumb is not None and not force:
                    diff = change.difference(thumb, self._last_thumb)
                    last = self._last_publish_mono
                    age = t1 - last if last is not None else 0.0
                    if diff < self.cfg.publish.change_threshold and age < self.cfg.publish.max_age:
                        return FrameResult(self.seq, True, difference=diff)
            n = self._publish_count
            due = [
                v.name
                for v in self.cfg.variants
                if n % v.every == 0 or v.name not in self._published
            ]
            rendered = self.renderer.render(frame, due)
            captured_at = frame.captured_at
        t2 = self.clock()
        timings["render"] = t2 - t1
        seq = self.seq + 1
        images = dict(self._published)
        for r in rendered:
            images[r.name] = ImageEntry(r.width, r.height, len(r.data), seq)
        ordered = {v.name: images[v.name] for v in self.cfg.variants if v.name in images}
        body = manifest.build(
            seq,
            captured_at,
            self.cfg.camera.interval,
            ordered,
            self.cfg.site if self.cfg.site.enabled else None,
        )
        self.target.publish(rendered, body)
        timings["publish"] = self.clock() - t2
        # Only now, with the manifest out, does the frame count as published.
        self.seq = seq
        self._published = ordered
        self._publish_count += 1
        self._last_thumb = thumb
        self._last_publish_mono = self.clock()
        return FrameResult(seq, False, rendered, captured_at, timings, diff)

    # --- the loop ------------------------------------------------------------------

    def _frame_job(self, job: MonotonicJob) -> None:
        try:
            result = self.publish_next()
        except CameraError as e:
            self._healthy = False
            self.stats.failed += 1
            delay = self._camera_backoff.fail()
            n = self._camera_backoff.failures
            if n >= self.cfg.camera.max_failures:
                raise CameraFatalError(
                    f"camera failed {n} times in a row, giving up (last: {e})"
                ) from e
            log.warning(
                "camera failure %d of %d: %s; retrying in %.1f s",
                n,
                self.cfg.camera.max_failures,
                e,
                delay,
            )
            job.defer(delay)
            return
        except (PublishError, RenderError) as e:
            self._healthy = True  # the camera works; petting the watchdog is right
            self._note_failure(e, job)
            return
        except Exception as e:
            self._healthy = False
            self.stats.failed += 1
            log.exception("unexpected error publishing a frame; carrying on")
            job.defer(self._publish_backoff.fail())
            self._last_error = repr(e)
            return
        self._camera_backoff.reset()
        self._healthy = True
        if self._publish_backoff.failures:
            log.info(
                "publishing resumed after %d failed attempt(s) over %.1f s",
                self._publish_backoff.failures,
                self.clock() - (self._failing_since or self.clock()),
            )
            self._publish_backoff.reset()
            self._failing_since = None
            self._last_error = ""
            try:  # the target may have lost the page too (directory or bucket wiped)
                self.publish_site()
            except PublishError as e:
                log.warning("could not republish the page: %s", e)
        if result.skipped:
            self.stats.skipped += 1
            log.debug("%s", result.summary())
        else:
            self.stats.published += 1
            self.stats.last_seq = result.seq
            self.stats.last_published_at = result.captured_at
            log.debug("%s", result.summary())
        self.notifier.watchdog(self._status_text())

    def _note_failure(self, e: Exception, job: MonotonicJob) -> None:
        self.stats.failed += 1
        delay = self._publish_backoff.fail()
        n = self._publish_backoff.failures
        if n == 1:
            self._failing_since = self.clock()
        job.defer(delay)
        message = str(e)
        # One line per doubling of the outage, or when the reason changes: no flood.
        if n & (n - 1) == 0 or message != self._last_error:
            log.warning("publish failed (attempt %d): %s; next try in %.1f s", n, message, delay)
        else:
            log.debug("publish failed (attempt %d): %s", n, message)
        self._last_error = message

    def _status_text(self) -> str:
        s = self.stats
        last = manifest.iso_utc(s.last_published_at) if s.last_published_at else "never"
        state = f"failing: {self._last_error}" if self._last_error else "ok"
        return f"seq {s.last_seq}, last publish {last}, {state}"

    def _status_job(self) -> None:
        s = self.stats
        elapsed = max(1e-9, self.clock() - s.since)
        log.info(
            "status: %d published (%.2f/s), %d skipped, %d failed in %.0f s; %s",
            s.published,
            s.published / elapsed,
            s.skipped,
            s.failed,
            elapsed,
            self._status_text(),
        )
        self.notifier.status(self._status_text())
        self.stats = Stats(
            last_seq=s.last_seq, last_published_at=s.last_published_at, since=self.clock()
        )

    def _site_job(self) -> None:
        try:
            self.publish_site()
        except PublishError as e:
            log.warning("could not publish the page: %s", e)

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set. Raises `CameraFatalError` after too many camera
        failures in a row, for systemd to restart the service."""
        try:
            self.start()
        except PublishError as e:
            # A target that is down at boot is an outage like any other: keep trying.
            log.warning("target not ready (%s); publishing will retry", e)
        scheduler = schedule.Scheduler()
        frames = MonotonicJob(self.cfg.camera.interval, scheduler, self.clock)
        frames.do(lambda: self._frame_job(frames))
        if self.cfg.publish.status_interval > 0:
            period = self.cfg.publish.status_interval
            MonotonicJob(period, scheduler, self.clock, first_in=period).do(self._status_job)
        if self.cfg.site.enabled:
            MonotonicJob(60.0, scheduler, self.clock, first_in=60.0).do(self._site_job)
        watchdog = _watchdog_period()
        self.notifier.ready(f"publishing to {self.target.describe()}")
        log.info(
            "publishing every %g s to %s (%d variants)",
            self.cfg.camera.interval,
            self.target.describe(),
            len(self.cfg.variants),
        )
        try:
            while not stop.is_set():
                scheduler.run_pending()
                idle = min(
                    j.seconds_until_due() for j in scheduler.jobs if isinstance(j, MonotonicJob)
                )
                if watchdog and idle > watchdog:
                    # A long wait: feed systemd's watchdog meanwhile (frames feed it
                    # otherwise, once each, in _frame_job).
                    idle = watchdog
                    if self._healthy:
                        self.notifier.watchdog()
                if idle > 0:
                    stop.wait(idle)
        finally:
            self.notifier.stopping()
            log.info("stopping after frame %d", self.seq)

    def close(self) -> None:
        self.close_camera()
        self.renderer.close()
        self.target.close()
        self.notifier.close()


def _check_frame(frame: object) -> None:
    """A frame the renderer can use, or a CameraError saying what is wrong with it."""
    if not isinstance(frame, Frame) or not isinstance(frame.image, Image.Image):
        raise CameraError(f"camera returned {type(frame).__name__}, not a frame")
    image = frame.image
    if image.mode not in PIXEL_MODES:
        frame.release()
        raise CameraError(f"camera returned pixels in mode {image.mode!r}, not RGB")
    if image.width < 16 or image.height < 16:
        frame.release()
        raise CameraError(f"camera returned a {image.width}x{image.height} frame, too small")
    if frame.captured_at.tzinfo is None:
        frame.release()
        raise CameraError("camera returned a capture time without a time zone")


def _watchdog_period() -> float:
    """Half of systemd's WatchdogSec, or 0 when there is no watchdog (or it watches
    another process: sd_watchdog_enabled() checks $WATCHDOG_PID too)."""
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return 0.0
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0.0
    return usec / 2e6 if usec > 0 else 0.0
