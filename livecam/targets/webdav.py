"""`kind = "webdav"`: a collection (directory) on a WebDAV server: nginx's dav module,
Apache mod_dav, a hosting provider's WebDAV share.

Each file is PUT under a temp name in its own collection, then MOVEd over the old one
with `Overwrite: T`, a rename on the server: a visitor sees the old file or the new
one, never a part. Images go first, the manifest last. Missing collections are made
with MKCOL. HTTPS certificates are verified (target.ca_file adds a private CA). The
password comes from target.password_file or LIVECAM_WEBDAV_PASSWORD, never the config,
and never reaches a log line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import socket
import stat
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import urllib3

from livecam.config import TargetConfig
from livecam.errors import PublishError
from livecam.manifest import NAME as MANIFEST
from livecam.rendered import Rendered
from livecam.site import SiteFile, content_type
from livecam.targets.base import CheckStep, Step, Target, publish_error, run_steps
from livecam.targets.local import TEMP_PREFIX, TEMP_SUFFIX

log = logging.getLogger(__name__)

PASSWORD_ENV = "LIVECAM_WEBDAV_PASSWORD"  # noqa: S105 - a variable name
MAX_BODY = 1_000_000  # a manifest or a page file: never more
JPEG_TYPE = "image/jpeg"
JSON_TYPE = "application/json"


@dataclass(frozen=True)
class _Reply:
    """A server's answer, its body read (bounded)."""

    status: int
    headers: Mapping[str, str]
    data: bytes


def _temp_name(name: str) -> str:
    """The temp name of `name`, in the same collection. Fixed per file: a temp left by a
    crash between PUT and MOVE is overwritten and moved by the next publish."""
    head, tail = posixpath.split(name)
    return posixpath.join(head, f"{TEMP_PREFIX}{tail}{TEMP_SUFFIX}")


