"""systemd's watchdog under faults, over a real datagram socket: fed through a target
outage (the camera still delivers), starved by a camera that does not or hangs."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from livecam import config
from livecam.camera.base import Camera, Frame
from livecam.loop import Publisher
from livecam.notify import Notifier
from livecam.targets.local import LocalTarget

from .conftest import PUBLISHER, ROOT, MotoServer, write_config
from .faultproxy import Fault, FaultProxy

WATCHDOG_SEC = 4.0


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    directory = tempfile.mkdtemp(prefix="livecam-notify-")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield sock, path
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def listen(sock: socket.socket, seconds: float) -> list[tuple[float, str]]:
    """Every message received for `seconds`, with its monotonic arrival time."""
    messages = []
    sock.settimeout(0.1)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            messages.append((time.monotonic(), sock.recv(4096).decode()))
        except TimeoutError:
            continue
    return messages


def run_under_watchdog(
    tmp_path: Path, sock: socket.socket, notify_path: str, config: str, seconds: float
) -> list[tuple[float, str]]:
    """`run` as systemd starts it (NOTIFY_SOCKET, WATCHDOG_USEC) for `seconds` after
    READY=1, then SIGTERM; the messages from READY=1 on."""
    cfg = write_config(tmp_path, config)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": notify_path,
        "WATCHDOG_USEC": str(int(WATCHDOG_SEC * 1e6)),
    }
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(cfg)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        sock.settimeout(30)
        first = sock.recv(4096).decode()
        assert first.startswith("READY=1"), first
        messages = [(time.monotonic(), first), *listen(sock, seconds)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    return messages


def ping_gaps(messages: list[tuple[float, str]], until: float) -> list[float]:
    """Seconds between READY=1, each WATCHDOG=1 and `until`."""
    times = [t for t, m in messages if m.startswith(("READY=1", "WATCHDOG=1"))]
    return [b - a for a, b in itertools.pairwise([*times, until])]


def test_the_watchdog_is_fed_through_a_target_outage(
    tmp_path: Path,
    notify_socket: tuple[socket.socket, str],
    moto_server: MotoServer,
    bucket: str,
) -> None:
    sock, path = notify_socket
    # An endpoint that takes connections and drops them unanswered (a broken uplink).
    proxy = FaultProxy(moto_server.port, lambda method, p: Fault(drop=True))
    config = f"""
        [camera]
        source = "test"
        width = 320
        height = 240
        interval = 1.0
        [target]
        kind = "s3"
        bucket = "{bucket}"
        endpoint_url = "{proxy.url}"
        region = "us-east-1"
        max_attempts = 1
        """
    try:
        seconds = 3 * WATCHDOG_SEC + 1
        messages = run_under_watchdog(tmp_path, sock, path, config, seconds)
        ended = messages[0][0] + seconds
    finally:
        proxy.close()
    assert any(m == 0 for _, _, _, m in proxy.log.requests)  # it did drop them
    gaps = ping_gaps(messages, ended)
    assert max(gaps) < WATCHDOG_SEC, gaps  # systemd would not have restarted it
    statuses = [m.split("STATUS=", 1)[1] for _, m in messages[1:] if "STATUS=" in m]
    assert statuses and all("failing: " in s for s in statuses), statuses
    assert "connection to the S3 endpoint failed" in statuses[-1]
    print(
        f"target outage under WatchdogSec={WATCHDOG_SEC:g}: {len(gaps) - 1} pings in "
        f"{seconds:g} s, longest gap {max(gaps):.2f} s; STATUS={statuses[-1]}"
    )


def test_a_camera_that_delivers_nothing_starves_the_watchdog(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    config = f"""
        [camera]
        source = "command"
        command = ["sleep", "60"]
        timeout = 1.0
        max_failures = 100
        interval = 0.5
        [target]
        kind = "local"
        path = "{tmp_path / "www"}"
        """
    messages = run_under_watchdog(tmp_path, sock, path, config, 3 * WATCHDOG_SEC)
    assert not [m for _, m in messages if m.startswith("WATCHDOG=1")], messages


class HangingCamera(Camera):
    """Delivers frames until `hang` is set, then blocks in capture (a stuck driver)."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.released = threading.Event()

    def capture(self) -> Frame:
        if self.hang.is_set():
            self.released.wait(30)
        return Frame(Image.new("RGB", (64, 48)), datetime.now(UTC))


def test_a_hung_capture_stops_the_pings(
    notify_socket: tuple[socket.socket, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("WATCHDOG_USEC", "600000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    cfg = config.parse(
        {
            "camera": {"source": "test", "interval": 0.2, "timeout": 0.3, "max_failures": 100},
            "variants": [{"name": "live.jpeg"}],
            "target": {"kind": "local", "path": str(tmp_path)},
            "publish": {"status_interval": 0},
        }
    )
    camera = HangingCamera()
    pub = Publisher(
        cfg, lambda: camera, LocalTarget(tmp_path), notifier=Notifier(path), site_files=list
    )
    stop = threading.Event()
    thread = threading.Thread(target=pub.run, args=(stop,), daemon=True)
    thread.start()
    try:
        before = listen(sock, 1.5)
        camera.hang.set()
        hung = time.monotonic()
        after = listen(sock, 4.0)  # an abandoned capture (2.3 s), a backoff, another
    finally:
        stop.set()
        camera.released.set()
        thread.join(10)
        pub.close()
    assert len([m for _, m in before if m.startswith("WATCHDOG=1")]) >= 3
    late = [t - hung for t, m in after if m.startswith("WATCHDOG=1") and t - hung > 0.3]
    assert late == [], late  # systemd restarts it after WatchdogSec
