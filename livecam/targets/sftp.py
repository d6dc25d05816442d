"""`kind = "sftp"`: a directory on a web server reached over SSH.

One SSH connection for the life of the process, kept open with keepalives and opened
again after a failure (the loop's backoff paces the attempts). Each file is written to
a temp name in its own directory and renamed over the old one with the
posix-rename@openssh.com extension, an atomic replace: a visitor sees the old file or
the new one, never a part and never a gap. Images go first, the manifest last.

The server's host key must already be in known_hosts: it is never trusted on first
sight, and `check` prints the line to add.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import logging
import os
import posixpath
import socket
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import paramiko

from livecam.config import TargetConfig
from livecam.errors import PublishError
from livecam.manifest import NAME as MANIFEST
from livecam.rendered import Rendered
from livecam.site import SiteFile
from livecam.targets.base import CheckStep, Step, Target, publish_error, run_steps
from livecam.targets.local import TEMP_PREFIX, TEMP_SUFFIX

log = logging.getLogger(__name__)

KEEPALIVE = 15.0  # seconds between SSH keepalives: home routers drop idle connections
MAX_MANIFEST = 1_000_000

# Said once per process: every frame would repeat it otherwise.
_fallback_logged = False


class HostKeyError(PublishError):
    """The server's host key is not in known_hosts, or differs from the one there."""


