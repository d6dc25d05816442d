"""A loopback HTTP proxy in front of a test S3 endpoint that injects faults.

The publisher talks to the proxy as its `endpoint_url`; a rule decides per request
whether to forward it, answer with an error status (500, 503 SlowDown), stall past
the client's read timeout, or drop the connection. Bounded: every stall ends.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    """What to do with one request; `None` from a rule means forward it."""

    status: int = 0  # answer with this status and an S3 error body
    code: str = "InternalError"
    stall: float = 0.0  # seconds to wait before doing anything (bounded)
    drop: bool = False  # close the connection without an answer


Rule = Callable[[str, str], Fault | None]


@dataclass
class Log:
    """Every request the proxy answered: (time, method, path, status), and the bodies
    of successful manifest PUTs, in order."""

    requests: list[tuple[float, str, str, int]] = field(default_factory=list)
    manifests: list[tuple[int, bytes]] = field(default_factory=list)  # (index in requests, body)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, status: int, body: bytes = b"") -> None:
        with self.lock:
            self.requests.append((time.monotonic(), method, path, status))
            if method == "PUT" and path.split("?")[0].endswith("/live.json") and status == 200:
                self.manifests.append((len(self.requests) - 1, body))

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


class FaultProxy:
    """Forward to 127.0.0.1:`upstream_port`, applying `rule` to each request."""

    def __init__(self, upstream_port: int, rule: Rule | None = None, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.rule: Rule = rule or (lambda method, path: None)
        self.log = Log()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy.log.enter()
                try:
                    self._proxy()
                finally:
                    proxy.log.leave()

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                fault = proxy.rule(self.command, self.path)
                if fault is not None and fault.stall:
                    time.sleep(min(fault.stall, 30.0))
                if fault is not None and fault.drop:
                    proxy.log.add(self.command, self.path, 0)
                    self.close_connection = True
                    self.connection.close()
                    return
                if fault is not None and fault.status:
                    payload = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}</Code>'
                        f"<Message>injected</Message></Error>"
                    ).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    proxy.log.add(self.command, self.path, fault.status)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    headers = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() not in ("transfer-encoding",)
                    }
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status)
                    for k, v in resp.getheaders():
                        if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    proxy.log.add(self.command, self.path, resp.status, body)
                except OSError:
                    proxy.log.add(self.command, self.path, 502)
                    self.send_error(502)
                finally:
                    conn.close()

            def _read_chunked(self) -> bytes:
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def manifest_never_ahead(log: Log, prefix: str) -> list[str]:
    """Problems found: a successful manifest PUT that names, for its own frame, an image
    whose successful PUT did not happen since the previous manifest."""
    import json

    problems = []
    previous = -1
    with log.lock:
        requests = list(log.requests)
        manifests = list(log.manifests)
    for index, body in manifests:
        m = json.loads(body)
        since = {
            path.split("?")[0].rsplit("/", 1)[1]
            for _, method, path, status in requests[previous + 1 : index]
            if method == "PUT" and status == 200
        }
        for name, entry in m["images"].items():
            if entry["seq"] == m["seq"] and name not in since:
                problems.append(f"manifest seq {m['seq']} names {name} before it was uploaded")
        previous = index
    return problems
