"""The daily timelapse: it decodes to every frame at the right size, its memory does not
grow with the day, the `timelapse` command, and the live cadence while one is made."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.history import timelapse
from livecam.history.archive import IMMUTABLE
from livecam.history.worker import Archiver
from livecam.loop import Publisher
from livecam.rendered import Rendered
from livecam.targets.local import LocalTarget
from livecam.targets.s3 import S3Target

from .conftest import ROOT, MotoServer, run_cli, s3_client

sys.path.insert(0, str(ROOT / "scripts"))
import timelapse_rss

DAY = timelapse_rss.DAY
FOLDER = "archive/2026/12/05/"

av = pytest.importorskip("av")


def decode(path: Path | str) -> tuple[int, tuple[int, int]]:
    """The number of frames and the size of an MP4, decoded with PyAV."""
    with av.open(str(path)) as container:
        count, size = 0, (0, 0)
        for frame in container.decode(video=0):
            count += 1
            size = (frame.width, frame.height)
    return count, size


def check_published(directory: Path, frames: int, size: tuple[int, int]) -> dict[str, Any]:
    index = json.loads((directory / FOLDER / "index.json").read_bytes())
    assert index["timelapse"] == FOLDER + "timelapse.mp4"
    assert index["poster"] == FOLDER + "poster.jpeg"
    assert index["strip"] == FOLDER + "strip.jpeg"
    assert len(index["frames"]) == frames
    assert decode(directory / index["timelapse"]) == (frames, size)
    assert (directory / index["poster"]).read_bytes()[:2] == b"\xff\xd8"
    return dict(index)


def test_a_day_becomes_an_mp4_of_every_frame(tmp_path: Path) -> None:
    timelapse_rss.archive_day(tmp_path, 30, (640, 360), every=120)
    cfg = config.parse({"target": {"kind": "local", "path": str(tmp_path)}})
    seen: list[tuple[int, int]] = []
    result = timelapse.make(
        LocalTarget(tmp_path), cfg.archive, DAY, lambda d, t: seen.append((d, t))
    )
    assert (result.frames, result.width, result.height) == (30, 640, 360)
    assert seen[-1] == (30, 30) and len(seen) == 30
    check_published(tmp_path, 30, (640, 360))


@pytest.mark.slow
@pytest.mark.timeout(1800)  # minutes of encoding on a busy machine
def test_a_day_of_1440_frames_at_720p(tmp_path: Path) -> None:
    timelapse_rss.archive_day(tmp_path / "t", 1440, (1280, 720))
    result = run_cli("timelapse", "-c", str(timelapse_rss.write_config(tmp_path / "t")),
                     "--day", DAY.isoformat(), timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stderr
    check_published(tmp_path / "t", 1440, (1280, 720))


def test_video_size_is_even_and_at_most_1920_wide() -> None:
    assert timelapse.video_size(800, 450) == (800, 450)
    assert timelapse.video_size(801, 451) == (800, 450)
    assert timelapse.video_size(4056, 3040) == (1920, 1438)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # minutes of encoding on a busy machine
def test_peak_memory_does_not_grow_with_the_day(tmp_path: Path) -> None:
    rss, late = {}, []
    for n in (200, 1440):
        directory = tmp_path / f"day{n}"
        timelapse_rss.archive_day(directory, n, (1280, 720))
        config_path = timelapse_rss.write_config(directory)
        rss[n], _, samples = timelapse_rss.timelapse_rss(config_path)
        late = samples[len(samples) // 10 :]
    assert max(rss.values()) < 300 * 2**20, rss
    # Flat once the encoder is warm: 1,240 more frames add no memory (runs vary by a few
    # tens of MiB from the encoder's threads, hence no comparison of the two peaks).
    assert max(late) - min(late) < 16 * 2**20, (min(late), max(late))


def test_the_command_shows_progress_and_publishes(tmp_path: Path) -> None:
    directory = tmp_path / "t"
    timelapse_rss.archive_day(directory, 12, (320, 180), every=600)
    cfg = timelapse_rss.write_config(directory)
    result = run_cli("timelapse", "-c", str(cfg), "--day", DAY.isoformat())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "timelapse 2026-12-05: 1/12 frames"  # a line per tenth (no tty)
    assert lines[-2] == "timelapse 2026-12-05: 12/12 frames"
    assert lines[-1].startswith(f"published {FOLDER}timelapse.mp4: 12 frames, 320x180, ")
    check_published(directory, 12, (320, 180))


@pytest.mark.parametrize(
    ("day", "code", "message"),
    [
        ("2026-13-01", 2, "argument --day: must be a day as YYYY-MM-DD, got '2026-13-01'"),
        ("2999-01-01", 2, "--day: 2999-01-01 has not ended yet in UTC"),
        ("2020-01-01", 1, "no frames archived on 2020-01-01 (archive/2020/01/01/index.json"),
    ],
)
def test_the_command_refuses_a_day_without_frames(
    tmp_path: Path, day: str, code: int, message: str
) -> None:
    cfg = timelapse_rss.write_config(tmp_path / "t")
    result = run_cli("timelapse", "-c", str(cfg), "--day", day)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_without_pyav_the_timelapse_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from livecam.errors import TimelapseError

    directory = tmp_path / "t"
    timelapse_rss.archive_day(directory, 2, (320, 180), every=600)
    monkeypatch.setitem(sys.modules, "av", None)  # what a missing package looks like
    cfg = config.load(timelapse_rss.write_config(directory))
    with pytest.raises(TimelapseError, match=r"needs PyAV: pip install 'livecam\[timelapse\]'"):
        timelapse.make(LocalTarget(directory), cfg.archive, DAY)


def test_on_s3_the_mp4_is_streamed_up_immutable(moto_server: MotoServer, bucket: str) -> None:
    target_cfg = {"kind": "s3", "bucket": bucket, "prefix": "cam/", "endpoint_url": moto_server.url}
    cfg = config.parse({"target": target_cfg, "archive": {"enabled": True}})
    target = S3Target(cfg.target)
    timelapse_rss.archive_day_on(target, 6, (320, 180))
    result = timelapse.make(target, cfg.archive, DAY)
    assert result.frames == 6
    s3 = s3_client(moto_server.url)
    head = s3.head_object(Bucket=bucket, Key=f"cam/{FOLDER}timelapse.mp4")
    assert (head["ContentType"], head["CacheControl"]) == ("video/mp4", IMMUTABLE)
    assert head["ContentLength"] == result.bytes
    index = json.loads(s3.get_object(Bucket=bucket, Key=f"cam/{FOLDER}index.json")["Body"].read())
    assert index["timelapse"] == FOLDER + "timelapse.mp4"


class Recording(LocalTarget):
    """A local target that notes when each frame's manifest landed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.published: list[float] = []

    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        super().publish(images, manifest)
        self.published.append(time.monotonic())


