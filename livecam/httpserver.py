"""The demo's small static web server (stdlib): serves one directory, nothing else.

For production use nginx (README); this exists so that `demo` needs no set-up. It
binds 127.0.0.1 by default, refuses anything outside its directory (`..`, encoded
or not, and symlinks that lead out), lists no directories, and sends the headers
the live page needs: `Cache-Control: no-cache` on live objects, an ETag for
conditional requests, and a strict Content-Security-Policy.

`live.json` gets an ETag that is the MD5 of its bytes, as S3, R2, B2 and MinIO give
it: the page sends `If-None-Match` only for such content-derived validators (an
mtime-based one could match a manifest rewritten within the same second), so the
demo exercises the same 304 path as a bucket does.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import logging
import os
import socket
import threading
import urllib.parse
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseRequestHandler
from typing import Any

from livecam.site import content_type

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'"
)


MAX_HASHED = 1 << 20  # live.json is ~0.5 KiB; never hash something unexpectedly large


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match header value names `etag` (weak comparison, RFC 9110)."""
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == etag for t in header.split(","))


class Handler(SimpleHTTPRequestHandler):
    """GET and HEAD for files under `directory`, with live-cam headers."""

    server_version = "livecam"
    protocol_version = "HTTP/1.1"

    def __init__(self, *args: Any, directory: str, **kwargs: Any) -> None:
        self.root = os.path.realpath(directory)
        super().__init__(*args, directory=directory, **kwargs)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _resolve(self) -> str | None:
        """The real file path for the request, or None when it must not be served."""
        raw = urllib.parse.urlsplit(self.path).path
        path = urllib.parse.unquote(raw, errors="strict") if "%" in raw else raw
        if "\0" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or p.startswith(".") for p in parts):
            return None  # traversal, and our dotfiles (temp files, probes)
        candidate = os.path.join(self.root, *parts)
        if path.endswith("/") or not parts:
            candidate = os.path.join(candidate, "index.html")
        real = os.path.realpath(candidate)
        if os.path.commonpath([real, self.root]) != self.root:
            return None  # a symlink that leads out of the directory
        return real if os.path.isfile(real) else None

    def send_head(self) -> Any:
        try:
            real = self._resolve()
        except UnicodeDecodeError:
            real = None
        if real is None:
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return None
        try:
            f = open(real, "rb")  # noqa: SIM115 - the base class closes it after copying
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "Not found")
            return None
        body: Any = f
        try:
            st = os.fstat(f.fileno())  # the file we opened: replaced files cannot mix
            size = st.st_size
            if real.endswith(".json") and size <= MAX_HASHED:
                data = f.read()
                f.close()
                body, size = io.BytesIO(data), len(data)
                etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
            else:
                etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
            if etag_matches(self.headers.get("If-None-Match", ""), etag):
                body.close()
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self._common_headers(real, etag)
                self.end_headers()
                return None
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type(real))
            self.send_header("Content-Length", str(size))
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            self._common_headers(real, etag)
            self.end_headers()
            return body
        except Exception:
            body.close()
            raise

    def _common_headers(self, real: str, etag: str) -> None:
        self.send_header("ETag", etag)
        # Everything revalidates: live objects change every frame, and the demo's page
        # may change between runs; the ETag keeps a revalidation to a 304.
        self.send_header("Cache-Control", "no-cache")
        if real.endswith((".html", ".svg")):
            # Only documents run scripts; on every poll of live.json it would be
            # ~250 bytes of headers for nothing (scripts/page_cost.py).
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Content-Type-Options", "nosniff")
        # The embed script reads live.json from other sites' pages; Date and ETag let
        # it correct for clock skew and revalidate.
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "Date, ETag")

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "Not found")
        return

    def do_POST(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "Read-only")

    do_PUT = do_DELETE = do_PATCH = do_POST


class Listener(ThreadingHTTPServer):
    """A threaded HTTP server on `bind` (IPv4 or IPv6) that knows its URL; a thread per
    connection, none of them holding the process up at exit."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, bind: str, port: int, handler: Callable[..., BaseRequestHandler]) -> None:
        if ":" in bind:
            self.address_family = socket.AF_INET6
        super().__init__((bind, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


class Server(Listener):
    """The demo's server: `directory`'s files."""

    def __init__(self, bind: str, port: int, directory: Path) -> None:
        super().__init__(bind, port, partial(Handler, directory=str(directory)))


def serve(directory: Path, bind: str = "127.0.0.1", port: int = 8000) -> Server:
    """Start serving `directory` on a background thread; `shutdown()` stops it."""
    server = Server(bind, port, directory)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


__all__ = ["CSP", "Listener", "Server", "etag_matches", "serve"]
