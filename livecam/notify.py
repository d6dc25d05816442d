"""systemd's notify protocol (sd_notify): READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

A datagram to the socket named by $NOTIFY_SOCKET; a no-op when it is not set, so the
same code runs under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to systemd when it is listening."""

    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        if self.address:
            # Python's sockets are close-on-exec already (PEP 446); SOCK_CLOEXEC is Linux-only.
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> None:
        if self._sock is None:
            return
        # One assignment per line: a newline inside a value (an error message in
        # STATUS=) would start a bogus assignment of its own.
        message = "\n".join(" ".join(f.splitlines()) for f in fields)
        try:
            self._sock.sendto(message.encode("utf-8"), self.address)
        except OSError as e:  # systemd gone or restarting: never worth dying for
            log.debug("sd_notify failed: %s", e)

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self, status: str = "") -> None:
        self.send("WATCHDOG=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_period() -> float:
    """Half of systemd's WatchdogSec, or 0 when there is no watchdog (or it watches
    another process: sd_watchdog_enabled() checks $WATCHDOG_PID too)."""
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return 0.0
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0.0
    return usec / 2e6 if usec > 0 else 0.0
