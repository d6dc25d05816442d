"""Real servers for the SFTP and WebDAV targets, started by the tests on loopback:
OpenSSH's sshd (internal-sftp) with a generated host key and user key, nginx with its
WebDAV module, and a small paramiko SFTP server that lacks posix-rename@openssh.com
(as some NAS and hosting servers do)."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Nginx, free_port, wait_for_port

SSHD = "/usr/sbin/sshd"
DAV_USER = "cam"
DAV_PASSWORD = "dav-secret-DO-NOT-LOG-4711"


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "livecam-test", "-f", str(path)],
        check=True,
    )
    return path


class Sshd:
    """OpenSSH's sshd on a loopback port, SFTP only (internal-sftp), key login as the
    user running the tests; `sftp_flags` go to internal-sftp (-R: read-only). It can
    be stopped and started again on the same port."""

    def __init__(self, sftp_flags: str = "", port: int | None = None) -> None:
        if not os.access(SSHD, os.X_OK):
            raise RuntimeError("sshd is not installed: run scripts/test (it installs it)")
        self.dir = Path(tempfile.mkdtemp(prefix="livecam-sshd-"))
        self.port = port or free_port()
        self.user = getpass.getuser()
        self.host_key = keygen(self.dir / "host_key")
        self.user_key = keygen(self.dir / "user_key")
        self.other_key = keygen(self.dir / "other_key")
        (self.dir / "authorized_keys").write_text(Path(f"{self.user_key}.pub").read_text())
        pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        self.config = self.dir / "sshd_config"
        self.config.write_text(
            f"HostKey {self.host_key}\n"
            "ListenAddress 127.0.0.1\n"
            f"PidFile {self.dir}/sshd.pid\n"
            f"AuthorizedKeysFile {self.dir}/authorized_keys\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            # The test directories live under /tmp, which StrictModes refuses.
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "AllowTcpForwarding no\n"
            "X11Forwarding no\n"
            f"Subsystem sftp internal-sftp -u 022 {sftp_flags}\n"
            "LogLevel ERROR\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sshd:
        if os.geteuid() == 0:
            # sshd as root wants its privilege separation directory (systemd makes it).
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config), "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.proc.kill()
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise RuntimeError(f"sshd did not start: {err}") from None
        return self

    def stop(self) -> None:
        """End the listener and every session it forked (a real outage drops the open
        connections too): the port refuses."""
        if self.proc is not None:
            sessions = descendants(self.proc.pid)
            self.proc.terminate()
            for pid in sessions:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def target(self, path: Path | str, **kw: Any) -> dict[str, Any]:
        """A `[target]` table for this server."""
        return {
            "kind": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "user": self.user,
            "path": str(path),
            "key_file": str(self.user_key),
            "known_hosts": str(self.known_hosts),
            "connect_timeout": 3.0,
            "read_timeout": 5.0,
            **kw,
        }

    def toml(self, path: Path | str, **kw: Any) -> str:
        return toml_table("target", self.target(path, **kw))


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (its children, theirs, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def toml_table(name: str, table: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    for key, value in table.items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@pytest.fixture(name="sshd")
def sshd_fixture() -> Iterator[Sshd]:
    server = Sshd().start()
    yield server
    server.close()


# --- nginx with WebDAV ------------------------------------------------------------------

DAV_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        root {root};
        client_max_body_size 50m;
        location / {{
            dav_methods PUT DELETE MKCOL COPY MOVE;
            dav_access user:rw group:r all:r;
            auth_basic "livecam test";
            auth_basic_user_file {prefix}/htpasswd;
        }}
        location /readonly/ {{
            limit_except GET HEAD {{ deny all; }}
            dav_methods PUT DELETE MKCOL COPY MOVE;
            auth_basic "livecam test";
            auth_basic_user_file {prefix}/htpasswd;
        }}
    }}
"""


