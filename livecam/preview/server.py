"""The preview's HTTP side: `/` (a small page), `/stream.mjpg`, `/snapshot.jpeg` and
`/status.json`, on the standard library's threaded server (a thread per connection).

Every client sends the bytes the producer made once (`Slot`); a client that stops
reading fills its small socket buffer, then its send times out after
`preview.stall_timeout` s and it is disconnected. Beyond `preview.max_clients`
viewers a request gets 503.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from livecam.httpserver import Listener
from livecam.preview.auth import Access
from livecam.preview.frames import BOUNDARY, Slot

log = logging.getLogger(__name__)

# A connection that sends no complete request within this many seconds is closed.
REQUEST_TIMEOUT = 10.0
# The kernel's send buffer per stream: a stalled client holds at most this (and its own
# receive window), and a stall shows as a blocked send soon after it starts.
SEND_BUFFER = 128 * 1024
_QUERY = re.compile(r"\?[^\s'\"]*")

STYLE = (
    "body{margin:0;background:#111;color:#ddd;font:14px/1.4 system-ui,sans-serif}"
    "main{max-width:1000px;margin:auto;padding:12px}"
    "img{display:block;width:100%;height:auto;background:#000}"
    "h1{font-size:18px;margin:0 0 8px}dl{display:grid;grid-template-columns:max-content 1fr;"
    "gap:2px 12px;margin:12px 0}dt{color:#999}dd{margin:0}a{color:#8cf}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; img-src 'self' data:; style-src 'sha256-{_STYLE_HASH}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page(title: str, settings: list[tuple[str, str]]) -> bytes:
    """The `/` page: the stream, and the capture settings it was made with."""
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in settings)
    name = html.escape(title)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{name}: live view</title>'
        f"<style>{STYLE}</style></head><body><main><h1>{name}: live view</h1>"
        f'<img src="stream.mjpg" alt="The camera, live">'
        f"<dl>{rows}</dl>"
        '<p><a href="snapshot.jpeg">snapshot.jpeg</a> (one fresh frame) · '
        '<a href="stream.mjpg">stream.mjpg</a> (MJPEG)</p></main></body></html>\n'
    ).encode()


class PreviewListener(Listener):
    """The threaded server, with a bound on the connections it serves at once."""

    def __init__(
        self,
        bind: str,
        port: int,
        handler: Callable[..., BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:
        super().__init__(bind, port, handler)
        self.max_connections = max_connections
        self._open = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._open.acquire(blocking=False):
            self.shutdown_request(request)  # a flood of connections gets no thread
            return
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # the viewer went away mid-reply
            log.debug("preview: %s gone: %s", client_address[0], error)
            return
        log.exception("preview: unexpected error serving %s", client_address[0])

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._open.release()


class PreviewHandler(BaseHTTPRequestHandler):
    """One connection's requests; the shared state comes through `make_handler`."""

    server_version = "livecam"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT
    slot: Slot
    access: Access
    max_clients: int
    stall_timeout: float
    snapshot_wait: float
    index: bytes
    extra: Callable[[], dict[str, Any]]

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm holds
        # the body back for the client's delayed ACK on every small reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        # Query strings are cut: a user may put a secret there, which is never accepted.
        log.debug("preview: %s %s", self.address_string(), _QUERY.sub("?…", format % args))

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if not self.access.allows(self.headers.get("Authorization"), self.headers.get("Cookie")):
            self._refuse()
            return
        route = {
            "/": self._index,
            "/index.html": self._index,
            "/stream.mjpg": self._stream,
            "/snapshot.jpeg": self._snapshot,
            "/status.json": self._status,
        }.get(path)
        if route is None:
            self._plain(HTTPStatus.NOT_FOUND, "not found: the preview serves /, /stream.mjpg, "
                        "/snapshot.jpeg and /status.json")  # fmt: skip
            return
        route()

    def _refuse(self) -> None:
        body = b"authentication required\n"
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", self.access.challenge)
        self._headers("text/plain; charset=utf-8", len(body))
        self.wfile.write(body)

    def _plain(self, status: HTTPStatus, text: str, retry: bool = False) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        if retry:
            self.send_header("Retry-After", "5")
        self._headers("text/plain; charset=utf-8", len(body))
        self.wfile.write(body)

    def _headers(self, content_type: str, length: int | None) -> None:
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()

    def _index(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Security-Policy", CSP)
        self._headers("text/html; charset=utf-8", len(self.index))
        self.wfile.write(self.index)

    def _status(self) -> None:
        body = json.dumps({**self.slot.stats(), **self.extra()}).encode()
        self.send_response(HTTPStatus.OK)
        self._headers("application/json", len(body))
        self.wfile.write(body)

    def _busy(self) -> None:
        self._plain(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"too many viewers: the preview serves {self.max_clients} at once "
            "(preview.max_clients)",
            retry=True,
        )

    def _snapshot(self) -> None:
        if not self.slot.join(self.max_clients):
            self._busy()
            return
        try:
            # The next frame made after this request came, never an older one.
            frame = self.slot.newer(self.slot.seq, self.snapshot_wait)
        finally:
            self.slot.leave()
        if frame is None:
            self._plain(HTTPStatus.SERVICE_UNAVAILABLE, "no frame from the camera yet", retry=True)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("X-Preview-Frame", str(frame.seq))  # fresh: above the last one
        self._headers("image/jpeg", len(frame.jpeg))
        self.wfile.write(frame.jpeg)
        self.slot.count(sent=1)

    def _stream(self) -> None:
        if not self.slot.join(self.max_clients):
            self._busy()
            return
        try:
            self.close_connection = True
            self.send_response(HTTPStatus.OK)
            self.send_header("Connection", "close")
            self._headers(f"multipart/x-mixed-replace; boundary={BOUNDARY}", None)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            self.connection.settimeout(self.stall_timeout)
            self._frames()
        finally:
            self.slot.leave()

    def _frames(self) -> None:
        seq = self.slot.seq  # from the next frame on: never a stale one first
        while True:
            frame = self.slot.newer(seq, 1.0)
            if frame is None:
                if self.slot.closed:
                    return
                continue  # the camera is slow or failing: the client waits
            try:
                self.wfile.write(frame.part)
            except TimeoutError:
                log.info(
                    "preview: disconnected %s: it read nothing for %g s (preview.stall_timeout)",
                    self.address_string(),
                    self.stall_timeout,
                )
                self.slot.count(dropped=1)
                return
            except OSError:  # the viewer went away
                return
            seq = frame.seq
            self.slot.count(sent=1)


def make_handler(**state: Any) -> type[PreviewHandler]:
    """A handler class bound to the preview's shared state."""
    return type("BoundPreviewHandler", (PreviewHandler,), state)
