"""The camera supervisor: one worker thread for every call, a hung call abandoned with
its thread, reopen with backoff, max_failures; and the wall-clock jobs."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from PIL import Image

from livecam.camera.base import Camera, Frame
from livecam.camera.supervisor import CameraSupervisor
from livecam.errors import CameraError, CameraFatalError
from livecam.jobs import Jobs, Status


class Camera1(Camera):
    """Frames on demand; `hang` makes the next capture block until released."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.unhang = threading.Event()
        self.threads: set[str] = set()
        self.closed = 0
        self.released = 0

    def capture(self) -> Frame:
        self.threads.add(threading.current_thread().name + str(threading.get_ident()))
        if self.hang.is_set():
            self.unhang.wait(30)
        return Frame(Image.new("RGB", (64, 48)), datetime.now(UTC), _release=self._count_release)

    def _count_release(self) -> None:
        self.released += 1

    def close(self) -> None:
        self.closed += 1


def camera_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "camera"]


def test_every_capture_runs_on_one_long_lived_thread() -> None:
    camera = Camera1()
    before = len(camera_threads())
    sup = CameraSupervisor(lambda: camera, timeout=1.0, max_failures=3)
    for _ in range(20):
        with sup.capture():
            pass
    assert len(camera.threads) == 1
    assert len(camera_threads()) == before + 1
    sup.shutdown()
    time.sleep(0.2)
    assert len(camera_threads()) == before


def test_a_hung_capture_is_abandoned_and_a_new_worker_reopens() -> None:
    cameras: list[Camera1] = []

    def open_camera() -> Camera:
        cameras.append(Camera1())
        return cameras[-1]

    sup = CameraSupervisor(open_camera, timeout=0.2, max_failures=3)
    with sup.capture():
        pass
    cameras[0].hang.set()
    started = time.monotonic()
    with pytest.raises(CameraError, match=r"capture did not return within 2.2 s \(camera hung"):
        sup.capture()
    assert time.monotonic() - started < 3
    assert cameras[0].closed == 1 and sup.failures == 1
    assert sup.retry_in == 0.5
    with sup.capture():  # reopened, on a new worker
        pass
    assert len(cameras) == 2 and sup.failures == 0
    assert cameras[0].threads.isdisjoint(cameras[1].threads)
    assert cameras[0].released == 1  # the first frame
    cameras[0].unhang.set()  # the stuck call returns late: its frame is released too
    time.sleep(0.3)
    assert cameras[0].released == 2
    sup.shutdown()


def test_a_stop_abandons_a_hung_capture_at_once() -> None:
    camera = Camera1()
    sup = CameraSupervisor(lambda: camera, timeout=30.0, max_failures=3)
    sup.stop = threading.Event()
    with sup.capture():
        pass
    camera.hang.set()
    threading.Timer(0.3, sup.stop.set).start()
    started = time.monotonic()
    with pytest.raises(CameraError, match="capture abandoned: stopping"):
        sup.capture()
    assert time.monotonic() - started < 1.5
    camera.unhang.set()
    sup.shutdown()


def test_failures_back_off_and_give_up_after_max_failures() -> None:
    def broken() -> Camera:
        raise CameraError("no camera")

    sup = CameraSupervisor(broken, timeout=1.0, max_failures=4, backoff=0.5, backoff_cap=1.5)
    delays = []
    for _ in range(3):
        with pytest.raises(CameraError, match="no camera"):
            sup.capture()
        delays.append(sup.retry_in)
    assert delays == [0.5, 1.0, 1.5]
    with pytest.raises(CameraFatalError, match=r"failed 4 times in a row.*last: no camera"):
        sup.capture()


# --- the wall-clock jobs ------------------------------------------------------------------


def test_jobs_run_on_their_period_and_survive_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobs = Jobs()
    runs: list[str] = []

    def broken() -> None:
        runs.append("broken")
        raise ValueError("job bug")

    jobs.every(0.2, lambda: runs.append("status"))
    jobs.every(0.3, broken)
    jobs.every(0, lambda: runs.append("never"))
    assert 0.1 < jobs.idle_seconds() <= 0.2
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        jobs.run_pending()
        time.sleep(min(0.02, jobs.idle_seconds()))
    assert 4 <= runs.count("status") <= 5
    assert 2 <= runs.count("broken") <= 3
    assert "never" not in runs
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "job" in errors[0].getMessage() and errors[0].exc_info


def test_the_status_line_counts_since_the_last_one() -> None:
    status = Status(since=100.0)
    assert status.text() == "seq 0, last publish never, ok"
    status.published, status.skipped, status.failed = 20, 3, 1
    status.last_seq = 41
    status.last_published_at = datetime(2026, 11, 21, 12, 0, 1, 500000, tzinfo=UTC)
    status.failing = "cannot reach the S3 endpoint"
    assert status.line(110.0) == (
        "status: 20 published (2.00/s), 3 skipped, 1 failed in 10 s; seq 41, last publish "
        "2026-11-21T12:00:01.500Z, failing: cannot reach the S3 endpoint"
    )
    assert (status.published, status.skipped, status.failed, status.since) == (0, 0, 0, 110.0)
    assert status.text().startswith("seq 41, ")


def test_a_camera_that_opens_after_its_timeout_is_closed() -> None:
    """An open abandoned for taking too long may still finish: that camera would hold
    the device and make every reopen fail, so it is closed as soon as it returns."""
    from livecam.camera.base import Worker

    closed = threading.Event()

    class Late(Camera):
        def capture(self) -> Frame:
            raise AssertionError("never captured")

        def close(self) -> None:
            closed.set()

    def slow_open() -> Camera:
        time.sleep(0.4)
        return Late()

    with pytest.raises(CameraError, match="did not return within"):
        Worker().call(slow_open, 0.1, "opening the camera")
    assert closed.wait(5)
