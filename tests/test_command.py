"""`source = "command"`: real programs (cat, sh, sleep) writing JPEGs, and the ways
they go wrong: exit status, nothing, not a JPEG, truncated, too big, too slow."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config
from livecam.camera import command as command_mod
from livecam.camera.command import CommandCamera
from livecam.errors import CameraError
from livecam.loop import Publisher
from livecam.targets.local import LocalTarget

from .conftest import PUBLISHER, ROOT, run_cli, write_config


def jpeg(
    path: Path, size: tuple[int, int] = (640, 480), colour: Any = (255, 0, 0), **save: Any
) -> Path:
    Image.new("RGB", size, colour).save(path, "JPEG", quality=90, **save)
    return path


def camera(*argv: str, timeout: float = 5.0) -> CommandCamera:
    cfg = config.parse(
        {
            "camera": {"source": "command", "command": list(argv), "timeout": timeout},
            "target": {"kind": "local", "path": "/nonexistent"},
        }
    )
    return CommandCamera(cfg.camera)


def test_a_jpeg_on_stdout_is_the_frame_at_its_own_size(tmp_path: Path) -> None:
    cam = camera("cat", str(jpeg(tmp_path / "a.jpg", (1000, 750))))
    with cam.capture() as frame:
        assert frame.size == (1000, 750)
        assert frame.image.mode == "YCbCr"  # as the JPEG holds it: no colour conversion
        r, g, b = frame.image.convert("RGB").getpixel((500, 375))  # type: ignore[misc]
        assert r > 240 and g < 15 and b < 15
        assert frame.captured_at.tzinfo is not None
    assert cam.describe() == "command camera: cat"


def test_variants_are_bounded_by_their_boxes(tmp_path: Path) -> None:
    source = jpeg(tmp_path / "a.jpg", (1000, 750))
    out = tmp_path / "out"
    cfg = config.parse(
        {
            "camera": {"source": "command", "command": ["cat", str(source)]},
            "variants": [
                {"name": "live.jpeg"},
                {"name": "small.jpeg", "width": 320, "height": 320},
            ],
            "target": {"kind": "local", "path": str(out)},
        }
    )
    p = Publisher(cfg, lambda: CommandCamera(cfg.camera), LocalTarget(out), site_files=lambda: [])
    p.start()
    result = p.publish_next()
    p.close()
    assert [(r.name, r.width, r.height) for r in result.images] == [
        ("live.jpeg", 1000, 750),
        ("small.jpeg", 320, 240),
    ]


def test_grey_and_rotated_jpegs_come_upright(tmp_path: Path) -> None:
    grey = tmp_path / "grey.jpg"
    Image.new("L", (40, 30), 128).save(grey, "JPEG")
    with camera("cat", str(grey)).capture() as frame:
        assert frame.image.mode == "L" and frame.size == (40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    turned = jpeg(tmp_path / "turned.jpg", (40, 30), exif=exif.tobytes())
    with camera("cat", str(turned)).capture() as frame:
        assert frame.size == (30, 40)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('echo starting >&2; echo "no camera on /dev/video0" >&2; exit 3',
         "camera.command (sh) exited with status 3: no camera on /dev/video0"),
        ("exit 1", "camera.command (sh) exited with status 1"),
        ('echo "rtsp://admin:hunter2@cam/1: 401 Unauthorized" >&2; exit 1',
         "exited with status 1: rtsp://***@cam/1: 401 Unauthorized"),
        ("kill -SEGV $$", "camera.command (sh) was killed by SIGSEGV"),
        ("true", "camera.command (sh) wrote nothing to stdout; it must write one JPEG there"),
        ("printf '<!DOCTYPE html><p>401 Unauthorized'",
         "camera.command (sh) wrote 34 bytes that are not a JPEG (text, an error page perhaps)"),
        ("printf 'hello'", "wrote 5 bytes that are not a JPEG (they start with 68 65 6c 6c 6f)"),
    ],
)  # fmt: skip
def test_bad_output_is_a_clear_camera_error(script: str, message: str) -> None:
    with pytest.raises(CameraError) as e:
        camera("sh", "-c", script).capture()
    assert message in str(e.value) and "hunter2" not in str(e.value)


def test_a_png_is_named(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    with pytest.raises(CameraError, match="not a JPEG \\(a PNG image; ask the program for JPEG\\)"):
        camera("cat", str(png)).capture()


def test_a_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.effect_noise((640, 480), 60).convert("RGB").save(buf, "JPEG")  # detail: a long file
    data = buf.getvalue()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(CameraError, match=r"wrote a broken or truncated JPEG \(\d+ bytes\)"):
        camera("cat", str(tmp_path / "half.jpg")).capture()


def test_output_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command_mod, "MAX_BYTES", 2 * 2**20)
    started = time.monotonic()
    with pytest.raises(CameraError, match="wrote more than 2 MiB"):
        camera("sh", "-c", "exec cat /dev/zero").capture()  # never ends by itself
    assert time.monotonic() - started < 5


def test_a_slow_command_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    cam = camera("sh", "-c", f"sleep 30 & echo $! > {pids}; sleep 30", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(CameraError, match=r"camera.command \(sh\) did not finish within 0.5 s"):
        cam.capture()
    assert time.monotonic() - started < 3
    child = int(pids.read_text())
    time.sleep(0.1)
    assert not alive(child)  # the background sleep went with its process group


def test_close_from_another_thread_kills_a_running_command(tmp_path: Path) -> None:
    """A stopping service closes the camera while a capture runs on another thread."""
    pids = tmp_path / "pids"
    cam = camera("sh", "-c", f"sleep 30 & echo $$ $! > {pids}; sleep 30", timeout=60)
    errors: list[BaseException] = []

    def capture() -> None:
        try:
            cam.capture()
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=capture)
    worker.start()
    deadline = time.monotonic() + 10
    while not pids.exists() or not pids.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    cam.close()
    worker.join(5)
    assert not worker.is_alive() and time.monotonic() - started < 2
    assert isinstance(errors[0], CameraError)
    assert "camera.command (sh) was killed by SIGKILL" in str(errors[0])
    time.sleep(0.1)
    assert not any(alive(int(pid)) for pid in pids.read_text().split())
    with pytest.raises(CameraError, match="the camera is closed"):
        cam.capture()  # nothing starts after close()


def test_a_background_child_goes_when_the_command_exits(tmp_path: Path) -> None:
    """A command that leaves a child behind (here one holding no pipe) and exits: the
    frame is used, the child killed with the group."""
    pids = tmp_path / "pids"
    source = jpeg(tmp_path / "a.jpg")
    script = f"sleep 30 >/dev/null 2>&1 & echo $! > {pids}; cat {source}"
    with camera("sh", "-c", script).capture() as frame:
        assert frame.size == (640, 480)
    time.sleep(0.1)
    assert not alive(int(pids.read_text()))


def alive(pid: int) -> bool:
    """Running, not gone and not a zombie waiting for a parent (init) to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_missing_program_fails_at_open() -> None:
    with pytest.raises(CameraError, match="'no-such-camera-tool' is not an installed program"):
        camera("no-such-camera-tool", "-o", "-")


