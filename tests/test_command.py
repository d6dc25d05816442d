"""`source = "command"`: real programs (cat, sh, sleep) writing JPEGs, and the ways
they go wrong: exit status, nothing, not a JPEG, truncated, too big, too slow."""

from __future__ import annotations

import io
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

from .conftest import run_cli, write_config


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
    assert message in str(e.value)


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