class DavNginx(Nginx):
    """nginx with its WebDAV module (dav_methods) and basic auth; `root` must be
    writable by nginx's workers."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        port = port or free_port()
        prefix = Path(tempfile.mkdtemp(prefix="livecam-dav-"))
        server = DAV_SERVER.format(port=port, root=root, prefix=prefix)
        super().__init__(server=server, port=port)
        shutil.rmtree(prefix)
        # Move the htpasswd path into our prefix; workers (nobody when root runs nginx)
        # must reach it and the request body temp directory.
        self.conf.write_text(self.conf.read_text().replace(str(prefix), str(self.prefix)))
        self.prefix.chmod(0o755)
        htpasswd = self.prefix / "htpasswd"
        htpasswd.write_text(f"{DAV_USER}:{{PLAIN}}{DAV_PASSWORD}\n")
        htpasswd.chmod(0o644)
        root.chmod(0o777)

    def target(self, path: str = "", **kw: Any) -> dict[str, Any]:
        return {
            "kind": "webdav",
            "url": f"{self.url}{path}",
            "user": DAV_USER,
            "connect_timeout": 3.0,
            "read_timeout": 5.0,
            **kw,
        }


@pytest.fixture(name="dav_root")
def dav_root_fixture() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="livecam-davroot-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(name="dav")
def dav_fixture(dav_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DavNginx]:
    server = DavNginx(dav_root).start()
    monkeypatch.setenv("LIVECAM_WEBDAV_PASSWORD", DAV_PASSWORD)
    yield server
    server.close()


# --- a paramiko SFTP server without posix-rename ----------------------------------------


class PlainSftpServer:
    """An SFTP server (paramiko) serving the real file system, whose rename follows
    SFTP v3 (refuses an existing target) and which lacks posix-rename@openssh.com."""

    def __init__(self, user_key: Path) -> None:
        import paramiko

        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="livecam-plainsftp-"))
        self.host_key = paramiko.Ed25519Key.from_private_key_file(str(keygen(self.dir / "hk")))
        self.allowed = paramiko.Ed25519Key.from_private_key_file(str(user_key))
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"
        )
        self.renames = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(8)
        self._transports: list[Any] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        import paramiko

        outer = self

        class Server(paramiko.ServerInterface):
            def get_allowed_auths(self, username: str) -> str:
                return "publickey"

            def check_auth_publickey(self, username: str, key: Any) -> int:
                ok = key.asbytes() == outer.allowed.asbytes()
                return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

            def check_channel_request(self, kind: str, chanid: int) -> int:
                return paramiko.OPEN_SUCCEEDED

        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            t.set_subsystem_handler("sftp", paramiko.SFTPServer, _files(outer))
            t.start_server(server=Server())
            self._transports.append(t)

    def close(self) -> None:
        self._sock.close()
        for t in self._transports:
            t.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _files(outer: PlainSftpServer) -> Any:
    import paramiko
    from paramiko.sftp import SFTP_FAILURE, SFTP_OK

    def status(e: OSError) -> int:
        return int(paramiko.SFTPServer.convert_errno(e.errno))

    class Handle(paramiko.SFTPHandle):
        def stat(self) -> Any:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    class Files(paramiko.SFTPServerInterface):
        def list_folder(self, path: str) -> Any:
            try:
                return [
                    paramiko.SFTPAttributes.from_stat(os.stat(os.path.join(path, n)), n)
                    for n in os.listdir(path)
                ]
            except OSError as e:
                return status(e)

        def stat(self, path: str) -> Any:
            try:
                return paramiko.SFTPAttributes.from_stat(os.stat(path))
            except OSError as e:
                return status(e)

        lstat = stat

        def open(self, path: str, flags: int, attr: Any) -> Any:
            try:
                fd = os.open(path, flags | getattr(os, "O_BINARY", 0), 0o644)
                mode = "rb" if flags & os.O_ACCMODE == os.O_RDONLY else "r+b"
                f = os.fdopen(fd, mode)
            except OSError as e:
                return status(e)
            h = Handle(flags)
            h.readfile = h.writefile = f  # type: ignore[attr-defined]
            h.filename = path  # type: ignore[attr-defined]
            return h

        def remove(self, path: str) -> int:
            try:
                os.remove(path)
            except OSError as e:
                return status(e)
            return SFTP_OK

        def rename(self, oldpath: str, newpath: str) -> int:
            if os.path.exists(newpath):
                return SFTP_FAILURE  # SFTP v3: the target must not exist
            try:
                os.rename(oldpath, newpath)
            except OSError as e:
                return status(e)
            outer.renames += 1
            return SFTP_OK

        def mkdir(self, path: str, attr: Any) -> int:
            try:
                os.mkdir(path)
            except OSError as e:
                return status(e)
            return SFTP_OK

        def chattr(self, path: str, attr: Any) -> int:
            return SFTP_OK

    return Files
