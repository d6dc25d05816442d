"""The fault suite: every fault a live cam meets, each a bounded, self-stopping test on
loopback. Figures printed here (-s) are recorded in docs/reliability.md."""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config
from livecam.camera.base import Camera, Frame
from livecam.camera.testpattern import TestPatternCamera
from livecam.errors import CameraFatalError
from livecam.loop import Publisher
from livecam.targets import local as local_target
from livecam.targets.local import LocalTarget
from livecam.targets.s3 import S3Target

from .conftest import PUBLISHER, MotoServer, run_cli, s3_client, write_config
from .faultproxy import Fault, FaultProxy, manifest_never_ahead

# --- helpers -----------------------------------------------------------------------------


class Running:
    """A Publisher.run on a thread, stopped by `stop()`; what it logged is kept."""

    def __init__(self, pub: Publisher) -> None:
        self.pub = pub
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.pub.run(self.stop_event)
        except BaseException as e:
            self.error = e

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the publisher did not stop"
        self.pub.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def warnings(caplog: pytest.LogCaptureFixture, since: float = 0.0) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.created >= since
    ]


def local_cfg(
    path: Path, interval: float = 0.2, size: tuple[int, int] = (640, 480), **kw: Any
) -> config.Config:
    return config.parse(
        {
            "camera": {
                "source": "test",
                "width": size[0],
                "height": size[1],
                "interval": interval,
                **kw.pop("camera", {}),
            },
            "target": {"kind": "local", "path": str(path)},
            "publish": {"status_interval": 0},
            **kw,
        }
    )


def published_frame_is_intact(directory: Path) -> int:
    """The published manifest parses and every image it names decodes at its size."""
    m = json.loads((directory / "live.json").read_bytes())
    for name, entry in m["images"].items():
        with Image.open(directory / name) as im:
            im.load()
            assert im.size == (entry["width"], entry["height"]), name
    return int(m["seq"])


def temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


# --- S3: slow server, 500s and 503 SlowDown ----------------------------------------------


def s3_publisher(endpoint: str, bucket: str, interval: float, **target: Any) -> Publisher:
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240, "interval": interval},
            "target": {
                "kind": "s3",
                "bucket": bucket,
                "prefix": "cam/",
                "endpoint_url": endpoint,
                "region": "us-east-1",
                **target,
            },
            "publish": {"status_interval": 0},
            "site": {"enabled": False},
        }
    )
    camera = TestPatternCamera(320, 240)
    return Publisher(cfg, lambda: camera, S3Target(cfg.target))


def s3_seq(endpoint: str, bucket: str) -> int:
    body = s3_client(endpoint).get_object(Bucket=bucket, Key="cam/live.json")["Body"].read()
    return int(json.loads(body)["seq"])


def test_slow_server_past_the_read_timeout(
    moto_server: MotoServer, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    interval = 1.0
    stalling = threading.Event()
    proxy = FaultProxy(
        moto_server.port, lambda m, p: Fault(stall=3.0) if stalling.is_set() else None
    )
    pub = s3_publisher(proxy.url, bucket, interval, read_timeout=1.0, connect_timeout=1.0)
    running = Running(pub)
    try:
        wait_until(lambda: pub.seq >= 2, 20, "first frames")
        stalling.set()
        started = time.monotonic()
        time.sleep(6)
        stalling.clear()
        cleared = time.monotonic()
        before = pub.seq
        resumed = wait_until(lambda: pub.seq > before, 10, "publishing resumed")
    finally:
        running.stop()
        proxy.close()
    assert running.error is None
    lines = warnings(caplog)
    assert any("did not answer in time" in ln for ln in lines), lines
    assert len(lines) <= 6, lines
    assert resumed <= 2 * interval + 1.0, resumed
    assert manifest_never_ahead(proxy.log, "cam/") == []
    print(
        f"slow server: stalled {cleared - started:.0f} s, {len(lines)} warnings, "
        f"resumed {resumed:.2f} s after it answered again"
    )


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "SlowDown")])
def test_error_replies_at_a_rate(
    moto_server: MotoServer, bucket: str, caplog: pytest.LogCaptureFixture, status: int, code: str
) -> None:
    rng = random.Random(status)
    lock = threading.Lock()

    def rule(method: str, path: str) -> Fault | None:
        with lock:
            hit = method == "PUT" and rng.random() < 0.3
        return Fault(status=status, code=code) if hit else None

    proxy = FaultProxy(moto_server.port, rule)
    pub = s3_publisher(proxy.url, bucket, 0.2)
    running = Running(pub)
    try:
        time.sleep(8)
    finally:
        running.stop()
        proxy.close()
    assert running.error is None
    injected = sum(1 for _, m, _, s in proxy.log.requests if s == status)
    published = len(proxy.log.manifests)
    assert injected > 10
    assert published > 5  # one SDK retry absorbs most injected errors; the loop the rest
    assert manifest_never_ahead(proxy.log, "cam/") == []
    assert s3_seq(moto_server.url, bucket) == pub.seq
    lines = warnings(caplog)
    assert len(lines) <= published, lines  # never a line per request
    print(
        f"{status} {code} on 30% of PUTs for 8 s: {injected} injected, "
        f"{published} frames published, {len(lines)} warning lines"
    )


