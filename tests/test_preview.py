"""The live view on the LAN (`[preview]`): a real `publisher.py run` with the test camera
serving /, /stream.mjpg and /snapshot.jpeg on loopback, watched by real sockets and
Chromium. The load run's figures print with -s; `--slow` runs the 20 s stall."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import io
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config
from livecam.camera import open_camera
from livecam.camera.supervisor import CameraSupervisor
from livecam.camera.testpattern import TestPatternCamera
from livecam.errors import ConfigError
from livecam.loop import FrameResult
from livecam.preview.auth import Access, load_secret
from livecam.preview.frames import BOUNDARY, Producer, Slot, lores_variants
from livecam.rendered import Rendered

from .conftest import ROOT, free_port, run_cli, wait_for_port, write_config
from .pagetools import open_page
from .test_load import cpu_seconds
from .test_picam import RED, WHITE, YELLOW, colour_at, near
from .test_picam import fake as _picam_fake  # noqa: F401 - a fixture, used below
from .test_stop import Publisher, wait_until
from .test_stop import publisher as _stop_publisher  # noqa: F401 - a fixture, used below

SECRET = "s3cret-preview-DO-NOT-LOG-7f3a"
Start = Callable[..., Publisher]


@pytest.fixture
def publisher(request: pytest.FixtureRequest) -> Start:
    """test_stop's: `publisher.py COMMAND -c CONFIG` with its stderr in a file."""
    return request.getfixturevalue("_stop_publisher")  # type: ignore[no-any-return]


# --- config ------------------------------------------------------------------------


def parse(preview: dict[str, Any], source: str = "test") -> config.Config:
    return config.parse(
        {
            "camera": {"source": source, "command": "true"} if source == "command" else {},
            "target": {"kind": "local", "path": "/tmp/x"},
            "preview": preview,
        }
    )


def test_preview_is_off_and_local_by_default() -> None:
    p = parse({}).preview
    assert (p.enabled, p.bind, p.port, p.fps, p.max_clients, p.auth) == (
        False,
        "127.0.0.1",
        8080,
        10.0,
        8,
        "none",
    )


@pytest.mark.parametrize(
    ("preview", "error"),
    [
        ({"bind": "my host"}, "preview.bind: must be an IP address"),
        ({"port": 0}, "preview.port: must be an integer from 1 to 65535, got 0"),
        ({"fps": 0}, "preview.fps: must be a number > 0 and <= 30, got 0"),
        ({"fps": "fast"}, 'preview.fps: must be a number > 0 and <= 30, got "fast"'),
        ({"max_clients": 0}, "preview.max_clients: must be an integer from 1 to 64"),
        ({"auth": "digest"}, 'preview.auth: must be one of "none", "basic", "token"'),
        ({"user": "a:b"}, "preview.user: must be a user name"),
        ({"password": "x"}, "preview.password: unknown key"),
        ({"password_file": "/x"}, 'preview.password_file: only applies with auth = "basic"'),
    ],
)
def test_bad_preview_keys_name_the_key(preview: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        parse(preview)


def test_the_secret_comes_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVECAM_PREVIEW_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match=r"^preview.password_file: is required with auth"):
        load_secret(parse({"auth": "basic"}).preview)
    monkeypatch.setenv("LIVECAM_PREVIEW_PASSWORD", "from-env")
    assert load_secret(parse({"auth": "token"}).preview) == b"from-env"
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    assert load_secret(parse({"auth": "basic", "password_file": str(secret)}).preview) == (
        b"from-file"
    )
    with pytest.raises(ConfigError, match=r"^preview.password_file: cannot read"):
        load_secret(parse({"auth": "basic", "password_file": str(tmp_path / "no")}).preview)


def test_access_checks_basic_auth_and_tokens() -> None:
    basic = Access(parse({"auth": "basic", "user": "me"}).preview, b"pw")
    good = "Basic " + base64.b64encode(b"me:pw").decode()
    assert basic.allows(good, None)
    for bad in (None, "", "Basic !!", "Basic " + base64.b64encode(b"me:px").decode(),
                "Basic " + base64.b64encode(b"you:pw").decode(), "Bearer pw"):  # fmt: skip
        assert not basic.allows(bad, None), bad
    token = Access(parse({"auth": "token"}).preview, b"tok")
    assert token.allows("Bearer tok", None)
    assert token.allows(None, "a=1; livecam_preview=tok")
    for header, cookie in ((None, None), ("Bearer tox", None), (None, "livecam_preview=")):
        assert not token.allows(header, cookie)
    assert Access(parse({}).preview, b"").allows(None, None)


