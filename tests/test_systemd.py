"""The service as systemd runs it: the unit file (systemd-analyze verify), sd_notify
over a real datagram socket, the installer's dry run, the nginx site, the Pi smoke test."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from livecam import cli, config
from livecam.notify import Notifier, watchdog_period

from .conftest import (
    PUBLISHER,
    ROOT,
    Nginx,
    fetch,
    free_port,
    write_config,
)

UNIT = ROOT / "scripts" / "livecam.service"
INSTALL = ROOT / "scripts" / "install-service.sh"
SMOKE = ROOT / "scripts" / "pi-smoke.sh"
NGINX_SITE = ROOT / "scripts" / "nginx-livecam.conf"
FAKES = Path(__file__).resolve().parent / "fakes"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


# --- the unit file --------------------------------------------------------------------


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/system-deps installs it (package systemd)"
    # verify insists that ExecStart's program exists: point it at one that does.
    text = UNIT.read_text().replace("/opt/livecam/venv/bin/livecam", sys.executable)
    copy = tmp_path / "livecam.service"
    copy.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "livecam.service" not in result.stderr, result.stderr


def test_unit_is_a_hardened_notify_service() -> None:
    s = unit()["Service"]
    assert (s["Type"], s["NotifyAccess"]) == ("notify", "main")
    assert int(s["WatchdogSec"]) >= 60
    assert s["Restart"] == "always"
    assert s["RestartPreventExitStatus"] == str(cli.EXIT_CONFIG)  # a config error: no loop
    assert (s["User"], s["SupplementaryGroups"]) == ("livecam", "video")
    assert s["ExecStart"] == "/opt/livecam/venv/bin/livecam run -c /etc/livecam/config.toml"
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes"
    assert s["ReadWritePaths"].startswith("-/")
    assert s["RuntimeDirectory"] == "livecam" and s["RuntimeDirectoryMode"] == "0755"
    assert (s["Nice"], s["IOSchedulingClass"]) == ("10", "idle")
    assert s["MemoryMax"].endswith("M")
    # The camera's device nodes must stay reachable.
    for hiding in ("PrivateDevices", "DeviceAllow", "ProtectClock", "DevicePolicy"):
        assert hiding not in s


def test_the_watchdog_outlasts_the_slowest_healthy_frame() -> None:
    # A capture that times out, closing the camera, then the longest backoff: all
    # without a WATCHDOG=1 in between.
    camera = config.CameraConfig()
    worst = 2 * camera.timeout + 30.0
    assert int(unit()["Service"]["WatchdogSec"]) > worst


# --- sd_notify over a real socket -----------------------------------------------------


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    directory = tempfile.mkdtemp(prefix="livecam-notify-")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def receive(sock: socket.socket, until: float, first: str = "") -> list[str]:
    """Messages until `until`, or until one starts with `first` (when given)."""
    messages = []
    sock.settimeout(0.2)
    while time.monotonic() < until:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if first and messages[-1].startswith(first):
            break
    return messages


def run_notifying(
    tmp_path: Path,
    notify_path: str,
    sock: socket.socket,
    interval: float,
    watchdog_usec: int,
    seconds: float,
) -> list[str]:
    """`run` with the test camera under a NOTIFY_SOCKET for `seconds` after it is ready
    (however long its start takes on a busy machine), then SIGTERM (exit 0 asserted);
    every message it sent."""
    cfg = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 320
        height = 240
        interval = {interval}
        [target]
        kind = "local"
        path = "{tmp_path / "out"}"
        """,
    )
    env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": str(watchdog_usec)}
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(cfg)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        messages = receive(sock, time.monotonic() + 60, first="READY=1")
        messages += receive(sock, time.monotonic() + seconds)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        messages += receive(sock, time.monotonic() + 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    return messages


def test_run_speaks_sd_notify(tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    messages = run_notifying(tmp_path, path, sock, 0.2, 3_000_000, 2.5)
    assert messages[0].startswith("READY=1\nSTATUS=publishing to local directory")
    frames = [m for m in messages if m.startswith("WATCHDOG=1\nSTATUS=seq ")]
    assert len(frames) >= 5  # one per published frame, each with the last publish
    assert frames[0].startswith("WATCHDOG=1\nSTATUS=seq 1, last publish 20")
    assert frames[-1].endswith(", ok")
    assert messages[-1] == "STOPPING=1"
    assert all("\n" not in m.split("STATUS=", 1)[-1] for m in messages)


def test_the_watchdog_is_fed_through_a_wait_longer_than_its_period(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    # WatchdogSec=1: half of it, 0.5 s, is far shorter than the 30 s interval.
    messages = run_notifying(tmp_path, path, sock, 30, 1_000_000, 3.0)
    frames = [m for m in messages if m.startswith("WATCHDOG=1\nSTATUS=seq ")]
    idle = [m for m in messages if m == "WATCHDOG=1"]
    assert len(frames) == 1  # one frame in 3 s at interval 30
    assert len(idle) >= 3, messages  # fed every 0.5 s while waiting for the next


def test_notifier_reaches_an_abstract_socket_and_keeps_one_line_per_field() -> None:
    name = f"livecam-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        n = Notifier("@" + name)
        n.status("failing: upload refused\nREADY=1")  # a multi-line error message
        assert sock.recv(4096) == b"STATUS=failing: upload refused READY=1"
        n.close()
    finally:
        sock.close()


def test_notifier_without_systemd_is_silent() -> None:
    n = Notifier("")
    assert not n.enabled
    n.ready("x")
    n.watchdog()
    Notifier("/nonexistent/socket").watchdog()  # systemd gone: logged, not raised


def test_a_watchdog_for_another_process_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_period() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_period() == 0.0


# --- install-service.sh -------------------------------------------------------------------


def dry_run(
    tmp_path: Path, *args: str, config: str | None = None
) -> subprocess.CompletedProcess[str]:
    conf_dir = tmp_path / "etc-livecam"
    if config is not None:
        conf_dir.mkdir()
        (conf_dir / "config.toml").write_text(config)
    env = {
        **os.environ,
        "LIVECAM_PREFIX": str(tmp_path / "opt" / "livecam"),
        "LIVECAM_CONFIG_DIR": str(conf_dir),
    }
    return subprocess.run(
        ["sh", str(INSTALL), "--dry-run", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def actions(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("+ ")]


def test_install_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    result = dry_run(tmp_path)
    assert result.returncode == 0, result.stderr
    steps = actions(result)
    prefix = tmp_path / "opt" / "livecam"
    conf = tmp_path / "etc-livecam" / "config.toml"
    expected = [
        f"+ {sys_python_name()} -m venv --system-site-packages {prefix}/venv",
        f"+ {prefix}/venv/bin/python -m pip install --quiet --disable-pip-version-check "
        f"--upgrade --only-binary opencv-python-headless '{ROOT}[fast]'",
        f"+ install -d -m 0750 -o root -g livecam {tmp_path / 'etc-livecam'}",
        f"+ write {conf} (mode 0600, owner livecam:livecam): config.example.toml with "
        'target.path = "/run/livecam"',
        "+ write /etc/systemd/system/livecam.service (mode 0644, owner root:root)",
        "+ systemctl daemon-reload",
        "+ systemctl enable livecam.service",
        "+ systemctl restart livecam.service",
    ]
    positions = [steps.index(step) for step in expected]
    assert positions == sorted(positions), steps
    if subprocess.run(["id", "-u", "livecam"], capture_output=True, check=False).returncode:
        assert steps[0].startswith("+ useradd --system --user-group")
    # The unit it would write is ours, with ExecStart in its venv.
    unit_text = result.stdout.split("owner root:root)\n", 1)[1].split("\n+ ", 1)[0]
    written = "\n".join(line[4:] for line in unit_text.splitlines())
    assert f"ExecStart={prefix}/venv/bin/livecam run -c /etc/livecam/config.toml" in written
    assert written.replace(str(prefix), "/opt/livecam") == UNIT.read_text().rstrip("\n")
    assert not (tmp_path / "opt").exists() and not conf.exists()
    assert "dry run: printing the actions, changing nothing" in result.stderr


def sys_python_name() -> str:
    return os.environ.get("PYTHON", "python3")


def test_install_dry_run_lets_the_service_write_a_local_target(tmp_path: Path) -> None:
    result = dry_run(
        tmp_path, "--nginx", config='[target]\nkind = "local"\npath = "/srv/live cam"\n'
    )
    assert result.returncode == 0, result.stderr
    steps = actions(result)
    conf = tmp_path / "etc-livecam" / "config.toml"
    assert f"+ chmod 0600 {conf}" in steps  # an existing config is kept, permissions fixed
    assert not any(step.startswith(f"+ write {conf}") for step in steps)
    assert "+ install -d -m 0755 -o livecam -g livecam '/srv/live cam'" in steps
    assert '|   ReadWritePaths="/srv/live cam"' in result.stdout
    assert (
        "+ write /etc/nginx/sites-available/livecam (mode 0644, owner root:root): "
        "scripts/nginx-livecam.conf serving /srv/live cam"
    ) in steps
    assert "+ nginx -t -q" in steps


def test_install_dry_run_for_an_s3_target_needs_no_drop_in(tmp_path: Path) -> None:
    result = dry_run(tmp_path, config='[target]\nkind = "s3"\nbucket = "cam"\n')
    assert result.returncode == 0, result.stderr
    assert "+ rm -f /etc/systemd/system/livecam.service.d/target.conf" in actions(result)
    assert 'ReadWritePaths="' not in result.stdout


def test_uninstall_dry_run(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--uninstall")
    assert result.returncode == 0, result.stderr
    assert actions(result) == [
        "+ systemctl disable --now livecam.service",
        "+ rm -f /etc/systemd/system/livecam.service",
        "+ rm -rf /etc/systemd/system/livecam.service.d",
        "+ systemctl daemon-reload",
        f"+ rm -rf {tmp_path / 'opt' / 'livecam'} /run/livecam",
    ]
    purge = dry_run(tmp_path, "--uninstall", "--purge")
    assert f"+ rm -rf {tmp_path / 'etc-livecam'}" in actions(purge)


def test_install_rejects_an_unknown_option(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--frobnicate")
    assert result.returncode == 1
    assert "unknown option --frobnicate" in result.stderr


# --- the nginx site, served by a real nginx --------------------------------------------


def test_the_nginx_site_serves_the_page_and_revalidates_live_objects(served_dir: Path) -> None:
    (served_dir / "index.html").write_text("<!doctype html><title>cam</title>")
    (served_dir / "live.json").write_text('{"seq": 1}')
    (served_dir / "live.jpeg").write_bytes(b"\xff\xd8\xff\xd9")
    (served_dir / ".livecam-1-1.tmp").write_bytes(b"half")
    port = free_port()
    site = NGINX_SITE.read_text()
    site = site.replace("listen 80 default_server;", f"listen 127.0.0.1:{port};")
    site = site.replace("listen [::]:80 default_server;", "")
    site = site.replace("root /run/livecam;", f'root "{served_dir}";')
    server = Nginx(server=site, port=port).start()
    try:
        base = server.url
        status, headers, body = fetch(base)
        assert status == 200 and b"<title>cam</title>" in body
        assert headers["Cache-Control"] == "public, max-age=300"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        for name in ("live.json", "live.jpeg"):
            status, headers, _ = fetch(base + name)
            assert status == 200
            assert headers["Cache-Control"] == "no-cache"
            assert headers["Access-Control-Allow-Origin"] == "*"
            assert "ETag" in headers
        assert fetch(base + ".livecam-1-1.tmp")[0] == 404
    finally:
        server.close()


# --- pi-smoke.sh --------------------------------------------------------------------------


def test_pi_smoke_help() -> None:
    result = subprocess.run(
        ["sh", str(SMOKE), "--help"], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0
    assert "scripts/pi-smoke.sh [-c CONFIG] [--frames N] [--keep]" in result.stdout


def test_pi_smoke_runs_through_with_the_fake_camera() -> None:
    result = subprocess.run(
        ["sh", str(SMOKE), "--frames", "2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(FAKES), "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Pi camera 0: imx477, sensor 4056x3040; frames 2028x1520 YUV420" in out
    assert "from lores 800x600" in out and "from the full frame" in out
    assert "published frame 1: live.jpeg 2028x1520" in out
