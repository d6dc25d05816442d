"""Preview frames: made once, shared by every viewer, and only while someone watches.

A `Slot` holds the latest encoded frame; each client waits on its condition for a
frame newer than the last it sent, so a slow client skips frames (latest wins) and
nothing is ever queued per client. The `Producer` thread makes frames at `preview.fps`
while the slot has viewers and sleeps on the condition otherwise: no capture, no encode.

Where a frame comes from: a camera that streams (picamera2, the test pattern) gives an
extra frame between the publisher's captures (`CameraSupervisor.peek`), of which the
smallest copy that covers the preview box is taken (the ISP's lores stream on a Pi) and
encoded once. Other cameras (a command per frame) cost a process per capture: there the
preview shows the smallest variant the publisher rendered, which costs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from livecam.camera.base import Frame, Planes
from livecam.camera.supervisor import CameraSupervisor
from livecam.config import Config, PreviewConfig, VariantConfig
from livecam.errors import RenderError
from livecam.loop import FrameResult, Ticker
from livecam.render import Renderer
from livecam.rendered import Rendered

log = logging.getLogger(__name__)

BOUNDARY = "livecam-frame"
# Cameras that stream, so an extra frame costs little next to encoding it.
STREAMING_SOURCES = ("picamera2", "test")


@dataclass(frozen=True)
class PreviewFrame:
    """One encoded preview frame: the JPEG and the same bytes as a multipart part."""

    seq: int
    jpeg: bytes
    part: bytes
    made_at: float  # monotonic


def multipart(jpeg: bytes) -> bytes:
    """`jpeg` as one part of the multipart/x-mixed-replace stream, ready to send."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode("ascii") + jpeg + b"\r\n"


class Slot:
    """The latest preview frame, the viewers waiting for the next, and the counters."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.frame: PreviewFrame | None = None
        self.viewers = 0
        self.closed = False
        self.encoded = 0  # frames this process encoded for the preview
        self.reused = 0  # published variants shown as they are (no encode)
        self.sent = 0  # frames written to clients
        self.skipped = 0  # frames a slow client never got (latest wins)
        self.dropped = 0  # clients disconnected after a stall

    def put(self, jpeg: bytes, *, encoded: bool) -> PreviewFrame:
        with self._cond:
            seq = (self.frame.seq if self.frame else 0) + 1
            self.frame = PreviewFrame(seq, jpeg, multipart(jpeg), time.monotonic())
            if encoded:
                self.encoded += 1
            else:
                self.reused += 1
            self._cond.notify_all()
            return self.frame

    def newer(self, seq: int, timeout: float) -> PreviewFrame | None:
        """The latest frame once it is newer than `seq`; None after `timeout` s or on close."""
        with self._cond:
            self._cond.wait_for(
                lambda: self.closed or (self.frame is not None and self.frame.seq > seq), timeout
            )
            if self.closed or self.frame is None or self.frame.seq <= seq:
                return None
            if seq and self.frame.seq > seq + 1:
                self.skipped += self.frame.seq - seq - 1
            return self.frame

    @property
    def seq(self) -> int:
        with self._cond:
            return self.frame.seq if self.frame else 0

    def join(self, cap: int) -> bool:
        """One more viewer, unless `cap` watch already."""
        with self._cond:
            if self.viewers >= cap:
                return False
            self.viewers += 1
            self._cond.notify_all()
            return True

    def leave(self) -> None:
        with self._cond:
            self.viewers -= 1

    def wait_viewers(self, timeout: float) -> bool:
        """Whether anyone watches, waiting up to `timeout` s for a first viewer."""
        with self._cond:
            return self._cond.wait_for(lambda: self.viewers > 0 or self.closed, timeout) and (
                not self.closed
            )

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "viewers": self.viewers,
                "seq": self.frame.seq if self.frame else 0,
                "encoded": self.encoded,
                "reused": self.reused,
                "sent": self.sent,
                "skipped": self.skipped,
                "dropped": self.dropped,
            }

    def count(self, *, sent: int = 0, dropped: int = 0) -> None:
        with self._cond:
            self.sent += sent
            self.dropped += dropped


def streams(cfg: Config) -> bool:
    """Whether the preview takes its own frames from the camera (else: the published)."""
    return cfg.camera.source in STREAMING_SOURCES


def lores_variants(cfg: Config) -> tuple[VariantConfig, ...]:
    """The variants to size the camera's lores stream by: with the preview on, its box
    too, so that on a Pi the ISP scales the preview's frames."""
    if not (cfg.preview.enabled and streams(cfg)):
        return cfg.variants
    return (*cfg.variants, preview_variant(cfg.preview))


def preview_variant(p: PreviewConfig) -> VariantConfig:
    return VariantConfig("preview.jpeg", p.width, p.height, p.quality)


def small_copy(frame: Frame, variant: VariantConfig) -> Frame:
    """A copy of `frame`'s smallest pixels that cover the preview's size (its lores copy
    when that does, else its planes or image), owning its memory: the camera gets its
    buffer back at once and the encode happens off the camera's thread."""
    lores = frame.lores
    w, h = variant.size_for(*frame.size)
    if lores is not None and lores.size[0] >= w - 1 and lores.size[1] >= h - 1:
        return Frame(None, frame.captured_at, Planes(*(p.copy() for p in lores)))
    if frame.planes is not None:
        return Frame(None, frame.captured_at, Planes(*(p.copy() for p in frame.planes)))
    assert frame.image is not None  # check_frame made sure
    return Frame(frame.image.copy(), frame.captured_at)


class Producer:
    """Makes preview frames into `slot` at `cfg.fps` while anyone watches."""

    def __init__(
        self, cfg: PreviewConfig, camera: CameraSupervisor, slot: Slot, *, own_frames: bool
    ) -> None:
        self.cfg = cfg
        self.camera = camera
        self.slot = slot
        self.own_frames = own_frames
        self._variant = preview_variant(cfg)
        self._renderer: Renderer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        if not self.own_frames:
            return  # published frames come in through `published`
        self._renderer = Renderer((self._variant,))
        self._thread = threading.Thread(target=self._run, name="preview", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.slot.close()
        if self._thread is not None:
            self._thread.join(5.0)

    def published(self, result: FrameResult) -> None:
        """The publisher published a frame: a camera that does not stream shows its
        smallest variant in the preview, as it is (called on the publisher's thread)."""
        if self.own_frames or not self.slot.viewers or not result.images:
            return
        smallest = min(result.images, key=lambda r: r.width * r.height)
        self.slot.put(smallest.data, encoded=False)

    def _run(self) -> None:
        period = 1.0 / self.cfg.fps
        while not self._stop.is_set():
            if not self.slot.wait_viewers(1.0):
                continue
            log.debug("preview: %d viewer(s), making frames", self.slot.viewers)
            ticker = Ticker(period)
            while self.slot.viewers and not self._stop.is_set():
                try:
                    made = self._make()
                except Exception:  # the loop boundary: a bad frame never ends the preview
                    log.exception("preview frame failed; carrying on")
                    made = None
                # No frame (camera busy, closed, failing): try again within a period.
                ticker.tick()
                self._stop.wait(ticker.wait() if made else period / 2)
            log.debug("preview: no viewers, idle (%d frames encoded so far)", self.slot.encoded)

    def _make(self) -> Sequence[Rendered] | None:
        frame = self.camera.peek(lambda f: small_copy(f, self._variant))
        if frame is None or self._renderer is None:
            return None
        try:
            out = self._renderer.render(frame)
        except RenderError as e:
            log.warning("preview frame not encoded: %s", e)
            return None
        self.slot.put(out[0].data, encoded=True)
        return out