# --- frames --------------------------------------------------------------------------


def test_peek_waits_for_no_one_and_needs_an_open_camera() -> None:
    camera = TestPatternCamera(320, 180)
    sup = CameraSupervisor(lambda: camera, timeout=5, max_failures=3)
    try:
        assert sup.peek(lambda f: f.size) is None  # not open yet: the publisher opens it
        sup.capture().release()
        assert sup.peek(lambda f: f.size) == (320, 180)
        held, done = threading.Event(), threading.Event()

        def capturing() -> None:
            with sup._lock:
                held.set()
                done.wait(5)

        holder = threading.Thread(target=capturing)
        holder.start()
        held.wait(5)
        assert sup.peek(lambda f: f.size) is None  # busy: publishing comes first
        done.set()
        holder.join()
    finally:
        sup.shutdown()


def test_on_a_pi_the_preview_is_the_lores_stream_taken_while_a_frame_is_lent(
    request: pytest.FixtureRequest,
) -> None:
    """The fake picamera2 (tests/fakes) has two buffers, as livecam configures it: the
    publisher holds one while it renders; the preview's frames come through the other,
    from the lores stream sized for the preview box though no variant is small."""
    scenario = request.getfixturevalue("_picam_fake")(lores_marker=True)
    cfg = config.parse(
        {
            "camera": {"source": "picamera2", "width": 2028, "height": 1520, "timeout": 2.0},
            "variants": [{"name": "live.jpeg"}],
            "target": {"kind": "local", "path": "/tmp/x"},
            "preview": {"enabled": True},
        }
    )
    sup = CameraSupervisor(lambda: open_camera(cfg.camera, lores_variants(cfg)), 2.0, 3)
    slot = Slot()
    producer = Producer(cfg.preview, sup, slot, own_frames=True)
    try:
        with sup.capture():  # the publisher's frame, lent while it renders
            lores = scenario.instances[0].camera_configuration()["lores"]
            assert lores["size"] == (800, 600)
            producer.start()
            assert slot.join(8)
            first = slot.newer(0, 5)
            second = slot.newer(first.seq if first else 0, 5)
            assert first is not None and second is not None
            assert scenario.requests_out == 1  # each preview frame went straight back
        with Image.open(io.BytesIO(second.jpeg)) as im:
            assert im.size == (800, 600)
            assert near(colour_at(im, 0.5, 0.5), YELLOW)  # the lores stream's marker
            assert near(colour_at(im, 0.2, 0.2), RED) and near(colour_at(im, 0.8, 0.8), WHITE)
    finally:
        producer.close()
        sup.shutdown()
    assert scenario.requests_out == 0


def test_a_camera_that_does_not_stream_shows_the_smallest_published_variant() -> None:
    cfg = parse({"enabled": True}, source="command")
    slot = Slot()
    producer = Producer(cfg.preview, None, slot, own_frames=False)  # type: ignore[arg-type]
    images = [Rendered("big.jpeg", b"big", 800, 600), Rendered("small.jpeg", b"small", 320, 240)]
    result = FrameResult(1, False, images)
    producer.published(result)
    assert slot.frame is None  # nobody watches: nothing kept
    assert slot.join(8)
    producer.published(result)
    assert slot.frame is not None and slot.frame.jpeg == b"small"
    assert slot.stats()["encoded"] == 0 and slot.stats()["reused"] == 1


def test_a_slow_client_skips_to_the_latest_frame() -> None:
    slot = Slot()
    for i in range(5):
        slot.put(b"%d" % i, encoded=True)
    first = slot.newer(0, 0.1)
    assert first is not None and first.jpeg == b"4"  # latest wins, no backlog
    slot.put(b"5", encoded=True)
    slot.put(b"6", encoded=True)
    latest = slot.newer(first.seq, 0.1)
    assert latest is not None and latest.jpeg == b"6" and slot.skipped == 1
    assert slot.newer(latest.seq, 0.05) is None


# --- a real publisher ----------------------------------------------------------------