def fingerprint(key: paramiko.PKey) -> str:
    """A host key's fingerprint as `ssh-keygen -l` prints it (SHA256:...)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_line(host: str, key: paramiko.PKey) -> str:
    """The known_hosts line that trusts `key` for `host` ("[host]:port" off port 22)."""
    return f"{host} {key.get_name()} {key.get_base64()}"


def _host(cfg: TargetConfig) -> str:
    return cfg.host if cfg.port == 22 else f"[{cfg.host}]:{cfg.port}"


def _why(e: OSError) -> str:
    """An SFTP status as words. OpenSSH reports a full disk as a bare "Failure"."""
    if e.errno == errno.ENOENT:
        return "no such file or directory"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    text = (e.strerror or str(e) or type(e).__name__).strip()
    if text.lower().startswith("failure"):
        return f'the server answered "{text}": is its disk full, or the user over quota?'
    return text


def _is_status(e: BaseException) -> bool:
    """An SFTP status reply (the connection is fine), not a broken connection."""
    return type(e) in (OSError, FileNotFoundError, PermissionError)


class SFTPTarget(Target):
    """Publishes into `path` on `host` over SFTP, as `user`."""

    def __init__(self, cfg: TargetConfig, stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.dir = cfg.path
        self.known_hosts = os.path.expanduser(cfg.known_hosts or "~/.ssh/known_hosts")
        self._stop = stop or threading.Event()
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._lock = threading.RLock()
        self._posix_rename = True  # until the server says it lacks the extension
        self._chmod = False  # the server's umask hides files from the web server
        self._mode_known = False
        self._made: set[str] = set()  # directories known to exist
        self._site: dict[str, SiteFile] = {}
        self._site_state: dict[str, tuple[str, int, int]] = {}  # md5, size, mtime

    def describe(self) -> str:
        port = "" if self.cfg.port == 22 else f" (port {self.cfg.port})"
        return f"SFTP {self.cfg.user}@{self.cfg.host}:{self.dir}{port}"

    # --- the connection ------------------------------------------------------------

    def _connect(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        cfg = self.cfg
        client = paramiko.SSHClient()
        try:
            client.load_system_host_keys(self.known_hosts)
        except FileNotFoundError:
            pass  # no known host at all: explained when the server shows its key
        except (OSError, paramiko.SSHException) as e:
            raise PublishError(f"cannot read known_hosts {self.known_hosts}: {e}") from e
        client.set_missing_host_key_policy(_Reject(self.known_hosts))
        if cfg.key_file:
            try:
                with open(cfg.key_file, "rb"):
                    pass
            except OSError as e:
                raise PublishError(
                    f"cannot read target.key_file {cfg.key_file}: {e.strerror or e}"
                ) from e
        try:
            client.connect(
                cfg.host,
                cfg.port,
                cfg.user,
                key_filename=cfg.key_file,
                # Without a key_file: the agent, then ~/.ssh/id_*, as ssh does.
                allow_agent=cfg.key_file is None,
                look_for_keys=cfg.key_file is None,
                timeout=cfg.connect_timeout,
                banner_timeout=cfg.connect_timeout,
                auth_timeout=cfg.connect_timeout,
            )
            transport = client.get_transport()
            if transport is not None:
                transport.set_keepalive(int(KEEPALIVE))
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(cfg.read_timeout)
        except HostKeyError:
            client.close()
            raise
        except Exception as e:
            client.close()
            raise PublishError(self._explain_connect(e)) from e
        log.info("connected to %s", self.describe())
        self._client, self._sftp = client, sftp
        self._mode_known = False
        self._posix_rename = True
        self._made.clear()
        return sftp

    def _explain_connect(self, e: BaseException) -> str:
        cfg = self.cfg
        where = f"{cfg.host}:{cfg.port}"
        if isinstance(e, paramiko.BadHostKeyException):
            host = _host(cfg)
            return (
                f"the host key of {host} CHANGED: {self.known_hosts} has "
                f"{e.expected_key.get_name()} {fingerprint(e.expected_key)}, the server shows "
                f"{e.key.get_name()} {fingerprint(e.key)}. Someone may be intercepting the "
                "connection; if the server was reinstalled, run "
                f"ssh-keygen -R '{host}' -f {self.known_hosts} and add: "
                f"{known_hosts_line(host, e.key)}"
            )
        if isinstance(e, paramiko.PasswordRequiredException):
            return (
                f"target.key_file {cfg.key_file} is protected by a passphrase: give the "
                "service a key without one (ssh-keygen -t ed25519 -N '') or load it into "
                "ssh-agent and leave key_file unset"
            )
        if isinstance(e, paramiko.AuthenticationException):
            key = (
                f"the key {cfg.key_file}"
                if cfg.key_file
                else "no key from the SSH agent or ~/.ssh (set target.key_file)"
            )
            return (
                f"{cfg.user}@{where} refused {key}: authentication failed. Add the public "
                f"key to ~{cfg.user}/.ssh/authorized_keys on the server "
                "(ssh-copy-id -i KEY.pub, see docs/remote.md)"
            )
        if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError | ConnectionError):
            return f"cannot connect to {where}: connection refused (is sshd running there?)"
        if isinstance(e, socket.gaierror):
            return f"unknown host {cfg.host!r}: {e.strerror}"
        if isinstance(e, TimeoutError):
            return f"no answer from {where} within {cfg.connect_timeout:g} s"
        if isinstance(e, paramiko.SSHException):
            text = str(e)
            if "banner" in text.lower():
                return f"{where} does not speak SSH ({text}): check target.port"
            if "channel" in text.lower() or "subsystem" in text.lower():
                return f"{where} accepted the login but offers no SFTP ({text})"
            return f"SSH error with {where}: {text}"
        if isinstance(e, OSError):
            return f"cannot connect to {where}: {e.strerror or e}"
        return f"SSH error with {where}: {type(e).__name__}: {e}"

    def _drop(self) -> None:
        """Forget a connection that failed; the next operation opens a new one."""
        client, self._client, self._sftp = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception:  # a dead connection may fail to close: it is gone anyway
                log.debug("closing the SSH connection failed", exc_info=True)

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client is not None else None
        return transport is not None and transport.is_active()

    def _run(self, what: str, action: Callable[[paramiko.SFTPClient], Any]) -> Any:
        """`action` on the connection; any failure becomes a PublishError naming `what`,
        and a broken connection is dropped for the next call to open again."""
        with self._lock:
            sftp = self._connect()
            try:
                return action(sftp)
            except PublishError:
                raise
            except Exception as e:
                if not _is_status(e) or not self._alive():
                    self._drop()
                    if isinstance(e, TimeoutError):
                        reason = f"no answer within {self.cfg.read_timeout:g} s"
                    else:
                        reason = f"connection lost ({type(e).__name__}: {e})"
                    raise PublishError(f"{what}: {reason}") from e
                raise PublishError(f"{what}: {_why(e)}") from e  # type: ignore[arg-type]

    def start(self) -> None:
        removed = self._run(f"cannot prepare {self.dir}", self._prepare)
        if removed:
            log.info("removed %d temp file(s) left by an earlier run in %s", removed, self.dir)

    def _prepare(self, sftp: paramiko.SFTPClient) -> int:
        self._mkdirs(sftp, self.dir)
        return self._clean(sftp, self.dir)

    def _clean(self, sftp: paramiko.SFTPClient, directory: str) -> int:
        count = 0
        for name in sftp.listdir(directory):
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                try:
                    sftp.remove(posixpath.join(directory, name))
                    count += 1
                except OSError as e:
                    if not _is_status(e):
                        raise
                    log.warning("cannot remove temp file %s: %s", name, _why(e))
        return count

    def _mkdirs(self, sftp: paramiko.SFTPClient, directory: str) -> None:
        """Create `directory` and its missing parents, as mkdir -p."""
        if directory in self._made:
            return
        parts = directory.split("/")
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            if not path or path in self._made:
                continue
            try:
                mode = sftp.stat(path).st_mode
            except FileNotFoundError:
                try:
                    sftp.mkdir(path, 0o755)
                except OSError as e:
                    if not _is_status(e):
                        raise
                    raise PublishError(
                        f"cannot create directory {path} on the server: {_why(e)}"
                    ) from e
                log.info("created directory %s on %s", path, self.cfg.host)
            else:
                if mode is not None and not stat.S_ISDIR(mode):
                    raise PublishError(f"{path} on the server exists but is not a directory")
            self._made.add(path)

    # --- files ---------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return posixpath.join(self.dir, name)

    def write(self, name: str, data: bytes | memoryview) -> None:
        """Replace `name` on the server with `data`: a temp file, then a rename."""
        recreated = self._run(
            f"cannot write {self._path(name)}", lambda s: self._put(s, name, data)
        )
        if recreated and self._site:
            log.warning("%s was deleted; recreated it and republished the page", self.dir)
            for page in self._site.values():
                if page.name != name:
                    self.write(page.name, page.data)
                    self._site_state.pop(page.name, None)

    def _put(self, sftp: paramiko.SFTPClient, name: str, data: bytes | memoryview) -> bool:
        final = self._path(name)
        parent = posixpath.dirname(final)
        temp = posixpath.join(parent, f"{TEMP_PREFIX}{posixpath.basename(final)}{TEMP_SUFFIX}")
        recreated = False
        if parent != self.dir:
            self._mkdirs(sftp, parent)
        try:
            try:
                self._write_temp(sftp, temp, data)
            except FileNotFoundError:
                # The directory went away under us: make it again (and the page in it).
                self._made.clear()
                self._mkdirs(sftp, parent)
                recreated = parent == self.dir
                self._write_temp(sftp, temp, data)
            self._replace(sftp, temp, final)
        except Exception as e:
            if _is_status(e):  # a connection that broke cannot remove anything
                try:
                    sftp.remove(temp)
                except Exception:  # the next start cleans it in any case
                    log.debug("cannot remove %s", temp, exc_info=True)
            raise
        return recreated

    def _write_temp(self, sftp: paramiko.SFTPClient, temp: str, data: bytes | memoryview) -> None:
        with sftp.open(temp, "wb") as f:
            f.set_pipelined(True)  # one round trip for the whole file, not one per block
            f.write(bytes(data))
            # Pipelined writes report no error (paramiko drops their replies): the size
            # tells whether all landed, as paramiko's own put() checks.
            st = f.stat()
            if st.st_size != len(data):
                raise OSError(f"Failure (the server kept {st.st_size} of {len(data)} bytes)")
            if not self._mode_known:
                # The web server must read what we publish; a strict umask on the
                # server (0600 files) would hide it. Looked at once per connection.
                self._chmod = (st.st_mode or 0) & 0o044 != 0o044
                self._mode_known = True
            if self._chmod:
                f.chmod(0o644)

    def _replace(self, sftp: paramiko.SFTPClient, temp: str, final: str) -> None:
        global _fallback_logged
        if self._posix_rename:
            try:
                sftp.posix_rename(temp, final)
                return
            except OSError as e:
                if not _is_status(e) or e.errno == errno.ENOENT:
                    raise
                first = e
            # The server refused the extension: try the plain rename, and only when
            # it works take that as the server's lack, not a permission problem.
            try:
                self._plain_rename(sftp, temp, final)
            except OSError:
                raise first from None
            self._posix_rename = False
            if not _fallback_logged:
                _fallback_logged = True
                log.warning(
                    "the SFTP server %s refused posix-rename@openssh.com (%s): replacing a "
                    "file is remove + rename there, so a visitor may briefly miss an image "
                    "(OpenSSH servers have the extension; docs/remote.md)",
                    self.cfg.host,
                    _why(first),
                )
            return
        self._plain_rename(sftp, temp, final)

    @staticmethod
    def _plain_rename(sftp: paramiko.SFTPClient, temp: str, final: str) -> None:
        # SFTP v3's rename refuses an existing target: remove it first (a short gap).
        with contextlib.suppress(FileNotFoundError):
            sftp.remove(final)
        sftp.rename(temp, final)

    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        for image in images:
            if self._stop.is_set():
                raise PublishError("stopping: the frame was not published")
            self.write(image.name, image.data)
        # Only after every image landed: viewers keep the previous, consistent frame.
        self.write(MANIFEST, manifest)

    # --- the page ------------------------------------------------------------------

    def publish_site(self, files: Iterable[SiteFile], *, verify: bool = False) -> list[str]:
        changed = []
        for f in files:
            self._site[f.name] = f
            known = self._site_state.get(f.name)
            if known is not None and known[0] == f.md5 and not verify:
                continue
            remote = self._stat(f.name)
            if known is not None and known[0] == f.md5 and remote == known[1:]:
                continue  # our own upload, untouched since
            # A first look: the same size may be the same file; read to be sure.
            first = known is None and remote is not None and remote[0] == len(f.data)
            if first and remote is not None and self._read(f.name) == f.data:
                self._site_state[f.name] = (f.md5, *remote)
                continue
            self.write(f.name, f.data)
            after = self._stat(f.name)
            self._site_state[f.name] = (f.md5, *(after or (len(f.data), 0)))
            changed.append(f.name)
        return changed

    def _stat(self, name: str) -> tuple[int, int] | None:
        """Size and mtime of a published file, None when it is not there."""
        path = self._path(name)
        found: tuple[int, int] | None = self._run(
            f"cannot look at {path}", partial(_stat_path, path=path)
        )
        return found

    def _read(self, name: str) -> bytes:
        path = self._path(name)
        body: bytes = self._run(f"cannot read {path}", partial(_read, path=path))
        return body

    def missing(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self._stat(name) is None]

    def read_manifest(self) -> bytes | None:
        try:
            return self._read(MANIFEST)
        except PublishError as e:
            if isinstance(e.__cause__, FileNotFoundError):
                return None
            raise

    # --- check ---------------------------------------------------------------------

    def check(self, report: Callable[[CheckStep], None]) -> bool:
        name = f"{TEMP_PREFIX}probe-{socket.gethostname()}-{os.getpid()}.txt"
        path = self._path(name)
        payload = b"livecam probe " + os.urandom(8).hex().encode()

        def connect() -> str:
            self._run("cannot connect", lambda s: None)
            return f"host key {self.known_hosts} ok, logged in"

        def directory() -> str:
            self._run(f"cannot use {self.dir}", lambda s: self._mkdirs(s, self.dir))
            return "exists"

        def write() -> str:
            self.write(name, payload)
            if self._posix_rename:
                return "atomic replace (posix-rename@openssh.com)"
            return "plain rename: this server leaves a short gap while replacing a file"

        def read() -> str:
            body = self._read(name)
            if body != payload:
                raise PublishError(f"read back {len(body)} bytes that differ from those written")
            return ""

        def delete() -> str:
            self._run(f"cannot delete {path}", lambda s: s.remove(path))
            return ""

        def cleanup(what: str) -> None:
            if what.startswith(("read", "delete")):
                self._try(lambda s: s.remove(path))

        steps: list[Step] = [
            (f"connect {self.cfg.user}@{self.cfg.host}:{self.cfg.port}", connect),
            (f"directory {self.dir}", directory),
            (f"write {path}", write),
            (f"read {path}", read),
            (f"delete {path}", delete),
        ]
        return run_steps(steps, report, publish_error, cleanup)

    def _try(self, action: Callable[[paramiko.SFTPClient], Any]) -> None:
        with contextlib.suppress(PublishError):
            self._run("cleaning up", action)

    def close(self) -> None:
        with self._lock:
            self._drop()


class _Reject(paramiko.MissingHostKeyPolicy):
    """The host-key policy: an unknown key is refused with the line that would trust it."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyError(
            f"the host key of {hostname} is not in {self.known_hosts}: the server shows "
            f"{key.get_name()} {fingerprint(key)}. If that is the server's key (on the "
            "server: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add this line to "
            f"{self.known_hosts}: {known_hosts_line(hostname, key)}"
        )


def _read(sftp: paramiko.SFTPClient, path: str) -> bytes:
    with sftp.open(path, "rb") as f:
        f.prefetch()
        return bytes(f.read(MAX_MANIFEST))


def _stat_path(sftp: paramiko.SFTPClient, path: str) -> tuple[int, int] | None:
    try:
        st = sftp.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_size or 0, st.st_mtime or 0)
