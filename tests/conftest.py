"""Shared fixtures: real parts (files, nginx, a browser, an S3 endpoint) on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLISHER = ROOT / "publisher.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the heavy soak/load runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="heavy run: use --slow (results in docs/)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout} s")


def write_config(directory: Path, body: str, name: str = "config.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def run_cli(
    *args: str,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    base_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python3 publisher.py ARGS` as a user would, in `base_env` (default: this
    process's environment) updated with `env`."""
    return subprocess.run(
        [sys.executable, str(PUBLISHER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**(os.environ if base_env is None else base_env), **(env or {})},
        check=False,
    )


def no_aws_env() -> dict[str, str]:
    """This environment without any AWS credentials, files or instance role."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def served_dir() -> Iterator[Path]:
    """A directory that other users (nginx's workers) can read."""
    path = Path(tempfile.mkdtemp(prefix="livecam-served-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


NGINX_CONF = """
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        text/html html; text/css css; text/javascript js; application/json json;
        image/jpeg jpeg jpg; image/svg+xml svg; video/mp4 mp4;
    }}
{server}
}}
"""

NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        root {root};
{extra}
    }}
"""

# The location blocks the README recommends for a local target.
NGINX_LIVE_LOCATIONS = """
        location ~ ^/(live\\.json|.*\\.jpe?g)$ {
            add_header Cache-Control "no-cache" always;
            etag on;
        }
"""


def nginx_binary() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("nginx is not installed: run scripts/test (it installs it)")


class Nginx:
    """A real nginx on a loopback port serving `root` (with `extra` locations), or the
    whole `server` block given; a test may stop and start it again."""

    def __init__(
        self,
        root: Path | None = None,
        extra: str = NGINX_LIVE_LOCATIONS,
        *,
        server: str | None = None,
        port: int | None = None,
    ) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="livecam-nginx-"))
        self.port = port or free_port()
        if server is None:
            server = NGINX_SERVER.format(port=self.port, root=root, extra=extra)
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(prefix=self.prefix, server=server))
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/"

    def start(self) -> Nginx:
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(self.prefix), "-c", str(self.conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.proc.kill()
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise RuntimeError(f"nginx did not start: {err}") from None
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGTERM): connections close, the port refuses."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)


@pytest.fixture
def nginx() -> Iterator[Callable[[Path], str]]:
    """Start a real nginx serving a directory on a loopback port; returns its base URL."""
    servers: list[Nginx] = []

    def serve(root: Path) -> str:
        servers.append(Nginx(root).start())
        return servers[-1].url

    yield serve
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} missing: run scripts/test (it installs chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def fetch(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """GET `url`; returns status, headers and body (errors too, no exception)."""
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# --- S3: a real HTTP S3 endpoint (moto in server mode) on loopback ------------------------

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIALIVECAMTESTKEY01",
    "AWS_SECRET_ACCESS_KEY": "livecam-test-secret-DO-NOT-LOG-0123456789",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """moto's S3 in server mode on a fixed loopback port; can be stopped and restarted."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: object | None = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
            self._server = None


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake credentials for boto3's chain, isolated from any real ~/.aws."""
    env = {
        **S3_ENV,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


_bucket_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(moto_server: MotoServer, s3_env: dict[str, str]) -> str:
    import boto3

    name = f"livecam-test-{os.getpid()}-{next(_bucket_counter)}"
    boto3.client("s3", endpoint_url=moto_server.url).create_bucket(Bucket=name)
    return name


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)