def preview_config(tmp_path: Path, port: int, extra: str = "", interval: float = 1.0) -> Path:
    out = tmp_path / "www"
    return write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 1280
        height = 720
        interval = {interval}
        [target]
        kind = "local"
        path = "{out}"
        [publish]
        status_interval = 0
        [preview]
        enabled = true
        port = {port}
        {extra}
        """,
    )


@contextmanager
def running(
    publisher: Start, tmp_path: Path, extra: str = "", env: dict[str, str] | None = None, **kw: Any
) -> Iterator[tuple[Publisher, str]]:
    """`run -v` with the preview on a free port; yields it and the preview's base URL."""
    port = free_port()
    pub = publisher("run", preview_config(tmp_path, port, extra, **kw), env, "-v")
    try:
        wait_for_port(port)
    except TimeoutError:
        raise AssertionError(pub.log()) from None
    wait_until(lambda: (tmp_path / "www" / "live.json").exists(), 20, "a first frame")
    yield pub, f"http://127.0.0.1:{port}"
    code, _ = pub.stop()
    assert code == 0, pub.log()


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/" + parts[3], headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def status(base: str) -> dict[str, Any]:
    code, body = get(base + "/status.json")
    assert code == 200
    return dict(json.loads(body))


class StreamReader:
    """A viewer of /stream.mjpg on a raw socket, counting the JPEG parts it receives;
    `read=False` is a viewer that stalls: it reads nothing at all."""

    def __init__(self, port: int, read: bool = True, headers: str = "") -> None:
        self.sock = socket.socket()
        if not read:  # a small window, as a stalled phone's: the server fills it soon
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        self.frames = 0
        self.head = b""
        self.closed = False
        self._thread: threading.Thread | None = None
        if read:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()

    def _read(self) -> None:
        marker = f"--{BOUNDARY}\r\n".encode()
        tail = b""
        self.sock.settimeout(30)
        try:
            while chunk := self.sock.recv(65536):
                if len(self.head) < 300:
                    self.head += chunk[: 300 - len(self.head)]
                data = tail + chunk
                self.frames += data.count(marker)
                tail = data[-(len(marker) - 1) :]
        except OSError:
            pass
        self.closed = True

    def close(self) -> None:
        self.sock.close()
        if self._thread is not None:
            self._thread.join(5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- acceptance 1: the page in a browser, fresh snapshots ------------------------------


def test_the_page_shows_a_moving_stream_and_fresh_snapshots(
    publisher: Start, tmp_path: Path, browser: Any
) -> None:
    with running(publisher, tmp_path) as (_, base):
        page, console, _ = open_page(browser, base + "/", record=False)
        try:
            img = page.locator("img")
            deadline = time.monotonic() + 15
            while not page.evaluate("document.querySelector('img').naturalWidth > 0"):
                assert time.monotonic() < deadline, "the stream never showed"
                page.wait_for_timeout(50)
            first = img.screenshot()
            page.wait_for_timeout(1200)  # the test camera's picture changes each second
            second = img.screenshot()
            assert first != second, "the stream does not move"
            assert "1280x720" in page.inner_text("dl")  # the capture settings in use
            assert console.errors == []
        finally:
            page.close()
        shots = []
        for pause in (0.0, 0.0, 1.1):
            time.sleep(pause)
            t0 = time.monotonic()
            r = urllib.request.urlopen(base + "/snapshot.jpeg", timeout=10)
            body = r.read()
            shots.append((int(r.headers["X-Preview-Frame"]), body, time.monotonic() - t0))
            assert r.status == 200 and body[:2] == b"\xff\xd8", body[:80]
            with Image.open(io.BytesIO(body)) as im:
                assert im.size == (800, 450)  # the preview box, aspect kept
            assert shots[-1][2] < 5
        # One call after the other, each the next frame made: never the same one twice;
        # a second later the picture itself has changed.
        assert shots[0][0] < shots[1][0] < shots[2][0]
        assert shots[1][1] != shots[2][1]


# --- acceptance 3: nobody watching costs nothing -----------------------------------------


def test_no_viewer_no_encode(publisher: Start, tmp_path: Path) -> None:
    with running(publisher, tmp_path, interval=0.5) as (pub, base):
        time.sleep(3)  # six published frames, no viewer
        assert status(base)["encoded"] == 0
        assert "making frames" not in pub.log()
        assert get(base + "/snapshot.jpeg")[0] == 200
        wait_until(lambda: "idle (" in pub.log(), 5, "the preview going idle")
        after = status(base)["encoded"]
        assert after >= 1
        time.sleep(1.5)
        assert status(base)["encoded"] == after  # idle again: nothing more encoded
        assert status(base)["viewers"] == 0


# --- acceptance 4: access --------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def median_ms(conn: http.client.HTTPConnection, headers: dict[str, str]) -> float:
    t0 = time.perf_counter()
    conn.request("GET", "/status.json", headers=headers)
    r = conn.getresponse()
    r.read()
    assert r.status == 401
    return (time.perf_counter() - t0) * 1000


def test_basic_auth_refuses_without_a_timing_hint_and_never_logs_the_secret(
    publisher: Start, tmp_path: Path
) -> None:
    secret_file = tmp_path / "preview-password"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    extra = f'auth = "basic"\nuser = "focus"\npassword_file = "{secret_file}"'
    with running(publisher, tmp_path, extra) as (pub, base):
        code, _ = get(base + "/")
        assert code == 401
        assert get(base + "/stream.mjpg", basic("focus", SECRET[:-1] + "x"))[0] == 401
        assert get(base + f"/snapshot.jpeg?password={SECRET}")[0] == 401  # never in a URL
        assert get(base + "/snapshot.jpeg", basic("focus", SECRET))[0] == 200
        port = int(base.rsplit(":", 1)[1])
        good = "Authorization: Basic " + base64.b64encode(f"focus:{SECRET}".encode()).decode()
        viewer = StreamReader(port, headers=good + "\r\n")
        wait_until(lambda: viewer.frames >= 3, 10, "three frames through basic auth")
        assert b"multipart/x-mixed-replace" in viewer.head
        viewer.close()
        # Wrong passwords that differ at the first byte and at the last take the same time.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        near, far = basic("focus", SECRET[:-1] + "!"), basic("focus", "!" + SECRET[1:])
        times: dict[str, list[float]] = {"near": [], "far": []}
        for _ in range(300):
            times["near"].append(median_ms(conn, near))
            times["far"].append(median_ms(conn, far))
        conn.close()
        m_near, m_far = (statistics.median(times[k]) for k in ("near", "far"))
        print(f"401 timing: near miss {m_near:.3f} ms, far miss {m_far:.3f} ms (medians of 300)")
        assert abs(m_near - m_far) < max(0.25, 0.2 * min(m_near, m_far)), times
    log = pub.log()
    assert "GET /status.json" in log  # -v: the request lines are there...
    encoded = base64.b64encode(f"focus:{SECRET}".encode()).decode()
    for leak in (SECRET, SECRET[:12], encoded):
        assert leak not in log  # ...the secret, even from a query string, is not


def test_a_token_in_a_header_or_cookie_from_the_environment(
    publisher: Start, tmp_path: Path
) -> None:
    env = {"LIVECAM_PREVIEW_PASSWORD": SECRET}
    with running(publisher, tmp_path, 'auth = "token"', env=env) as (pub, base):
        assert get(base + "/snapshot.jpeg")[0] == 401
        assert get(base + f"/snapshot.jpeg?token={SECRET}")[0] == 401
        assert get(base + "/snapshot.jpeg", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(base + "/snapshot.jpeg", {"Authorization": f"Bearer {SECRET}"})[0] == 200
        assert get(base + "/snapshot.jpeg", {"Cookie": f"livecam_preview={SECRET}"})[0] == 200
    assert SECRET not in pub.log()


def test_run_without_the_secret_is_a_config_error(tmp_path: Path) -> None:
    path = preview_config(tmp_path, free_port(), 'auth = "basic"')
    env = {k: v for k, v in os.environ.items() if k != "LIVECAM_PREVIEW_PASSWORD"}
    r = run_cli("run", "-c", str(path), base_env=env, timeout=30)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().endswith("or set $LIVECAM_PREVIEW_PASSWORD"), r.stderr
    assert "Traceback" not in r.stderr


def test_check_reports_the_preview_url(tmp_path: Path) -> None:
    port = free_port()
    r = run_cli("check", "-c", str(preview_config(tmp_path, port)), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ok   live view: http://127.0.0.1:{port}/ (no password;" in r.stdout


# --- acceptance 2: load ------------------------------------------------------------------


def captured_intervals(www: Path, stop: threading.Event, out: list[tuple[int, datetime]]) -> None:
    """Every published frame's seq and capture time, read from live.json as it changes."""
    last = -1
    while not stop.is_set():
        try:
            m = json.loads((www / "live.json").read_bytes())
        except (OSError, ValueError):
            continue
        if m["seq"] != last:
            last = m["seq"]
            out.append((m["seq"], datetime.fromisoformat(m["captured_at"].replace("Z", "+00:00"))))
        stop.wait(0.05)


def load_run(publisher: Start, tmp_path: Path, stall: float, hold: float) -> dict[str, Any]:
    interval = 1.0
    extra = f"stall_timeout = {stall}"
    with running(publisher, tmp_path, extra, interval=interval) as (pub, base):
        port = int(base.rsplit(":", 1)[1])
        frames: list[tuple[int, datetime]] = []
        stop = threading.Event()
        watcher = threading.Thread(
            target=captured_intervals, args=(tmp_path / "www", stop, frames), daemon=True
        )
        watcher.start()
        rss = [rss_kib(pub.proc.pid)]
        cpu0 = cpu_seconds(pub.proc.pid)
        viewers = [StreamReader(port) for _ in range(7)]
        stalled = StreamReader(port, read=False)
        wait_until(lambda: status(base)["viewers"] == 8, 10, "eight viewers")
        # A ninth viewer, stream or snapshot, is turned away.
        code, body = get(base + "/stream.mjpg")
        assert code == 503 and b"preview.max_clients" in body
        assert get(base + "/snapshot.jpeg")[0] == 503
        t_stall = time.monotonic()
        while status(base)["dropped"] == 0:
            rss.append(rss_kib(pub.proc.pid))
            assert time.monotonic() - t_stall < stall + 30, "the stalled viewer is still there"
            time.sleep(0.5)
        dropped_after = time.monotonic() - t_stall
        viewers.append(StreamReader(port))  # its place goes to an eighth reader
        end = time.monotonic() + hold
        while time.monotonic() < end:
            rss.append(rss_kib(pub.proc.pid))
            time.sleep(0.5)
        stats = status(base)
        cpu = cpu_seconds(pub.proc.pid) - cpu0
        stop.set()
        watcher.join(5)
        for v in viewers:
            v.close()
        stalled.sock.close()
    gaps = [
        (b[1] - a[1]).total_seconds() for a, b in itertools.pairwise(frames) if b[0] == a[0] + 1
    ]
    result = {
        "published": len(frames),
        "max_interval_s": round(max(gaps), 3),
        "stall_dropped_after_s": round(dropped_after, 1),
        "rss_start_mib": round(rss[0] / 1024, 1),
        "rss_max_mib": round(max(rss) / 1024, 1),
        "frames_per_viewer": [v.frames for v in viewers],
        "encoded": stats["encoded"],
        "sent": stats["sent"],
        "skipped": stats["skipped"],
        "cpu_s": round(cpu, 1),
    }
    print(f"preview load: {json.dumps(result)}")
    assert len(gaps) >= 5, frames
    assert max(gaps) <= 1.5 * interval, gaps
    assert stats["dropped"] == 1
    assert min(v.frames for v in viewers) >= 3, result
    # One encode per frame for all: the bytes sent are frames x viewers, the encodes not.
    assert stats["sent"] > 3 * stats["encoded"], stats
    # Bounded: no buffer per viewer, one frame kept; what grows is Python's own arenas.
    assert max(rss) - rss[0] < 40 * 1024, rss
    return result


def test_eight_viewers_and_a_stalled_one_leave_publishing_alone(
    publisher: Start, tmp_path: Path
) -> None:
    load_run(publisher, tmp_path, stall=3.0, hold=4.0)


@pytest.mark.slow
def test_a_viewer_stalled_for_20_s_is_dropped_and_publishing_holds(
    publisher: Start, tmp_path: Path
) -> None:
    result = load_run(publisher, tmp_path, stall=15.0, hold=20.0)
    assert result["stall_dropped_after_s"] <= 25


# --- docs and the benchmark ---------------------------------------------------------------


def test_the_example_config_documents_every_preview_key_at_its_default() -> None:
    text = (ROOT / "config.example.toml").read_text()
    for f in dataclasses.fields(config.PreviewConfig):
        assert f"{f.name} =" in text, f.name
    assert config.load(ROOT / "config.example.toml").preview == config.PreviewConfig()


def test_the_preview_benchmark_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_preview.py"), "--seconds", "0.5",
         "--turns", "1", "--size", "640x360"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["0 viewers"]["frames"] == 0  # nobody watching: nothing encoded
    assert report["1 viewers"]["frames"] > 0 and report["8 viewers"]["frames"] > 0