# --- local target: disk full, permission denied, directory deleted ------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[bool]:
    """Mount a tmpfs of `size` at `path` if this machine lets us (root); yields whether."""
    path.mkdir(parents=True, exist_ok=True)
    ok = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def test_disk_full_keeps_the_published_frame_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "www"
    with small_tmpfs(target, "1200k") as mounted:
        full = threading.Event()
        if not mounted:  # no tmpfs here: inject ENOSPC at the write instead
            real_write_all = local_target._write_all

            def write_all(fd: int, data: bytes | memoryview) -> None:
                if full.is_set():
                    real_write_all(fd, bytes(data)[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")
                real_write_all(fd, data)

            monkeypatch.setattr(local_target, "_write_all", write_all)
        cfg = local_cfg(target, interval=0.1, size=(2028, 1520))
        camera = TestPatternCamera(2028, 1520)
        pub = Publisher(cfg, lambda: camera, LocalTarget(target))
        running = Running(pub)
        try:
            wait_until(lambda: pub.seq >= 1, 20, "first frame")
            if mounted:  # fill the disk, leaving less than one frame
                filler = target / "filler.bin"
                with contextlib.suppress(OSError), open(filler, "wb") as f:
                    f.write(b"\0" * 1200 * 1024)
            else:
                full.set()
            failed = wait_until(lambda: pub.outage.failures >= 3, 20, "failures")
            stuck = pub.seq
            time.sleep(1)
            assert pub.seq == stuck
            assert published_frame_is_intact(target) == stuck
            assert temp_files(target) == []
            if mounted:
                (target / "filler.bin").unlink()
            else:
                full.clear()
            resumed = wait_until(lambda: pub.seq > stuck, 10, "resumed")
        finally:
            running.stop()
        assert published_frame_is_intact(target) == pub.seq
        assert temp_files(target) == []
    lines = warnings(caplog)
    assert any("no space left on device" in ln for ln in lines), lines
    print(
        f"disk full ({'tmpfs' if mounted else 'injected ENOSPC'}): failing after "
        f"{failed:.1f} s, frame {stuck} stayed intact, resumed {resumed:.2f} s after space "
        f"came back; {len(lines)} warnings"
    )


def test_permission_denied_keeps_the_frame_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "www"
    cfg = local_cfg(target, interval=0.1)
    camera = TestPatternCamera(640, 480)
    pub = Publisher(cfg, lambda: camera, LocalTarget(target))
    denied = threading.Event()
    real_open = os.open

    def guarded_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if denied.is_set() and str(path).startswith(str(target)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, mode, **kw)

    # As root, chmod does not deny anything: inject EACCES where the kernel would.
    real_chmod = os.geteuid() != 0
    if not real_chmod:
        monkeypatch.setattr("livecam.targets.local.os.open", guarded_open)
    running = Running(pub)
    try:
        wait_until(lambda: pub.seq >= 1, 20, "first frame")
        if real_chmod:
            target.chmod(0o555)
        else:
            denied.set()
        wait_until(lambda: pub.outage.failures >= 2, 10, "failures")
        stuck = pub.seq
        assert published_frame_is_intact(target) == stuck
        if real_chmod:
            target.chmod(0o755)
        else:
            denied.clear()
        wait_until(lambda: pub.seq > stuck, 10, "resumed")
    finally:
        running.stop()
    assert temp_files(target) == []
    assert any("permission denied" in ln for ln in warnings(caplog))


def test_directory_deleted_under_the_publisher(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "www"
    pub = Publisher(
        local_cfg(target, interval=0.1), lambda: TestPatternCamera(640, 480), LocalTarget(target)
    )
    running = Running(pub)
    try:
        wait_until(lambda: pub.seq >= 2, 20, "first frames")
        shutil.rmtree(target)
        before = pub.seq
        wait_until(lambda: (target / "live.json").exists() and pub.seq > before + 1, 10, "back")
    finally:
        running.stop()
    assert published_frame_is_intact(target) == pub.seq
    assert (target / "index.html").is_file()  # the page came back with it
    assert any("was deleted; recreated it" in ln for ln in warnings(caplog))


# --- camera: raises, garbage, hangs ------------------------------------------------------


class BadCamera(Camera):
    """Fails as configured; counts opens through the factory."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.closed = 0

    def capture(self) -> Frame:
        now = datetime.now(UTC)
        if self.mode == "raises":
            raise OSError(5, "Input/output error")
        if self.mode == "garbage-mode":
            return Frame(Image.new("CMYK", (640, 480)), now)
        if self.mode == "garbage-tiny":
            return Frame(Image.new("RGB", (1, 1)), now)
        if self.mode == "garbage-type":
            return b"\xff\xd8 not a frame"  # type: ignore[return-value]
        if self.mode == "hangs":
            time.sleep(60)  # bounded: the thread is a daemon and dies with the test process
        return Frame(Image.new("RGB", (640, 480), (50, 60, 70)), now)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize(
    "mode", ["raises", "garbage-mode", "garbage-tiny", "garbage-type", "hangs"]
)
def test_camera_failures_reopen_then_exit_for_systemd(tmp_path: Path, mode: str) -> None:
    opened: list[BadCamera] = []

    def factory() -> Camera:
        opened.append(BadCamera(mode))
        return opened[-1]

    cfg = local_cfg(tmp_path / "www", interval=0.1, camera={"timeout": 0.3, "max_failures": 3})
    pub = Publisher(cfg, factory, LocalTarget(tmp_path / "www"), backoff=0.05)
    started = time.monotonic()
    with pytest.raises(CameraFatalError, match="camera failed 3 times in a row"):
        pub.run(threading.Event())
    took = time.monotonic() - started
    pub.close()
    assert len(opened) == 3  # closed and reopened after each failure
    assert all(c.closed == 1 for c in opened)
    assert took < 3 * (0.3 + 2) + 2, took  # a hung capture is bounded


def test_camera_recovers_after_a_few_bad_frames(tmp_path: Path) -> None:
    modes = iter(["raises", "hangs", "garbage-mode", "good", "good", "good", "good"])

    def factory() -> Camera:
        return BadCamera(next(modes, "good"))

    cfg = local_cfg(tmp_path / "www", interval=0.05, camera={"timeout": 0.3, "max_failures": 5})
    pub = Publisher(cfg, factory, LocalTarget(tmp_path / "www"), backoff=0.05)
    running = Running(pub)
    try:
        wait_until(lambda: pub.seq >= 3, 20, "frames after recovery")
    finally:
        running.stop()
    assert running.error is None


def test_the_run_command_exits_non_zero_when_the_camera_gives_up(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "command"
        command = ["{sys.executable}", "-c", "import sys; sys.exit(3)"]
        interval = 0.1
        max_failures = 2
        [target]
        kind = "local"
        path = "{tmp_path / "www"}"
        """,
    )
    result = run_cli("run", "-c", str(path))
    assert result.returncode == 1
    assert "camera failed 2 times in a row, giving up" in result.stderr
    assert "Traceback" not in result.stderr


# --- process: SIGTERM mid-upload, SIGKILL mid-write ---------------------------------------


def test_sigterm_mid_upload_exits_within_2_s(
    tmp_path: Path, moto_server: MotoServer, bucket: str, s3_env: dict
) -> None:  # type: ignore[type-arg]
    stall = threading.Event()
    proxy = FaultProxy(
        moto_server.port, lambda m, p: Fault(stall=30) if stall.is_set() and m == "PUT" else None
    )
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 640
        height = 480
        interval = 0.5
        [target]
        kind = "s3"
        bucket = "{bucket}"
        endpoint_url = "{proxy.url}"
        region = "us-east-1"
        read_timeout = 60
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(path)], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: len(proxy.log.manifests) >= 2, 30, "first frames")
        stall.set()
        wait_until(lambda: proxy.log.in_flight > 0, 10, "an upload in flight")
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        proc.kill()
        proxy.close()
    assert code == 0
    assert took < 2.0, took
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err
    print(f"SIGTERM with an upload stalled in flight: exit 0 after {took:.2f} s")


