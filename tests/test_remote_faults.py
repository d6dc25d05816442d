"""The SFTP and WebDAV targets under load and through an outage: concurrent readers
through a second nginx serving the directory the target writes never see a torn image
or a manifest naming a missing one; the server stopped mid-run and started again is
survived. Default runs are short; --slow runs the full 20 s and 10 s versions."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.loop import Publisher
from livecam.targets import open_target

from .conftest import Nginx
from .remoteservers import DAV_PASSWORD, DavNginx, Sshd, descendants
from .test_faults import Running, wait_until
from .test_load import _reader_process


class Remote:
    """A started SFTP or WebDAV server, the directory it writes and a target table."""

    def __init__(self, kind: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kind = kind
        # Outside pytest's 0700 tmp: the reader nginx's workers must get in.
        self.root = Path(tempfile.mkdtemp(prefix="livecam-remote-"))
        self.root.chmod(0o777)
        self.www = self.root / "cam"
        self.server: Sshd | DavNginx
        if kind == "sftp":
            self.server = Sshd().start()
            self.table = self.server.target(self.www)
        else:
            self.server = DavNginx(self.root).start()
            monkeypatch.setenv("LIVECAM_WEBDAV_PASSWORD", DAV_PASSWORD)
            self.table = self.server.target("cam/")

    def publisher(self, interval: float, size: tuple[int, int] = (640, 360)) -> Publisher:
        cfg = config.parse(
            {
                "camera": {"source": "test", "width": size[0], "height": size[1]}
                | {"interval": interval},
                "target": self.table,
                "publish": {"status_interval": 0},
            }
        )
        camera = TestPatternCamera(*size)
        return Publisher(cfg, lambda: camera, open_target(cfg.target))

    def seq(self) -> int:
        try:
            return int(json.loads((self.www / "live.json").read_bytes())["seq"])
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self.server.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(params=["sftp", "webdav"])
def remote(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Remote]:
    r = Remote(request.param, tmp_path, monkeypatch)
    yield r
    r.close()


def readers_see_whole_frames(remote: Remote, seconds: float) -> dict[str, Any]:
    pub = remote.publisher(interval=0.2)
    running = Running(pub)
    reader_nginx: Nginx | None = None
    try:
        wait_until(lambda: remote.seq() >= 1, 20, "first frame")
        remote.www.chmod(0o755)
        reader_nginx = Nginx(remote.www).start()
        queue: Any = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(
                target=_reader_process, args=(reader_nginx.port, 4, seconds, queue)
            )
            for _ in range(2)
        ]
        start = remote.seq()
        for w in workers:
            w.start()
        results = [queue.get(timeout=seconds + 60) for _ in workers]
        for w in workers:
            w.join(30)
        frames = remote.seq() - start
    finally:
        running.stop()
        if reader_nginx is not None:
            reader_nginx.close()
    assert running.error is None
    total: dict[str, Any] = {"manifests": 0, "images": 0, "decoded": 0, "bad": []}
    for r in results:
        for k in ("manifests", "images", "decoded"):
            total[k] += r[k]
        total["bad"] += r["bad"]
    total["frames"] = frames
    print(f"{remote.kind} readers {seconds:g} s: {json.dumps(total)}")
    assert total["bad"] == [], total["bad"]
    assert total["images"] > 20 and total["decoded"] > 0, total
    assert frames >= seconds / 0.2 / 4, total  # the publisher kept going meanwhile
    return total


def test_concurrent_readers_never_see_a_torn_or_missing_image(remote: Remote) -> None:
    readers_see_whole_frames(remote, 4)


@pytest.mark.slow
def test_concurrent_readers_20_s(remote: Remote) -> None:
    readers_see_whole_frames(remote, 20)


def outage(remote: Remote, down: float, caplog: pytest.LogCaptureFixture) -> None:
    interval = 1.0
    pub = remote.publisher(interval=interval, size=(320, 180))
    with caplog.at_level(logging.INFO):
        running = Running(pub)
        try:
            wait_until(lambda: remote.seq() >= 2, 20, "first frames")
            remote.server.stop()
            down_at = time.time()  # log records carry wall-clock times
            time.sleep(down)
            stuck = remote.seq()
            remote.server.start()
            back_at = time.time()
            before = remote.seq()
            resumed = wait_until(lambda: remote.seq() > before, 10, "resumed")
            time.sleep(1)
        finally:
            running.stop()
    assert running.error is None
    assert stuck == before  # nothing was published while the server was down
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and down_at <= r.created <= back_at + 1
    ]
    steps = [ln for ln in lines if "publish failed" in ln]
    # One line per backoff step (attempts 1, 2, 4, 8, ...), not one per frame.
    assert 1 <= len(steps) <= 2 + int(down).bit_length(), lines
    assert not [ln for ln in lines if "publish failed" not in ln], lines
    assert any("publishing resumed after" in r.getMessage() for r in caplog.records)
    assert all(DAV_PASSWORD not in r.getMessage() for r in caplog.records)
    # The loop's backoff is capped at one interval: back within two.
    assert resumed <= 2 * interval + 0.5, resumed
    print(
        f"{remote.kind}: down {down:g} s, {len(steps)} warning lines, resumed "
        f"{resumed:.2f} s after the server came back"
    )


def test_server_outage_is_survived(remote: Remote, caplog: pytest.LogCaptureFixture) -> None:
    outage(remote, 3.0, caplog)


@pytest.mark.slow
def test_server_outage_of_10_s_is_survived(
    remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    outage(remote, 10.0, caplog)


def test_an_sftp_server_that_stops_answering_is_survived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sshd frozen (SIGSTOP): the connection stays open but nothing answers; the read
    timeout ends the attempt, a new connection follows once it answers again."""
    remote = Remote("sftp", tmp_path, monkeypatch)
    assert isinstance(remote.server, Sshd) and remote.server.proc is not None
    remote.table["read_timeout"] = 1.0
    pub = remote.publisher(interval=0.5, size=(320, 180))
    running = Running(pub)
    try:
        wait_until(lambda: remote.seq() >= 1, 20, "first frame")
        pids = [remote.server.proc.pid, *descendants(remote.server.proc.pid)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: pub.outage.failures >= 1, 20, "a timeout")
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        before = remote.seq()
        wait_until(lambda: remote.seq() > before, 20, "resumed")
    finally:
        running.stop()
        remote.close()
    assert running.error is None
