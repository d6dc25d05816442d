"""The publishing loop: a monotonic ticker sets the frame cadence; each tick captures,
renders and publishes one frame; the wall-clock jobs run between frames. It never dies
on one bad frame.

Collaborators come in through the constructor (camera factory, renderer, target,
clock, notifier) so tests drive the loop with real parts and a fake clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from livecam import change, frames
from livecam.camera.base import Camera, Frame
from livecam.camera.supervisor import CameraSupervisor
from livecam.config import Config
from livecam.errors import CameraError, CameraFatalError, PublishError, RenderError
from livecam.frames import PRUNE_EVERY
from livecam.history.worker import Archiver, manifest_entry
from livecam.jobs import CHECK_EVERY, Jobs, Status
from livecam.manifest import NAME as MANIFEST
from livecam.manifest import Manifest
from livecam.notify import Notifier, watchdog_period
from livecam.render import Renderer
from livecam.render.overlay import overlay_for
from livecam.rendered import Rendered
from livecam.site import SiteFile
from livecam.site import load as load_site
from livecam.targets.base import Target

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Ticker:
    """A cadence on a monotonic clock: due every `interval` s on a fixed grid, so the
    work time adds no drift; a run that overran makes the next due at once, never a
    queue of missed ones; interval 0 is as fast as possible."""

    def __init__(self, interval: float, clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.due = clock()

    def wait(self) -> float:
        """Seconds until the next run is due (0: now)."""
        return max(0.0, self.due - self.clock())

    def tick(self, backoff: float = 0.0) -> None:
        """A run ended: the next is due one interval after this one was, or at once if
        that has passed, and not before `backoff` s from now."""
        now = self.clock()
        self.due = max(self.due + self.interval, now, now + backoff)


class Backoff:
    """Exponential delays, `base` s doubling up to `cap`."""

    def __init__(self, cap: float, base: float = 0.5) -> None:
        self.cap, self.base, self.failures = cap, base, 0

    def fail(self) -> float:
        self.failures += 1
        return float(min(self.cap, self.base * 2 ** (self.failures - 1)))

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


class Unchanged:
    """`publish.skip_unchanged`: is a frame too like the last published one to publish,
    and the last one still younger than `max_age`?"""

    def __init__(self, threshold: float, max_age: float) -> None:
        self.threshold, self.max_age = threshold, max_age
        self._last: Image.Image | None = None
        self._last_at: float | None = None

    def compare(self, frame: Frame) -> tuple[Image.Image, float | None]:
        """The frame's thumbnail and its difference from the last published one."""
        thumb = change.thumbnail(frame)
        return thumb, None if self._last is None else change.difference(thumb, self._last)

    def skip(self, difference: float | None, now: float) -> bool:
        age = now - self._last_at if self._last_at is not None else 0.0
        return difference is not None and difference < self.threshold and age < self.max_age

    def published(self, thumb: Image.Image | None, now: float) -> None:
        self._last, self._last_at = thumb, now


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
        backoff: float = 0.5,
        check_every: float = CHECK_EVERY,
        archiver: Archiver | None = None,
        on_published: Callable[[FrameResult], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.target = target
        self.renderer = renderer or Renderer(
            cfg.variants, overlay=overlay_for(cfg.overlay, cfg.site.title)
        )
        self.clock = clock
        self.notifier = notifier or Notifier("")
        self._site_files = site_files
        self.check_every = check_every
        self.on_published = on_published  # e.g. the preview, shown a published frame
        self.camera = CameraSupervisor(
            open_camera, cfg.camera.timeout, cfg.camera.max_failures, backoff=backoff
        )
        site = cfg.site if cfg.site.enabled else None
        if archiver is None and cfg.archive.enabled:
            archiver = Archiver(cfg, target, clock=clock)
        self.archiver = archiver
        extra = manifest_entry(cfg) if archiver else None
        publish = cfg.publish
        self.manifest = Manifest(
            cfg.variants, cfg.camera.interval, site, extra, frame_keys=publish.frame_keys
        )
        # Frame keys to delete once no viewer wants them; those of the manifest found
        # at start are replaced by the first frame.
        self.frames = frames.Retention() if publish.frame_keys and target.can_delete else None
        if publish.frame_keys and not target.can_delete:
            log.warning(
                "%s cannot delete old frame keys: clean frames/ on the server (docs/scaling.md)",
                target.describe(),
            )
        self._found_keys: list[str] = []
        self._unchanged = (
            Unchanged(publish.change_threshold, publish.max_age) if publish.skip_unchanged else None
        )
        self.outage = Backoff(cap=max(cfg.camera.interval, 1.0), base=backoff)
        self._failing_since: float | None = None
        self._healthy = False  # the camera delivers and nothing unexpected broke
        self._resumed = False  # seq continues from the published manifest
        self.status = Status(since=clock())

    @property
    def seq(self) -> int:
        """The last frame published."""
        return self.manifest.seq

    # --- one frame -----------------------------------------------------------------

    def start(self) -> None:
        """Prepare the target, resume `seq` from what is published, publish the page.
        Raises `PublishError` when the target cannot be read; `publish_next` tries
        again before it publishes anything."""
        self.target.start()
        self._resume()
        self.publish_site()

    def _resume(self) -> None:
        published = self.target.read_manifest()
        self.manifest.resume(published)
        if self.frames is not None:
            self._found_keys = frames.named(published)
        if published and not self.manifest.seq:
            log.warning("the published %s is not a manifest; seq starts at 1", MANIFEST)
        self._resumed = True

    def publish_site(self, *, verify: bool = False) -> list[str]:
        if not self.cfg.site.enabled:
            return []
        changed = self.target.publish_site(self._site_files(), verify=verify)
        if changed:
            log.info("published page files: %s", ", ".join(changed))
        return changed

    def publish_next(self, *, force: bool = False) -> FrameResult:
        """Capture one frame and publish it (unless unchanged and not yet due).

        Raises `CameraError`, `RenderError` or `PublishError`; what was published
        before stays intact and `seq` only advances when the manifest landed."""
        t0 = self.clock()
        with self.camera.capture() as frame:
            t1 = self.clock()
            thumb, diff = self._unchanged.compare(frame) if self._unchanged else (None, None)
            if self._unchanged and not force and self._unchanged.skip(diff, t1):
                if self.archiver:
                    self.archiver.seen(t1)
                return FrameResult(self.seq, True, difference=diff)
            if not self._resumed:  # the target was unreadable so far: never guess seq
                self._resume()
            if self.target.free_lookups:  # a kept image deleted from the target is due now
                self.manifest.forget(self.target.missing(self.manifest.kept()))
            rendered = self.renderer.render(frame, self.manifest.due(), seq=self.seq + 1)
            captured_at = frame.captured_at
        t2 = self.clock()
        update = self.manifest.update(rendered, captured_at)
        keys = {name: e.key for name, e in update.entries.items()}
        self.target.publish([*rendered, *frames.copies(rendered, keys)], update.body)
        # Only now, with the manifest out, does the frame count as published.
        before = [*self._found_keys, *(e.key for e in self.manifest.entries.values())]
        self.manifest.commit(update)
        t3 = self.clock()
        if self.frames is not None:
            self.frames.replaced(before, keys.values(), t3)
            self._found_keys = []
        if self._unchanged:
            self._unchanged.published(thumb, t3)
        if self.archiver:
            self.archiver.offer(rendered, t1)
        timings = {"capture": t1 - t0, "render": t2 - t1, "publish": t3 - t2}
        return FrameResult(update.seq, False, rendered, captured_at, timings, diff)

    # --- the loop ------------------------------------------------------------------

    def _frame(self) -> float:
        """One tick: publish a frame, deal with what went wrong; the backoff in s."""
        try:
            result = self.publish_next()
        except CameraFatalError:
            raise
        except CameraError as e:
            self._healthy = False
            self.status.failed += 1
            delay = self.camera.retry_in
            log.warning(
                "camera failure %d of %d: %s; retrying in %.1f s",
                self.camera.failures,
                self.camera.max_failures,
                e,
                delay,
            )
            return delay
        except (PublishError, RenderError) as e:
            # The camera delivers and the loop runs: the watchdog is fed, for it is
            # there to restart a hung process, not to fight an outage of the target.
            self._healthy = True
            delay = self._failed(str(e))
            self.notifier.watchdog(self.status.text())
            return delay
        except Exception as e:
            self._healthy = False
            log.exception("unexpected error publishing a frame; carrying on")
            self.status.failed += 1
            self.status.failing = repr(e)
            return self.outage.fail()
        self._healthy = True
        if self.outage.failures:
            self._recovered()
        if result.skipped:
            self.status.skipped += 1
        else:
            self.status.published += 1
            self.status.last_seq = result.seq
            self.status.last_published_at = result.captured_at
            if self.on_published:
                self.on_published(result)
        log.debug("%s", result.summary())
        self.notifier.watchdog(self.status.text())
        return 0.0

    def _failed(self, message: str) -> float:
        self.status.failed += 1
        delay = self.outage.fail()
        n = self.outage.failures
        if n == 1:
            self._failing_since = self.clock()
        # One line per doubling of the outage, or when the reason changes: no flood.
        if n & (n - 1) == 0 or message != self.status.failing:
            log.warning("publish failed (attempt %d): %s; next try in %.1f s", n, message, delay)
        else:
            log.debug("publish failed (attempt %d): %s", n, message)
        self.status.failing = message
        return delay

    def _recovered(self) -> None:
        log.info(
            "publishing resumed after %d failed attempt(s) over %.1f s",
            self.outage.failures,
            self.clock() - (self._failing_since or self.clock()),
        )
        self.outage.reset()
        self._failing_since = None
        self.status.failing = ""
        self._check_target()  # it may have been wiped meanwhile

    def _check_target(self) -> None:
        """Restore what a wiped directory or bucket lost: the page at once, the images
        the manifest names without publishing them with the next frame."""
        try:
            self.publish_site(verify=True)
            if gone := self.target.missing(self.manifest.kept()):
                log.warning("%s gone from the target: publishing again", ", ".join(gone))
                self.manifest.forget(gone)
        except PublishError as e:
            log.warning("could not check the target: %s", e)

    def prune_frames(self) -> None:
        """Delete the frame keys replaced long enough ago, in one batch."""
        if self.frames is None or not (keys := self.frames.due(self.clock())):
            return
        try:
            self.target.delete(keys)
        except PublishError as e:
            self.frames.failed(keys, self.clock())
            log.warning("could not delete %d old frame object(s): %s", len(keys), e)

    def _status_line(self) -> None:
        log.info("%s", self.status.line(self.clock()))
        self.notifier.status(self.status.text())

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set. Raises `CameraFatalError` after too many camera
        failures in a row, for systemd to restart the service."""
        self.camera.stop = stop
        try:
            self.start()
        except PublishError as e:
            # A target that is down at boot is an outage like any other: keep trying.
            log.warning("target not ready (%s); publishing will retry", e)
        jobs = Jobs()
        jobs.every(self.cfg.publish.status_interval, self._status_line)
        jobs.every(self.check_every, self._check_target)
        if self.archiver:
            self.archiver.schedule(jobs)
        if self.frames is not None:
            jobs.every(PRUNE_EVERY, self.prune_frames)
        frames = Ticker(self.cfg.camera.interval, self.clock)
        watchdog = watchdog_period()
        self.notifier.ready(f"publishing to {self.target.describe()}")
        log.info(
            "publishing every %g s to %s (%d variants)",
            self.cfg.camera.interval,
            self.target.describe(),
            len(self.cfg.variants),
        )
        try:
            while not stop.is_set():
                if frames.wait() == 0:
                    frames.tick(self._frame())
                jobs.run_pending()
                idle = min(frames.wait(), jobs.idle_seconds())
                if watchdog and idle > watchdog:
                    # A long wait: feed systemd's watchdog meanwhile, while the camera
                    # delivers (each frame feeds it otherwise).
                    idle = watchdog
                    if self._healthy:
                        self.notifier.watchdog()
                if idle > 0:
                    stop.wait(idle)
        finally:
            self.notifier.stopping()
            log.info("stopping after frame %d", self.seq)

    def close(self) -> None:
        self.camera.shutdown()
        self.target.close()
        self.notifier.close()
        if self.archiver:  # last: the camera's close is the one a stop must not wait for
            self.archiver.close()
