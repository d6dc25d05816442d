"""`source = "command"`: a program that writes one JPEG to stdout, run for every frame.

For cameras picamera2 cannot drive: a USB webcam (`fswebcam -q --no-banner -`), an IP
camera's snapshot URL (`curl -fsS http://192.168.1.20/snapshot.jpg`), or
`rpicam-still -n -t 1 -o -`. The frame is the JPEG as the program wrote it (its own
size; the variants' bounding boxes still apply). Output is read with a time limit
(`camera.timeout`) and a size limit, and must be one whole JPEG.
"""

from __future__ import annotations

import io
import os
import selectors
import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime

from PIL import Image, ImageOps

from livecam.camera.base import PIXEL_MODES, Camera, Frame
from livecam.config import MAX_SIZE, CameraConfig
from livecam.errors import CameraError

MAX_BYTES = 64 * 1024 * 1024  # far above any real snapshot; a runaway program stops here
STDERR_KEEP = 4096  # bytes of stderr kept for the error message
# systemd's variables are for this process only (sd_notify unsets them for children).
PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


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

    def describe(self) -> str:
        return f"command camera: {self.program}"

    def capture(self) -> Frame:
        data = self._run()
        captured_at = datetime.now(UTC)
        return Frame(self._decode(data), captured_at)

    def _run(self) -> bytes:
        """The program's stdout; raises `CameraError` on a failure, a timeout or too much."""
        timeout = self.cfg.timeout
        deadline = time.monotonic() + timeout
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                start_new_session=True,  # its own process group: a timeout kills it all
            )
        except OSError as e:
            raise CameraError(f"cannot run camera.command ({self.program}): {e}") from e
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
                if not problem:
                    try:
                        proc.wait(max(0.01, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        problem = f"did not exit within {timeout:g} s (camera.timeout)"
            finally:
                if proc.poll() is None:
                    _kill(proc)
        if problem:
            raise CameraError(f"camera.command ({self.program}) {problem}")
        if proc.returncode != 0:
            rc = proc.returncode
            how = f"was killed by {_signal_name(-rc)}" if rc < 0 else f"exited with status {rc}"
            last = _last_line(bytes(err))
            raise CameraError(
                f"camera.command ({self.program}) {how}" + (f": {last}" if last else "")
            )
        if not out:
            raise CameraError(
                f"camera.command ({self.program}) wrote nothing to stdout; it must write one "
                "JPEG there (e.g. rpicam-still -n -t 1 -o -)"
            )
        return bytes(out)

    def _decode(self, data: bytes) -> Image.Image:
        who = f"camera.command ({self.program})"
        if not data.startswith(b"\xff\xd8\xff"):
            raise CameraError(f"{who} wrote {len(data)} bytes that are not a JPEG ({_sniff(data)})")
        image: Image.Image
        try:
            image = Image.open(io.BytesIO(data), formats=["JPEG"])
            # JPEG's own YCbCr, not converted to RGB: the renderer encodes that.
            image.draft("YCbCr", None)
            w, h = image.size
            if w > MAX_SIZE or h > MAX_SIZE:
                raise CameraError(f"{who} wrote a {w}x{h} JPEG; at most {MAX_SIZE} a side")
            image.load()  # a truncated JPEG fails here ("image file is truncated")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise CameraError(
                f"{who} wrote a broken or truncated JPEG ({len(data)} bytes): {e}"
            ) from e
        if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: turn it upright
            image = ImageOps.exif_transpose(image)
        return image if image.mode in PIXEL_MODES else image.convert("RGB")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


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
