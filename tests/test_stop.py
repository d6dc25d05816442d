"""Stopping: a real `python3 publisher.py` stopped by a real signal in each state it can
stall in (start-up against an endpoint that never answers, a capture that hangs, a
render, a publish stalled on S3, a backoff wait), and the command camera's process
group gone afterwards. The stop times print with -s and are listed in
docs/reliability.md."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from .conftest import PUBLISHER, ROOT, MotoServer, write_config
from .faultproxy import Fault, FaultProxy

FAKES = Path(__file__).parent / "fakes"
LIMIT = 2.0  # seconds from the signal to the exit, in every state


@dataclass
class Publisher:
    """`python3 publisher.py COMMAND -c CONFIG` with its stderr in a file."""

    proc: subprocess.Popen[bytes]
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, float]:
        """Send `sig`; (exit code, seconds until the process was gone)."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"{sig.name} did not stop it within 15 s:\n{self.log()}") from None
        return code, time.monotonic() - sent


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[Callable[..., Publisher]]:
    started: list[Publisher] = []

    def start(
        command: str, config: Path, env: dict[str, str] | None = None, *args: str
    ) -> Publisher:
        stderr = tmp_path / f"stderr-{len(started)}.txt"
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(PUBLISHER), command, "-c", str(config), *args],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, **(env or {})},
            )
        started.append(Publisher(proc, stderr))
        return started[-1]

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def group(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def published(www: Path) -> int:
    return int(json.loads((www / "live.json").read_text())["seq"])


def report(state: str, took: float) -> None:
    print(f"stop time, {state}: {took:.2f} s")


# --- a command camera that hangs, with a grandchild ---------------------------------------


def hanging_camera(tmp_path: Path) -> tuple[str, Path]:
    """A command camera's config lines: a shell script that starts a grandchild, writes
    its own pid (= its process group) to a file, and never writes a frame."""
    pid_file = tmp_path / "camera.pid"
    script = tmp_path / "camera.sh"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $$ > {pid_file}\nsleep 300\n")
    script.chmod(0o755)
    lines = f"""
        source = "command"
        command = ["{script}"]
        timeout = 120
    """
    return lines, pid_file


def started(pid_file: Path) -> int:
    """The camera script's process group, once it has written it (a whole line)."""
    wait_until(
        lambda: pid_file.exists() and pid_file.read_text().endswith("\n"),
        30,
        "the camera command started",
    )
    return int(pid_file.read_text())


def local_config(tmp_path: Path, camera: str, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        f"""
        [camera]
        {camera}
        [target]
        kind = "local"
        path = "{tmp_path / "www"}"
        {extra}
        """,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_run_stopped_while_the_command_camera_hangs(
    tmp_path: Path, publisher: Callable[..., Publisher], sig: signal.Signals
) -> None:
    camera, pid_file = hanging_camera(tmp_path)
    p = publisher("run", local_config(tmp_path, camera))
    pgid = started(pid_file)
    time.sleep(0.3)
    assert len(group(pgid)) == 3  # the script and its two sleeps, one in the background
    code, took = p.stop(sig)
    report(f"run, command camera hung, {sig.name}", took)
    assert code == 0, p.log()
    assert took < LIMIT, p.log()
    wait_until(lambda: not group(pgid), 2, f"process group {pgid} gone")
    assert "Traceback" not in p.log()


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_once_interrupted_kills_the_command_and_exits_non_zero(
    tmp_path: Path, publisher: Callable[..., Publisher], sig: signal.Signals, code: int
) -> None:
    camera, pid_file = hanging_camera(tmp_path)
    p = publisher("once", local_config(tmp_path, camera))
    pgid = started(pid_file)
    time.sleep(0.3)
    got, took = p.stop(sig)
    report(f"once, command camera hung, {sig.name}", took)
    assert got == code, p.log()
    assert took < LIMIT, p.log()
    wait_until(lambda: not group(pgid), 2, f"process group {pgid} gone")
    assert not (tmp_path / "www" / "live.json").exists()
    assert "Traceback" not in p.log()


def test_check_interrupted_kills_the_command(
    tmp_path: Path, publisher: Callable[..., Publisher]
) -> None:
    camera, pid_file = hanging_camera(tmp_path)
    p = publisher("check", local_config(tmp_path, camera))
    pgid = started(pid_file)
    code, took = p.stop(signal.SIGINT)
    report("check, command camera hung, SIGINT", took)
    assert code == 130, p.log()
    assert took < LIMIT
    wait_until(lambda: not group(pgid), 2, f"process group {pgid} gone")


# --- the loop's own states ------------------------------------------------------------------


def test_run_stopped_mid_render_leaves_whole_files(
    tmp_path: Path, publisher: Callable[..., Publisher]
) -> None:
    """A large frame at interval 0: the signal lands in a capture, a render or a write;
    the worker finishes the frame it is on, and what is published stays whole."""
    www = tmp_path / "www"
    camera = 'source = "test"\nwidth = 4056\nheight = 3040\ninterval = 0'
    config = local_config(tmp_path, camera, "[publish]\nstatus_interval = 0")
    worst = 0.0
    for round in range(3):
        p = publisher("run", config)
        wait_until(lambda: (www / "live.json").exists(), 60, "a first frame")
        first = json.loads((www / "live.json").read_text())["seq"]
        wait_until(lambda: published(www) >= first + 2, 60, "frames")  # noqa: B023
        time.sleep(0.05 * round)
        code, took = p.stop()
        assert code == 0, p.log()
        worst = max(worst, took)
        manifest = json.loads((www / "live.json").read_text())
        for name, entry in manifest["images"].items():
            with Image.open(www / name) as image:
                image.load()  # whole: a torn JPEG fails here
                assert image.size == (entry["width"], entry["height"])
        assert [f.name for f in www.iterdir() if f.name.startswith(".livecam-")] == []
    report("run, local target, 4056x3040 at interval 0 (render or write)", worst)
    assert worst < LIMIT


def test_run_stopped_while_the_pi_camera_hangs(
    tmp_path: Path, publisher: Callable[..., Publisher]
) -> None:
    """The fake picamera2 (the one fake allowed) takes 60 s for a frame and then hangs in
    close(): the stop waits for neither."""
    camera = 'source = "picamera2"\nwidth = 640\nheight = 480\ntimeout = 60'
    env = {
        "PYTHONPATH": os.pathsep.join([str(FAKES), str(ROOT)]),
        "LIVECAM_FAKE_PICAMERA2": json.dumps({"frame_time": 60, "hang_on_close": True}),
    }
    p = publisher("run", local_config(tmp_path, camera), env)
    wait_until(lambda: "camera open: Pi camera" in p.log(), 30, "the camera open")
    time.sleep(0.5)
    code, took = p.stop()
    report("run, Pi camera hung in capture and in close", took)
    assert code == 0, p.log()
    assert took < LIMIT, p.log()


# --- S3: an endpoint that accepts and never answers ---------------------------------------


def s3_config(tmp_path: Path, bucket: str, url: str, extra: str = "") -> Path:
    return write_config(
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
        endpoint_url = "{url}"
        region = "us-east-1"
        {extra}
        """,
    )


@pytest.mark.parametrize(
    "timeouts", ["", "read_timeout = 600\nmax_attempts = 10"], ids=["default", "long"]
)
def test_run_stopped_during_a_start_up_stall(
    tmp_path: Path,
    publisher: Callable[..., Publisher],
    moto_server: MotoServer,
    bucket: str,
    timeouts: str,
) -> None:
    proxy = FaultProxy(moto_server.port, lambda m, p: Fault(stall=30))
    try:
        p = publisher("run", s3_config(tmp_path, bucket, proxy.url, timeouts))
        wait_until(lambda: proxy.log.in_flight > 0, 30, "a request stalled")
        time.sleep(0.5)
        code, took = p.stop()
    finally:
        proxy.close()
    report(f"run, S3 start-up stalled, {timeouts or 'default timeouts'!r}", took)
    assert code == 0, p.log()
    assert took < LIMIT, p.log()
    assert "Traceback" not in p.log()


def test_run_stopped_during_a_stalled_publish(
    tmp_path: Path, publisher: Callable[..., Publisher], moto_server: MotoServer, bucket: str
) -> None:
    stall = False
    proxy = FaultProxy(moto_server.port, lambda m, p: Fault(stall=30) if stall else None)
    try:
        p = publisher("run", s3_config(tmp_path, bucket, proxy.url))
        wait_until(lambda: len(proxy.log.manifests) >= 2, 30, "first frames")
        stall = True
        wait_until(lambda: proxy.log.in_flight > 0, 10, "an upload stalled")
        time.sleep(0.3)
        code, took = p.stop()
    finally:
        proxy.close()
    report("run, S3 upload stalled mid-publish", took)
    assert code == 0, p.log()
    assert took < LIMIT, p.log()


def test_run_stopped_in_a_backoff_wait(
    tmp_path: Path, publisher: Callable[..., Publisher], moto_server: MotoServer, bucket: str
) -> None:
    proxy = FaultProxy(
        moto_server.port, lambda m, p: Fault(status=503, code="SlowDown") if m == "PUT" else None
    )
    try:
        config = s3_config(tmp_path, bucket, proxy.url, "max_attempts = 1")
        p = publisher("run", config)
        wait_until(lambda: p.log().count("publish failed") >= 3, 30, "a few failures")
        time.sleep(0.2)
        code, took = p.stop()
    finally:
        proxy.close()
    report("run, S3 answering 503, in a backoff wait", took)
    assert code == 0, p.log()
    assert took < LIMIT, p.log()


def test_work_that_ends_well_after_the_signal_is_a_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signal that comes while `once` finishes its publish: the frame is out, so the
    work's result stands (exit 0), not 128+N; work that fails or stays busy is None."""
    from livecam import cli

    monkeypatch.setattr(cli, "_signalled", 0)  # put back after: main() exits at once if set

    def publishes() -> str:
        time.sleep(0.3)
        return "published frame 1"

    def fails() -> str:
        time.sleep(0.3)
        raise RuntimeError("upload failed")

    for work, expected in ((publishes, "published frame 1"), (fails, None)):
        with cli._Stop() as stop:
            worker = cli._Worker(work, stop)
            stop._received(signal.SIGTERM, None)
            assert worker.wait() == expected
            assert stop.signum == signal.SIGTERM
