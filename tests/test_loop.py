"""The publishing loop: cadence without drift or backlog, seq, failures, skip/every."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from livecam import config
from livecam.camera.base import Camera, Frame
from livecam.errors import CameraError, CameraFatalError, PublishError
from livecam.loop import Publisher, Ticker
from livecam.render import Rendered
from livecam.targets.local import LocalTarget


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def run_ticker(interval: float, work: float, until: float) -> list[float]:
    """Drive a Ticker with a fake clock the way Publisher.run does."""
    clock = FakeClock()
    start = clock.t
    runs: list[float] = []
    ticker = Ticker(interval, clock)
    while clock.t - start < until:
        if ticker.wait() == 0:
            runs.append(clock.t - start)
            clock.advance(work)
            ticker.tick()
        clock.advance(max(ticker.wait(), 0.001 if interval == 0 and work == 0 else 0))
    return runs


def test_cadence_has_no_drift_when_work_fits() -> None:
    runs = run_ticker(interval=2.0, work=0.7, until=20)
    assert runs == pytest.approx([0, 2, 4, 6, 8, 10, 12, 14, 16, 18])


def test_overrun_runs_back_to_back_without_backlog() -> None:
    runs = run_ticker(interval=1.0, work=2.5, until=10)
    # Each run starts as the previous ends; nothing is replayed to catch up.
    assert runs == pytest.approx([0, 2.5, 5.0, 7.5])


def test_interval_zero_is_as_fast_as_possible() -> None:
    runs = run_ticker(interval=0.0, work=0.25, until=2)
    assert runs == pytest.approx([0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])


def test_a_backoff_defers_then_returns_to_the_grid() -> None:
    clock = FakeClock()
    runs: list[float] = []
    ticker = Ticker(1.0, clock)
    while clock.t < 1008:
        if ticker.wait() == 0:
            runs.append(clock.t - 1000.0)
            ticker.tick(backoff=3.5 if len(runs) == 2 else 0.0)
        clock.advance(ticker.wait())
    assert runs == pytest.approx([0, 1, 4.5, 5.5, 6.5, 7.5])


# --- the publisher with real parts ------------------------------------------------------


class SolidCamera(Camera):
    """Frames of one colour, changeable by the test; capture time from a fake clock."""

    def __init__(self, colour: tuple[int, int, int] = (10, 20, 30)) -> None:
        self.colour = colour
        self.when = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
        self.fail: Exception | None = None
        self.captures = 0
        self.closed = 0

    def capture(self) -> Frame:
        if self.fail is not None:
            raise self.fail
        self.captures += 1
        self.when += timedelta(seconds=1)
        return Frame(Image.new("RGB", (640, 480), self.colour), self.when)

    def close(self) -> None:
        self.closed += 1


class FlakyTarget(LocalTarget):
    """A real local target whose publish can be made to fail."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fail_next = 0

    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise PublishError("injected failure")
        super().publish(images, manifest)


def make(
    tmp_path: Path,
    camera: Camera,
    *,
    interval: float = 1.0,
    clock: Callable[[], float] | None = None,
    open_camera: Callable[[], Camera] | None = None,
    **publish: object,
) -> tuple[Publisher, FlakyTarget]:
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 640, "height": 480, "interval": interval},
            "variants": [
                {"name": "live.jpeg"},
                {"name": "big.jpeg", "width": 320, "height": 240, "every": 3},
                {"name": "small.jpeg", "width": 160, "height": 120},
            ],
            "target": {"kind": "local", "path": str(tmp_path)},
            "publish": publish,
        }
    )
    target = FlakyTarget(tmp_path)
    p = Publisher(
        cfg,
        open_camera or (lambda: camera),
        target,
        clock=clock or FakeClock(),
        site_files=lambda: [],
        backoff=0.001,
    )
    return p, target