def test_arguments_never_reach_messages(tmp_path: Path) -> None:
    cam = camera("sh", "-c", "echo denied >&2; exit 22 # -u admin:hunter2")
    assert "hunter2" not in cam.describe()
    with pytest.raises(CameraError) as e:
        cam.capture()
    assert "hunter2" not in str(e.value)


def test_systemds_variables_stay_with_the_publisher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    source = jpeg(tmp_path / "a.jpg")
    cam = camera("sh", "-c", f'test -z "$NOTIFY_SOCKET$WATCHDOG_USEC" && cat {source}')
    with cam.capture() as frame:
        assert frame.size == (640, 480)


def test_check_with_a_command_camera(tmp_path: Path) -> None:
    source = jpeg(tmp_path / "a.jpg", (800, 600))
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "command"
        command = ["cat", "{source}"]
        [target]
        kind = "local"
        path = "{tmp_path / "out"}"
        """,
    )
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   camera open: command camera: cat" in result.stdout
    assert "ok   camera capture: 800x600 at" in result.stdout


# --- frames too large to decode ------------------------------------------------------------


def huge_grey_jpeg(width: int, height: int) -> bytes:
    """A valid baseline JPEG, mid-grey, of `width` x `height` (multiples of 32) in a few
    MB, made without an image of that size in memory: with the standard Huffman tables
    every 8x8 block is the same 6 bits (DC difference 0, end of block)."""
    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, "JPEG", quality=90)
    small = buf.getvalue()
    out, i = bytearray(small[:2]), 2
    while True:
        marker, length = small[i + 1], int.from_bytes(small[i + 2 : i + 4], "big")
        segment = bytearray(small[i : i + 2 + length])
        if marker == 0xC0:  # SOF0: precision, then height and width
            segment[5:9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
        out += segment
        i += 2 + length
        if marker == 0xDA:  # start of scan: the entropy-coded data follows
            assert small[i:] == b"\x2b\xff\xd9", small[i:].hex()  # one block, then EOI
            break
    blocks = (width // 8) * (height // 8)
    out += b"\x28\xa2\x8a" * (blocks // 4)  # 001010 four times
    return bytes(out + b"\xff\xd9")


def test_the_huge_test_jpeg_is_valid(tmp_path: Path) -> None:
    with Image.open(io.BytesIO(huge_grey_jpeg(4096, 2048))) as image:
        assert image.size == (4096, 2048)
        image.draft("L", (512, 256))  # decoded at 1/8 scale: cheap, and checks every block
        image.load()
        assert image.size == (512, 256)
        assert image.getextrema() == (128, 128)


def test_an_oversized_frame_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(huge_grey_jpeg(12000, 12000))
    with pytest.raises(CameraError) as e:
        camera("cat", str(big)).capture()
    assert str(e.value) == (
        "camera.command (cat) wrote a 12000x12000 JPEG (144 megapixels), too large to "
        f"decode: at most {config.MAX_PIXELS / 1e6:.0f} megapixels and {config.MAX_SIZE} a "
        "side, as for camera.width/height (ask the program for a smaller image)"
    )


def test_once_with_an_oversized_frame_logs_it_and_stays_small(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(huge_grey_jpeg(12000, 12000))
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "command"
        command = ["cat", "{big}"]
        [target]
        kind = "local"
        path = "{tmp_path / "out"}"
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "once", "-c", str(path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)  # the publisher's own peak memory
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 1, err
    assert "wrote a 12000x12000 JPEG (144 megapixels), too large to decode" in err
    assert "Traceback" not in err and "DecompressionBombWarning" not in err
    # The decoded frame alone would be 432 MB (RGB); the interpreter with numpy, OpenCV
    # and Pillow loaded is far below 300 MB.
    assert usage.ru_maxrss < 300 * 1024, usage.ru_maxrss