def test_sigkill_mid_write_leaves_the_frame_intact(tmp_path: Path) -> None:
    target = tmp_path / "www"
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 2028
        height = 1520
        interval = 0
        [target]
        kind = "local"
        path = "{target}"
        """,
    )
    rng = random.Random(7)
    leftovers = 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, str(PUBLISHER), "run", "-c", str(path)], stderr=subprocess.DEVNULL
        )
        try:
            wait_until(lambda: (target / "live.json").exists(), 30, "first frame")
            time.sleep(rng.random())
            # Aim for the moment a temp file is being written, then kill.
            with contextlib.suppress(AssertionError):
                wait_until(lambda: bool(temp_files(target)), 5, "a write in progress")
        finally:
            proc.kill()  # SIGKILL: no handler, no cleanup
            proc.wait()
        published_frame_is_intact(target)
        leftovers += len(temp_files(target))
    result = run_cli("once", "-c", str(path))
    assert result.returncode == 0
    assert temp_files(target) == []
    published_frame_is_intact(target)
    print(
        f"SIGKILL x5 mid-run: frame always intact; {leftovers} temp file(s) left, "
        "all removed by the next start"
    )


CRASH_HOOK = """
import os, signal
import livecam.targets.local as local

_real_write_all = local._write_all
_count = [0]