def test_the_live_cadence_holds_while_a_timelapse_is_made(tmp_path: Path) -> None:
    """Yesterday's timelapse is missing: the archive starts it at its first slot, as a
    separate nice process; frames keep their 1 s interval meanwhile."""
    directory = tmp_path / "t"
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    timelapse_rss.archive_day(directory, 200, (1280, 720), day=yesterday)  # encodes for seconds
    path = timelapse_rss.write_config(directory, extra="every = 10\n")
    (tmp_path / "t.toml").write_text(
        path.read_text() + '[camera]\nsource = "test"\nwidth = 640\nheight = 360\ninterval = 1.0\n'
    )
    cfg = config.load(tmp_path / "t.toml")
    target = Recording(directory)
    camera = TestPatternCamera(640, 360)
    pub = Publisher(cfg, lambda: camera, target, archiver=Archiver(cfg, target))
    stop = threading.Event()
    runner = threading.Thread(target=pub.run, args=(stop,), daemon=True)
    runner.start()
    try:
        archiver = pub.archiver
        assert archiver is not None
        deadline = time.monotonic() + 30
        while archiver._process is None and time.monotonic() < deadline:
            time.sleep(0.1)
        process = archiver._process
        assert process is not None, "the timelapse did not start"
        started = time.monotonic()
        process.wait(timeout=600)
        ended = time.monotonic()
    finally:
        stop.set()
        runner.join(10)
        pub.close()
    assert process.returncode == 0
    during = [t for t in target.published if started <= t <= ended]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert len(gaps) >= 3, f"only {len(gaps) + 1} frames while the timelapse ran"
    assert max(gaps) <= 1.5, gaps
    index = json.loads((directory / f"archive/{yesterday:%Y/%m/%d}/index.json").read_bytes())
    assert index["timelapse"] is not None