def manifest(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((tmp_path / "live.json").read_text())


def test_seq_advances_only_when_the_manifest_lands(tmp_path: Path) -> None:
    p, target = make(tmp_path, SolidCamera())
    p.start()
    p.publish_next()
    assert manifest(tmp_path)["seq"] == 1
    target.fail_next = 1
    with pytest.raises(PublishError):
        p.publish_next()
    assert manifest(tmp_path)["seq"] == 1
    assert p.seq == 1
    p.publish_next()
    assert manifest(tmp_path)["seq"] == 2


def test_seq_resumes_after_a_restart(tmp_path: Path) -> None:
    p, _ = make(tmp_path, SolidCamera())
    p.start()
    for _ in range(3):
        p.publish_next()
    p2, _ = make(tmp_path, SolidCamera())
    p2.start()
    assert p2.publish_next().seq == 4


def test_every_n_keeps_the_last_entry_for_skipped_variants(tmp_path: Path) -> None:
    p, _ = make(tmp_path, SolidCamera())
    p.start()
    published = [[r.name for r in p.publish_next().images] for _ in range(4)]
    assert published == [
        ["live.jpeg", "big.jpeg", "small.jpeg"],
        ["live.jpeg", "small.jpeg"],
        ["live.jpeg", "small.jpeg"],
        ["live.jpeg", "big.jpeg", "small.jpeg"],
    ]
    m = manifest(tmp_path)
    assert m["seq"] == 4
    assert m["images"]["big.jpeg"]["seq"] == 4
    assert list(m["images"]) == ["live.jpeg", "big.jpeg", "small.jpeg"]


def test_manifest_matches_what_was_written(tmp_path: Path) -> None:
    p, _ = make(tmp_path, SolidCamera())
    p.start()
    p.publish_next()
    m = manifest(tmp_path)
    assert m["captured_at"] == "2026-11-21T12:00:01.000Z"
    assert m["interval"] == 1.0
    for name, entry in m["images"].items():
        data = (tmp_path / name).read_bytes()
        assert entry["bytes"] == len(data)
        with Image.open(tmp_path / name) as im:
            assert im.size == (entry["width"], entry["height"])


def test_skip_unchanged_publishes_only_changes_and_keepalives(tmp_path: Path) -> None:
    camera = SolidCamera()
    p, _ = make(tmp_path, camera, skip_unchanged=True, max_age=10.0)
    clock = p.clock
    assert isinstance(clock, FakeClock)
    p.start()
    results = []
    for i in range(25):
        if i == 12:
            camera.colour = (200, 200, 200)
        results.append(p.publish_next())
        clock.advance(1.0)
    published = [i for i, r in enumerate(results) if not r.skipped]
    # First frame, then the keep-alive after max_age, the change, and its keep-alive.
    assert published == [0, 10, 12, 22]


def test_loop_survives_publish_failures_and_stops_on_request(tmp_path: Path) -> None:
    p, target = make(tmp_path, SolidCamera(), interval=0.0, clock=time.monotonic, status_interval=0)
    target.fail_next = 3
    stop = threading.Event()
    t = threading.Thread(target=p.run, args=(stop,))
    t.start()
    threading.Timer(3.0, stop.set).start()
    t.join(10)
    assert not t.is_alive()
    assert p.seq >= 3
    assert manifest(tmp_path)["seq"] == p.seq


def test_camera_failures_in_a_row_are_fatal(tmp_path: Path) -> None:
    camera = SolidCamera()
    camera.fail = CameraError("no frame")
    opened: list[int] = []

    def open_camera() -> Camera:
        opened.append(1)
        return camera

    p, _ = make(tmp_path, camera, clock=time.monotonic, open_camera=open_camera)
    stop = threading.Event()
    with pytest.raises(CameraFatalError, match="camera failed 5 times in a row"):
        p.run(stop)
    # Each failure closed the camera; each retry opened it again.
    assert len(opened) == 5
    assert camera.closed == 5


def test_unexpected_camera_exception_counts_as_camera_failure(tmp_path: Path) -> None:
    camera = SolidCamera()
    camera.fail = ZeroDivisionError("driver bug")
    p, _ = make(tmp_path, camera)
    with pytest.raises(CameraError, match="ZeroDivisionError: driver bug"):
        p.publish_next()