def _crashing(fd, data):
    _count[0] += 1
    if _count[0] == int(os.environ["LIVECAM_CRASH_AT_WRITE"]):
        _real_write_all(fd, bytes(data)[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    _real_write_all(fd, data)


local._write_all = _crashing
"""


def test_sigkill_in_the_middle_of_a_write(tmp_path: Path) -> None:
    """Deterministic: the process kills itself with half an image in its temp file."""
    target = tmp_path / "www"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "crashhook.py").write_text(CRASH_HOOK)
    runner = "import crashhook, sys; from livecam.cli import main; sys.exit(main())"
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 1280
        height = 720
        interval = 0
        [target]
        kind = "local"
        path = "{target}"
        """,
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{hook}:{PUBLISHER.parent}",
        "LIVECAM_CRASH_AT_WRITE": "14",
    }  # page (6) + frame 1 (4) + half of frame 2
    result = subprocess.run(
        [sys.executable, "-c", runner, "run", "-c", str(path)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL
    assert len(temp_files(target)) == 1  # half a JPEG, under its temp name
    assert published_frame_is_intact(target) == 1
    result2 = run_cli("once", "-c", str(path))
    assert result2.returncode == 0
    assert "removed 1 temp file(s) left by an earlier run" in result2.stderr
    assert temp_files(target) == []
    assert published_frame_is_intact(target) == 2


# --- clock jumps -------------------------------------------------------------------------


def test_wall_clock_jumps_do_not_disturb_cadence_or_seq(tmp_path: Path) -> None:
    offset = [timedelta(0)]
    captures: list[tuple[float, datetime]] = []

    def wall() -> datetime:
        return datetime.now(UTC) + offset[0]

    camera = TestPatternCamera(320, 240, now=wall)
    real_capture = camera.capture

    def capture() -> Frame:
        frame = real_capture()
        captures.append((time.monotonic(), frame.captured_at))
        return frame

    camera.capture = capture  # type: ignore[method-assign]
    pub = Publisher(
        local_cfg(tmp_path, interval=0.25, size=(320, 240)), lambda: camera, LocalTarget(tmp_path)
    )
    seqs: list[int] = []
    running = Running(pub)
    try:
        for jump in (timedelta(hours=-1), timedelta(days=1)):  # NTP fixing a Pi's clock
            time.sleep(1.0)
            seqs.append(pub.seq)
            offset[0] += jump
        time.sleep(1.0)
        seqs.append(pub.seq)
    finally:
        running.stop()
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(captures)]
    assert max(gaps) < 0.25 + 0.2 and min(gaps) > 0.25 - 0.1, gaps  # monotonic cadence
    assert seqs == sorted(seqs) and seqs[-1] - seqs[0] >= 6  # kept publishing
    walls = [c[1] for c in captures]
    assert any(b - a < timedelta(minutes=-59) for a, b in itertools.pairwise(walls))
    assert any(b - a > timedelta(hours=23) for a, b in itertools.pairwise(walls))
    m = json.loads((tmp_path / "live.json").read_text())
    assert m["captured_at"].endswith("Z")  # UTC wall time, as the camera saw it
    assert m["seq"] == pub.seq


# --- soak ----------------------------------------------------------------------------------


def proc_status(pid: int) -> tuple[int, int]:
    """RSS in KiB and open file descriptors of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def soak(tmp_path: Path, frames: int) -> dict[str, Any]:
    shm = Path("/dev/shm")  # tmpfs, as a Pi's local target should be
    target = (shm if shm.is_dir() else Path(tempfile.gettempdir())) / f"livecam-soak-{os.getpid()}"
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 320
        height = 240
        interval = 0
        [[variants]]
        name = "live.jpeg"
        [[variants]]
        name = "small.jpeg"
        width = 160
        height = 120
        [target]
        kind = "local"
        path = "{target}"
        [publish]
        status_interval = 0
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(path)], stderr=subprocess.DEVNULL
    )
    samples: list[tuple[int, int, int]] = []
    started = time.monotonic()
    try:
        seq = 0
        while seq < frames and time.monotonic() - started < 1800:
            time.sleep(0.5)
            with contextlib.suppress(OSError, ValueError, KeyError):
                seq = json.loads((target / "live.json").read_bytes())["seq"]
                samples.append((seq, *proc_status(proc.pid)))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        shutil.rmtree(target, ignore_errors=True)
    elapsed = time.monotonic() - started
    warm = [s for s in samples if s[0] >= frames * 0.1]
    return {
        "frames": samples[-1][0],
        "seconds": elapsed,
        "rss_kib_first": warm[0][1],
        "rss_kib_last": warm[-1][1],
        "rss_kib_max": max(s[1] for s in warm),
        "fds": sorted({s[2] for s in warm}),
    }


def test_soak_short_rss_and_fds_flat(tmp_path: Path) -> None:
    r = soak(tmp_path, 2000)
    assert r["frames"] >= 2000
    assert len(r["fds"]) <= 2 and max(r["fds"]) - min(r["fds"]) <= 2, r
    assert r["rss_kib_last"] - r["rss_kib_first"] < 8 * 1024, r
    print(f"soak: {r}")


@pytest.mark.slow
def test_soak_20000_frames_rss_and_fds_flat(tmp_path: Path) -> None:
    r = soak(tmp_path, 20000)
    assert r["frames"] >= 20000
    assert max(r["fds"]) - min(r["fds"]) <= 2, r
    assert r["rss_kib_last"] - r["rss_kib_first"] < 8 * 1024, r
    print(f"soak: {r}")
