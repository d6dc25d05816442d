"""`source = "command"`: a program that writes one JPEG to stdout, run for every frame.

For cameras picamera2 cannot drive: a USB webcam (`fswebcam -q --no-banner -`), an IP
camera's snapshot URL (`curl -fsS http://192.168.1.20/snapshot.jpg`), or
`rpicam-still -n -t 1 -o -`. The frame is the JPEG as the program wrote it (its own
size; the variants' bounding boxes still apply). Output is read with a time limit
(`camera.timeout`) and a size limit, and must be one whole JPEG of at most
`MAX_PIXELS` (the capture size's bound), checked in its header before it is decoded.

The program runs in its own process group, killed whole on every way out: after it
exits (a background grandchild goes too), on a timeout or an error, by `close()` from
another thread (a stopping service), and when the interpreter exits.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
import warnings
from datetime import UTC, datetime

from PIL import Image, ImageOps

from livecam.camera.base import PIXEL_MODES, Camera, Frame
from livecam.config import MAX_PIXELS, MAX_SIZE, CameraConfig, hide_userinfo
from livecam.errors import CameraError

MAX_BYTES = 64 * 1024 * 1024  # far above any real snapshot; a runaway program stops here
STDERR_KEEP = 4096  # bytes of stderr kept for the error message
# systemd's variables are for this process only (sd_notify unsets them for children).
PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

# Every running child of every command camera, for close() and the exit hook. A child
# leaves the set, its group killed, under the lock and before it is reaped: its pid, and
# so its group id, cannot be reused while anyone may still signal it.
_lock = threading.Lock()
_running: set[subprocess.Popen[bytes]] = set()
_exiting = False


class CommandCamera(Camera):
    """Runs `camera.command` once per frame and decodes the JPEG it writes."""

    def __init__(self, cfg: CameraConfig) -> None:
        self.cfg = cfg
        self.argv = list(cfg.command)
        # Only the program's name goes into messages: arguments may hold a password
        # (curl -u, a URL with credentials).
        self.program = os.path.basename(self.argv[0])
        if shutil.which(self.argv[0]) is None:
            raise CameraError(
                f"camera.command: {self.argv[0]!r} is not an installed program "
                "(install it, or give its full path)"
            )
        self._env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        self._children: set[subprocess.Popen[bytes]] = set()
        self._closed = False

    def describe(self) -> str:
        return f"command camera: {self.program}"

    def close(self) -> None:
        """Kill the program's process group if it is running (a capture in another
        thread then fails at once); no capture starts after this."""
        with _lock:
            self._closed = True
            for proc in self._children:
                _kill_group(proc)

    def capture(self) -> Frame:
        data = self._run()
        captured_at = datetime.now(UTC)
        return Frame(self._decode(data), captured_at)

    def _run(self) -> bytes:
        """The program's stdout; raises `CameraError` on a failure, a timeout or too much."""
        timeout = self.cfg.timeout
        deadline = time.monotonic() + timeout
        proc = self._spawn()
        out = bytearray()
        err = bytearray()
        problem = ""
        with proc, selectors.DefaultSelector() as sel:
            assert proc.stdout is not None and proc.stderr is not None
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            try:
                while sel.get_map() and not problem:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        problem = f"did not finish within {timeout:g} s (camera.timeout)"
                        break
                    for key, _ in sel.select(left):
                        chunk = os.read(key.fd, 65536)
                        if not chunk:
                            sel.unregister(key.fileobj)
                        elif key.data is out:
                            out += chunk
                            if len(out) > MAX_BYTES:
                                problem = f"wrote more than {MAX_BYTES // 2**20} MiB"
                        else:
                            err += chunk
                            del err[:-STDERR_KEEP]
                if not problem and not _exited(proc, deadline):
                    problem = f"did not exit within {timeout:g} s (camera.timeout)"
            finally:
                self._end(proc)
        if problem:
            raise CameraError(f"camera.command ({self.program}) {problem}")
        if proc.returncode != 0:
            rc = proc.returncode
            how = f"was killed by {_signal_name(-rc)}" if rc < 0 else f"exited with status {rc}"
            last = hide_userinfo(_last_line(bytes(err)))  # e.g. an rtsp://user:pw@ URL
            raise CameraError(
                f"camera.command ({self.program}) {how}" + (f": {last}" if last else "")
            )
        if not out:
            raise CameraError(
                f"camera.command ({self.program}) wrote nothing to stdout; it must write one "
                "JPEG there (e.g. rpicam-still -n -t 1 -o -)"
            )
        return bytes(out)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with _lock:
            if self._closed or _exiting:
                raise CameraError(f"camera.command ({self.program}): the camera is closed")
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self._env,
                    start_new_session=True,  # its own process group, to kill it whole
                )
            except OSError as e:
                raise CameraError(f"cannot run camera.command ({self.program}): {e}") from e
            self._children.add(proc)
            _running.add(proc)
        return proc

    def _end(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill what is left of the program's group (a background grandchild too), then
        reap the program."""
        with _lock:
            self._children.discard(proc)
            _running.discard(proc)
            _kill_group(proc)
        proc.wait()

    def _decode(self, data: bytes) -> Image.Image:
        who = f"camera.command ({self.program})"
        if not data.startswith(b"\xff\xd8\xff"):
            raise CameraError(f"{who} wrote {len(data)} bytes that are not a JPEG ({_sniff(data)})")
        image: Image.Image
        try:
            # Only the header is read here; our own bound below says more than the
            # warning Pillow gives past its limit.
            with warnings.catch_warnings(action="ignore", category=Image.DecompressionBombWarning):
                image = Image.open(io.BytesIO(data), formats=["JPEG"])
            # JPEG's own YCbCr, not converted to RGB: the renderer encodes that.
            image.draft("YCbCr", None)
            w, h = image.size
            if w > MAX_SIZE or h > MAX_SIZE or w * h > MAX_PIXELS:
                raise CameraError(
                    f"{who} wrote a {w}x{h} JPEG ({w * h / 1e6:.0f} megapixels), too large "
                    f"to decode: at most {MAX_PIXELS / 1e6:.0f} megapixels and {MAX_SIZE} a "
                    "side, as for camera.width/height (ask the program for a smaller image)"
                )
            image.load()  # a truncated JPEG fails here ("image file is truncated")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise CameraError(
                f"{who} wrote a broken or truncated JPEG ({len(data)} bytes): {e}"
            ) from e
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: turn it upright
            image = ImageOps.exif_transpose(image)
        return image if image.mode in PIXEL_MODES else image.convert("RGB")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (the caller holds `_lock`; the child is not
    reaped yet, so its group id is still its own)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is gone already
    except PermissionError:  # a member changed user (setuid): the child at least
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGKILL)


def _exited(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until the child exits or `deadline` passes, without reaping it: until
    `_end` kills its group, the pid stays taken."""
    if not hasattr(os, "waitid"):  # macOS: reap it (a tiny window for pid reuse)
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


@atexit.register
def _kill_all() -> None:
    """At interpreter exit: no command outlives the publisher, whatever thread ran it."""
    global _exiting
    with _lock:
        _exiting = True
        for proc in _running:
            _kill_group(proc)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(stderr: bytes) -> str:
    """The last non-empty line of a program's stderr, printable and short."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return ""
    line = "".join(c if c.isprintable() else "?" for c in lines[-1])
    return line if len(line) <= 200 else line[:197] + "..."


def _sniff(data: bytes) -> str:
    """What the bytes look like instead, for the error message."""
    if data.startswith(b"\x89PNG"):
        return "a PNG image; ask the program for JPEG"
    head = data[:200].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{")):
        return "text, an error page perhaps"
    return f"they start with {data[:8].hex(' ')}"