class WebDAVTarget(Target):
    """Publishes into the collection at `url` as `user`."""

    def __init__(self, cfg: TargetConfig, stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.base = cfg.url if cfg.url.endswith("/") else cfg.url + "/"
        self.where = urlsplit(self.base).netloc
        self._stop = stop or threading.Event()
        self._pool: urllib3.PoolManager | None = None
        self._auth: dict[str, str] | None = None
        self._lock = threading.RLock()
        self._made: set[str] = set()
        self._site: dict[str, SiteFile] = {}
        self._site_state: dict[str, tuple[str, str]] = {}  # md5, what HEAD says

    def describe(self) -> str:
        return f"WebDAV {self.base} as {self.cfg.user}"

    # --- HTTP ----------------------------------------------------------------------

    def _http(self) -> urllib3.PoolManager:
        if self._pool is None:
            self._pool = urllib3.PoolManager(
                num_pools=2,
                maxsize=2,
                retries=False,  # the loop retries, with backoff, on the next frame
                timeout=urllib3.Timeout(
                    connect=self.cfg.connect_timeout, read=self.cfg.read_timeout
                ),
                cert_reqs="CERT_REQUIRED",
                ca_certs=self.cfg.ca_file,
            )
        return self._pool

    def _headers(self) -> dict[str, str]:
        if self._auth is None:
            password = self._password()
            self._auth = urllib3.make_headers(basic_auth=f"{self.cfg.user}:{password}")
        return self._auth

    def _password(self) -> str:
        path = self.cfg.password_file
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    password = f.read(4096).rstrip("\r\n")
            except OSError as e:
                raise PublishError(
                    f"cannot read target.password_file {path}: {e.strerror or e}"
                ) from e
            except UnicodeDecodeError as e:
                raise PublishError(f"target.password_file {path} is not UTF-8 text") from e
            if not password:
                raise PublishError(f"target.password_file {path} is empty")
            with contextlib.suppress(OSError):
                if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                    log.warning(
                        "target.password_file %s is readable by other users: chmod 600 %s",
                        path,
                        path,
                    )
            return password
        password = os.environ.get(PASSWORD_ENV, "")
        if not password:
            raise PublishError(
                f"no WebDAV password: set target.password_file (a file, chmod 600) or the "
                f"environment variable {PASSWORD_ENV}"
            )
        return password

    def url(self, name: str) -> str:
        return urljoin(self.base, quote(name))

    def _path(self, url: str) -> str:
        return urlsplit(url).path

    def _request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Reply:
        """One request; a network failure becomes a PublishError that says what to do."""
        with self._lock:
            try:
                r = self._http().request(
                    method,
                    url,
                    body=body,
                    headers={**self._headers(), **(headers or {})},
                    redirect=False,
                    preload_content=False,
                )
                data = r.read(MAX_BODY + 1)
                if len(data) > MAX_BODY:
                    r.close()  # not worth reading: drop the connection instead
                else:
                    r.release_conn()
            except urllib3.exceptions.HTTPError as e:
                raise PublishError(f"{method} {self._path(url)}: {self._explain(e)}") from e
            return _Reply(r.status, r.headers, data)

    def _explain(self, e: urllib3.exceptions.HTTPError) -> str:
        cfg = self.cfg
        x = urllib3.exceptions
        reason = getattr(e, "reason", None) or e
        if isinstance(reason, x.SSLError) or isinstance(e, x.SSLError):
            return (
                f"the HTTPS certificate of {self.where} is not trusted ({reason}): renew or fix "
                "it, or trust your own CA with target.ca_file"
            )
        if isinstance(reason, x.NameResolutionError):
            return f"unknown host {urlsplit(self.base).hostname!r}"
        # NewConnectionError is a ConnectTimeoutError too in urllib3 2: it goes first.
        if isinstance(reason, x.NewConnectionError):
            if isinstance(reason.__cause__ or reason.__context__, TimeoutError):
                return f"no answer from {self.where} within {cfg.connect_timeout:g} s"
            return f"cannot connect to {self.where}: connection refused (is the server up?)"
        if isinstance(reason, x.ConnectTimeoutError):
            return f"no answer from {self.where} within {cfg.connect_timeout:g} s"
        if isinstance(reason, x.ReadTimeoutError) or isinstance(e, x.ReadTimeoutError):
            return f"{self.where} did not answer within {cfg.read_timeout:g} s"
        if isinstance(e, x.ProtocolError):
            return f"the connection to {self.where} was lost"
        return f"HTTP error with {self.where}: {type(e).__name__}"

    def _failed(self, method: str, url: str, r: _Reply) -> PublishError:
        """A PublishError explaining an unexpected HTTP status."""
        path = self._path(url)
        status = r.status
        if status == 401:
            self._auth = None  # read the password again next time: it may be fixed by then
            why = (
                f"{self.cfg.user} was refused (HTTP 401): check target.user and the password "
                f"(target.password_file or {PASSWORD_ENV})"
            )
        elif status == 403:
            why = (
                f"permission denied (HTTP 403): the server does not let {self.cfg.user} write here"
            )
        elif status in (301, 302, 303, 307, 308):
            to = r.headers.get("Location", "")
            why = f"the server redirects to {to} (HTTP {status}): set target.url to that"
        elif status == 405:
            why = (
                "method not allowed (HTTP 405): is WebDAV enabled at this URL? (nginx: "
                "dav_methods PUT DELETE MKCOL COPY MOVE; Apache: Dav On)"
            )
        elif status == 413:
            why = (
                "the server refused the file as too large (HTTP 413): raise its limit "
                "(nginx: client_max_body_size; Apache: LimitRequestBody)"
            )
        elif status == 507:
            why = "the server's disk is full or the user is over quota (HTTP 507)"
        elif status == 404:
            why = "not found (HTTP 404): does the collection exist, is target.url right?"
        elif status == 409:
            why = "conflict (HTTP 409): a parent collection is missing"
        elif status >= 500:
            why = (
                f"the server failed (HTTP {status}): see its error log (a full disk or file "
                "permissions on the server?)"
            )
        else:
            why = f"unexpected HTTP {status}"
        return PublishError(f"{method} {path}: {why}")

    # --- collections ---------------------------------------------------------------

    def _mkcols(self, url: str) -> None:
        """Make the collection at `url` (ending in /) and its missing parents."""
        if url in self._made:
            return
        r = self._request("MKCOL", url)
        if r.status == 409 and self._path(url) not in ("", "/"):
            self._mkcols(urljoin(url, ".."))
            r = self._request("MKCOL", url)
        if r.status == 201:
            log.info("created collection %s on %s", self._path(url), self.where)
        elif r.status not in (405, 200, 204):  # 405: it exists already
            raise self._failed("MKCOL", url, r)
        self._made.add(url)

    def _remade(self, url: str) -> bool:
        """Whether the collection at `url` was missing and is made again now."""
        self._made.clear()
        r = self._request("MKCOL", url)
        if r.status == 409:  # its parents are gone too
            self._mkcols(url)
            return True
        return r.status == 201

    def start(self) -> None:
        # No listing of temp files to clean: many servers (nginx among them) offer no
        # PROPFIND or hide dotfiles from it. A temp name is fixed per file instead, so
        # one left by a crash is overwritten and moved by the next publish of its file.
        self._mkcols(self.base)

    # --- files ---------------------------------------------------------------------

    def write(self, name: str, data: bytes | memoryview, content: str = JPEG_TYPE) -> None:
        """PUT `data` under a temp name, then MOVE it over `name`."""
        final, temp = self.url(name), self.url(_temp_name(name))
        parent = urljoin(final, ".")
        if parent != self.base:
            self._mkcols(parent)
        body = bytes(data)
        put = {"Content-Type": content}
        r = self._request("PUT", temp, body, put)
        recreated = False
        # The collection may have gone away under us (nginx answers that with a 500):
        # when MKCOL makes it anew, put the file (and the page) there again.
        if r.status in (404, 409, 500) and self._remade(parent):
            recreated = parent == self.base
            r = self._request("PUT", temp, body, put)
        if r.status not in (200, 201, 204):
            raise self._failed("PUT", temp, r)
        r = self._request("MOVE", temp, headers={"Destination": final, "Overwrite": "T"})
        if r.status not in (201, 204):
            error = self._failed("MOVE", temp, r)
            try:
                self._request("DELETE", temp)
            except PublishError:
                log.debug("cannot remove %s", temp)
            raise error
        if recreated and self._site:
            log.warning("%s was deleted; recreated it and republished the page", self.base)
            for page in self._site.values():
                if page.name != name:
                    self.write(page.name, page.data, content_type(page.name))
                    self._site_state.pop(page.name, None)

    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        for image in images:
            if self._stop.is_set():
                raise PublishError("stopping: the frame was not published")
            self.write(image.name, image.data)
        # Only after every image landed: viewers keep the previous, consistent frame.
        self.write(MANIFEST, manifest, JSON_TYPE)

    def _head(self, name: str) -> str | None:
        """What the server says of a file (its ETag, else size and date); None if absent."""
        url = self.url(name)
        r = self._request("HEAD", url)
        if r.status == 404:
            return None
        if r.status != 200:
            raise self._failed("HEAD", url, r)
        h = r.headers
        return h.get("ETag") or f"{h.get('Content-Length')}/{h.get('Last-Modified')}"

    def _get(self, name: str) -> bytes | None:
        url = self.url(name)
        r = self._request("GET", url)
        if r.status == 404:
            return None
        if r.status != 200:
            raise self._failed("GET", url, r)
        return bytes(r.data)

    def publish_site(self, files: Iterable[SiteFile], *, verify: bool = False) -> list[str]:
        changed = []
        for f in files:
            self._site[f.name] = f
            known = self._site_state.get(f.name)
            if known is not None and known[0] == f.md5 and not verify:
                continue
            remote = self._head(f.name)
            if known is not None and known[0] == f.md5 and remote == known[1]:
                continue  # our own upload, untouched since
            # A first look at a file that is there: compare its content.
            if known is None and remote is not None and self._get(f.name) == f.data:
                self._site_state[f.name] = (f.md5, remote)
                continue
            self.write(f.name, f.data, content_type(f.name))
            self._site_state[f.name] = (f.md5, self._head(f.name) or "")
            changed.append(f.name)
        return changed

    def missing(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self._head(name) is None]

    def read_manifest(self) -> bytes | None:
        try:
            return self._get(MANIFEST)
        except PublishError as e:
            raise PublishError(f"cannot read the manifest: {e}") from e

    # --- check ---------------------------------------------------------------------

    def check(self, report: Callable[[CheckStep], None]) -> bool:
        name = f"{TEMP_PREFIX}probe-{socket.gethostname()}-{os.getpid()}.txt"
        payload = b"livecam probe " + os.urandom(8).hex().encode()

        def read() -> str:
            body = self._get(name)
            if body != payload:
                got = "nothing" if body is None else f"{len(body)} bytes that differ"
                raise PublishError(f"read back {got} from what was written")
            return ""

        def delete() -> str:
            r = self._request("DELETE", self.url(name))
            if r.status not in (200, 204):
                raise self._failed("DELETE", self.url(name), r)
            return ""

        def write() -> str:
            self.write(name, payload, "text/plain")
            return "PUT to a temp name, then MOVE over the old file"

        def collection() -> str:
            self._mkcols(self.base)
            return "exists"

        def cleanup(what: str) -> None:
            if what.startswith("read"):
                self._try_delete(name)

        steps: list[Step] = [
            (f"collection {self.base}", collection),
            (f"write {self.url(name)}", write),
            (f"read {self.url(name)}", read),
            (f"delete {self.url(name)}", delete),
        ]
        return run_steps(steps, report, publish_error, cleanup)

    def _try_delete(self, name: str) -> None:
        try:
            self._request("DELETE", self.url(name))
        except PublishError:
            log.debug("cannot remove %s", name)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.clear()
                self._pool = None
