"""The archive: simulated days on an injected clock against a local directory served by
a real nginx and against moto's S3 server, with a reader checking all the while that no
index names a missing object; retention; restarts; the loop's hooks."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from livecam import config
from livecam.history import archive as archive_mod
from livecam.history.archive import Image, folder_day
from livecam.history.worker import Archiver
from livecam.targets.base import Target
from livecam.targets.local import LocalTarget
from livecam.targets.s3 import S3Target

from .conftest import MotoServer, Nginx, s3_client

START = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
DAYS = ("2026-12-05", "2026-12-06", "2026-12-07")


def jpegs(n: int = 24, size: tuple[int, int] = (160, 90)) -> list[Image]:
    """`n` small frames, each a different colour (an hour of the day each)."""
    out = []
    for i in range(n):
        data = io.BytesIO()
        PILImage.new("RGB", size, (i * 10, 120, 250 - i * 10)).save(data, "JPEG", quality=80)
        out.append(Image(data.getvalue(), *size))
    return out


def archive_cfg(target: dict[str, Any], **archive: Any) -> config.Config:
    doc = {"target": target, "archive": {"enabled": True, "keep_days": 2, **archive}}
    return config.parse(doc)


class Clock:
    """The injected wall clock and monotonic clock, moved by the test."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def wall(self) -> dt.datetime:
        return self.now

    def mono(self) -> float:
        return (self.now - START).total_seconds()


def simulate(
    archiver: Archiver, clock: Clock, minutes: int, step: int = 60, start: int = 0
) -> None:
    """Drive the worker as the loop would: one slot every `step` simulated seconds."""
    frames = jpegs()
    for m in range(start, minutes, step // 60):
        clock.now = START + dt.timedelta(minutes=m, seconds=1)
        now = clock.now
        archiver.handle(now, archiver.archive.slot(now), frames[m // 60 % 24])


class Reader:
    """Reads days.json, each day's index and the objects the newest frames name, over
    and over, as a viewer's page would; records every object named but missing."""

    def __init__(self, get: Callable[[str], bytes | None]) -> None:
        self.get = get
        self.stop = threading.Event()
        self.passes = 0
        self.checked = 0
        self.violations: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Reader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    def _listed(self, day: str) -> bool:
        """Is `day` still in days.json? (A day retention removed may 404 meanwhile.)"""
        data = self.get(archive_mod.DAYS)
        return data is not None and day in json.loads(data)["days"]

    def _run(self) -> None:
        while not self.stop.is_set():
            data = self.get(archive_mod.DAYS)
            if data is not None:
                for day in json.loads(data)["days"]:
                    self._check_day(day)
            self.passes += 1
            self.stop.wait(0.02)  # a page polls; a tight loop would only fight for the GIL

    def _check_day(self, day: str) -> None:
        key = archive_mod.index_key(dt.date.fromisoformat(day))
        data = self.get(key)
        if data is None:
            if self._listed(day):
                self.violations.append(f"days.json names {day}, {key} is missing")
            return
        index = json.loads(data)
        assert index["day"] == day
        named = [f["key"] for f in index["frames"][-3:]]
        named += [index[k] for k in ("strip", "timelapse", "poster") if index[k]]
        for name in named:
            self.checked += 1
            if self.get(name) is None and self._listed(day):
                self.violations.append(f"{key} names {name}, which is missing")


def check_archive(get: Callable[[str], bytes | None], every: int = 60) -> None:
    """Day 1 is gone, days 2 and 3 are whole and in order."""
    assert json.loads(get(archive_mod.DAYS) or b"") == {"days": list(DAYS[1:])}
    assert get("archive/2026/12/05/index.json") is None
    assert get("archive/2026/12/05/000000.jpeg") is None
    per_day = 86400 // every
    for day in DAYS[1:]:
        index = json.loads(get(f"archive/{day.replace('-', '/')}/index.json") or b"")
        assert index["day"] == day
        frames = index["frames"]
        assert len(frames) == per_day
        assert [f["t"] for f in frames] == sorted(f["t"] for f in frames)
        first, last = frames[0], frames[-1]
        assert first["t"] == f"{day}T00:00:00Z"
        assert first["key"] == f"archive/{day.replace('-', '/')}/000000.jpeg"
        assert (first["width"], first["height"]) == (160, 90)
        assert first["bytes"] == len(get(first["key"]) or b"")
        h, m = divmod((per_day - 1) * every // 60, 60)
        assert last["t"] == f"{day}T{h:02d}:{m:02d}:00Z"
        assert index["strip"] == f"archive/{day.replace('-', '/')}/strip.jpeg"
        strip = PILImage.open(io.BytesIO(get(index["strip"]) or b""))
        assert strip.size == (1440, 120)
        assert index["timelapse"] is None and index["poster"] is None


def run_three_days(target: Target, cfg: config.Config, get: Callable[[str], bytes | None]) -> None:
    clock = Clock(START)
    spawned: list[dt.date] = []

    def spawn(day: dt.date) -> None:
        spawned.append(day)

    archiver = Archiver(cfg, target, now=clock.wall, clock=clock.mono, spawn=spawn)
    with Reader(get) as reader:
        simulate(archiver, clock, 3 * 1440, step=cfg.archive.every)
    assert reader.violations == []
    assert reader.passes > 5 and reader.checked > 20
    # Each finished day's timelapse was started (day 3 has not ended yet).
    assert spawned == [dt.date(2026, 12, 5), dt.date(2026, 12, 6)]
    check_archive(get, cfg.archive.every)


@pytest.fixture
def local_archive(served_dir: Path) -> Iterator[tuple[Path, str]]:
    server = Nginx(served_dir).start()
    yield served_dir, server.url
    server.close()


def http_get(base: str) -> Callable[[str], bytes | None]:
    def get(name: str) -> bytes | None:
        try:
            with urllib.request.urlopen(base + name, timeout=10) as r:
                return bytes(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    return get


def test_three_days_local_behind_nginx(local_archive: tuple[Path, str]) -> None:
    directory, url = local_archive
    (directory / "sentinel.txt").write_text("keep")
    (directory / "archive-not").mkdir()
    (directory / "archive-not" / "index.json").write_text("keep")
    cfg = archive_cfg({"kind": "local", "path": str(directory)})
    run_three_days(LocalTarget(directory), cfg, http_get(url))
    assert (directory / "sentinel.txt").read_text() == "keep"
    assert (directory / "archive-not" / "index.json").read_text() == "keep"
    # The deleted day's folders went with it.
    assert not (directory / "archive" / "2026" / "12" / "05").exists()


def s3_get(endpoint: str, bucket: str, prefix: str) -> Callable[[str], bytes | None]:
    client = s3_client(endpoint)

    def get(name: str) -> bytes | None:
        try:
            return bytes(client.get_object(Bucket=bucket, Key=prefix + name)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None

    return get


@pytest.mark.parametrize(
    "every",
    [
        pytest.param(600, id="every-10-min"),
        # 8,640 frames and their indexes through moto: minutes on a busy machine.
        pytest.param(60, marks=[pytest.mark.slow, pytest.mark.timeout(1800)]),
    ],
)
def test_three_days_on_s3(moto_server: MotoServer, bucket: str, every: int) -> None:
    s3 = s3_client(moto_server.url)
    sentinels = ["cam1/sentinel.txt", "cam1/archive-not/x", "archive/2026/12/05/index.json"]
    for key in sentinels:
        s3.put_object(Bucket=bucket, Key=key, Body=b"keep")
    target = {"kind": "s3", "bucket": bucket, "prefix": "cam1/", "endpoint_url": moto_server.url}
    cfg = archive_cfg(target, every=every)
    run_three_days(S3Target(cfg.target), cfg, s3_get(moto_server.url, bucket, "cam1/"))
    for key in sentinels:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"keep"
    head = s3.head_object(Bucket=bucket, Key="cam1/archive/2026/12/07/000000.jpeg")
    assert head["CacheControl"] == archive_mod.IMMUTABLE
    assert head["ContentType"] == "image/jpeg"
    head = s3.head_object(Bucket=bucket, Key="cam1/archive/2026/12/07/index.json")
    assert head["CacheControl"] == "no-cache"
    assert head["ContentType"] == "application/json"


def test_retention_deletes_in_batches_of_1000(moto_server: MotoServer, bucket: str) -> None:
    """A day of more than 1,000 objects (every = 30 s) goes whole, in batches."""
    cfg = archive_cfg(
        {"kind": "s3", "bucket": bucket, "endpoint_url": moto_server.url}, keep_days=1
    )
    target = S3Target(cfg.target)
    s3 = s3_client(moto_server.url)
    with ThreadPoolExecutor(8) as pool:
        names = [f"archive/2026/12/05/{i:06d}.jpeg" for i in range(1001)]
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), names))
    s3.put_object(Bucket=bucket, Key="archive/2026/12/05/index.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="archive/days.json", Body=b'{"days":["2026-12-05"]}')
    calls: list[int] = []
    target.client.meta.events.register(
        "before-parameter-build.s3.DeleteObjects",
        lambda params, **kw: calls.append(len(params["Delete"]["Objects"])),
    )
    deleted = archive_mod.Archive(target, cfg.archive).prune(dt.date(2026, 12, 7))
    assert deleted == [dt.date(2026, 12, 5)]
    assert calls == [1, 1000, 1]  # the index first, on its own
    assert s3.list_objects_v2(Bucket=bucket, Prefix="archive/2026/").get("KeyCount") == 0
    assert json.loads(s3.get_object(Bucket=bucket, Key="archive/days.json")["Body"].read()) == {
        "days": []
    }


def test_keep_days_0_keeps_everything(tmp_path: Path) -> None:
    cfg = archive_cfg({"kind": "local", "path": str(tmp_path)}, keep_days=0, every=3600)
    clock = Clock(START)
    archiver = Archiver(cfg, LocalTarget(tmp_path), now=clock.wall, spawn=lambda d: None)
    simulate(archiver, clock, 3 * 1440, step=3600)
    days = json.loads((tmp_path / "archive" / "days.json").read_bytes())["days"]
    assert days == list(DAYS)


def test_a_restart_continues_the_day_and_repairs_days_json(tmp_path: Path) -> None:
    cfg = archive_cfg({"kind": "local", "path": str(tmp_path)}, every=300)
    target = LocalTarget(tmp_path)
    clock = Clock(START)
    first = Archiver(cfg, target, now=clock.wall, clock=clock.mono, spawn=lambda d: None)
    simulate(first, clock, 600, step=300)
    # A crash between a new day's index and days.json: the index is there, the day not.
    (tmp_path / "archive" / "days.json").write_text('{"days":[]}')
    second = Archiver(cfg, target, now=clock.wall, clock=clock.mono, spawn=lambda d: None)
    simulate(second, clock, 1440, step=300, start=595)  # 09:55 again: archived already
    index = json.loads((tmp_path / "archive/2026/12/05/index.json").read_bytes())
    assert len(index["frames"]) == 288
    assert len({f["key"] for f in index["frames"]}) == 288
    assert second.archived == 288 - 120
    assert json.loads((tmp_path / "archive/days.json").read_bytes())["days"] == [DAYS[0]]


def test_a_time_zone_names_days_and_keys_in_local_time(tmp_path: Path) -> None:
    cfg = archive_cfg({"kind": "local", "path": str(tmp_path)}, timezone="Asia/Kolkata")
    clock = Clock(START)
    archiver = Archiver(cfg, LocalTarget(tmp_path), now=clock.wall, spawn=lambda d: None)
    simulate(archiver, clock, 2)
    # 00:00 UTC is 05:30 in India (UTC+5:30).
    index = json.loads((tmp_path / "archive/2026/12/05/index.json").read_bytes())
    assert index["frames"][0] == {
        "t": "2026-12-05T00:00:00Z",
        "key": "archive/2026/12/05/053000.jpeg",
        "width": 160,
        "height": 90,
        "bytes": index["frames"][0]["bytes"],
    }


def test_the_repeated_hour_of_a_dst_change_archives_each_slot_once(tmp_path: Path) -> None:
    cfg = archive_cfg({"kind": "local", "path": str(tmp_path)}, timezone="Europe/Berlin")
    clock = Clock(START)
    archiver = Archiver(cfg, LocalTarget(tmp_path), now=clock.wall, spawn=lambda d: None)
    frames = jpegs(1)
    # 2026-10-25: 02:00-02:59 Berlin time happens twice (00:00-01:59 UTC).
    for m in range(120):
        now = dt.datetime(2026, 10, 25, 0, m, 1, tzinfo=dt.UTC) if m < 60 else None
        now = now or dt.datetime(2026, 10, 25, 1, m - 60, 1, tzinfo=dt.UTC)
        archiver.handle(now, archiver.archive.slot(now), frames[0])
    index = json.loads((tmp_path / "archive/2026/10/25/index.json").read_bytes())
    keys = [f["key"] for f in index["frames"]]
    assert len(keys) == len(set(keys)) == 60


def test_the_strip_fills_each_minute_with_its_frame(tmp_path: Path) -> None:
    cfg = archive_cfg({"kind": "local", "path": str(tmp_path)}, every=300, strip_every=3)
    clock = Clock(START)
    archiver = Archiver(cfg, LocalTarget(tmp_path), now=clock.wall, spawn=lambda d: None)
    simulate(archiver, clock, 12 * 60, step=300)  # 00:00 .. 11:55, then the strip
    strip = PILImage.open(tmp_path / "archive/2026/12/05/strip.jpeg").convert("RGB")
    assert strip.size == (1440, 120)
    for hour in range(12):
        for x in (hour * 60, hour * 60 + 4, hour * 60 + 59):  # every frame spans 5 minutes
            r, g, _ = strip.getpixel((x, 60))  # type: ignore[misc]
            assert abs(r - hour * 10) < 12 and abs(g - 120) < 12, (hour, x)
    for x in (12 * 60, 1000, 1439):  # no frames yet: black
        assert max(strip.getpixel((x, 60))) < 12  # type: ignore[arg-type]


def test_folder_day() -> None:
    assert folder_day("archive/2026/12/07/") == dt.date(2026, 12, 7)
    for bad in ("archive/2026/12/", "archive/2026/13/01/", "other/2026/12/07/", "archive/x/1/2/"):
        assert folder_day(bad) is None


LOCAL = {"kind": "local", "path": "/tmp/livecam-never-written"}


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        ({"every": 45}, "archive.every: must be seconds that keep a wall-clock grid (10, 12,"),
        ({"every": "60"}, "archive.every: must be seconds that keep a wall-clock grid"),
        ({"keep_days": -1}, "archive.keep_days: must be an integer from 0 to 3650, got -1"),
        ({"timezone": "Mars/Olympus"}, "archive.timezone: must be an IANA time zone name such"),
        ({"timezone": ""}, "archive.timezone: must be an IANA time zone name"),
        ({"variant": "nope.jpeg"}, 'archive.variant: must name one of the variants ("live.jpeg"'),
        ({"variant": "../x.jpeg"}, "archive.variant: must be a plain file name"),
        ({"fps": 0}, "archive.fps: must be an integer from 1 to 60, got 0"),
        ({"enabled": "yes"}, 'archive.enabled: must be true or false, got "yes"'),
        ({"every_minute": 1}, "archive.every_minute: unknown key (allowed: enabled, every,"),
    ],
)
def test_bad_archive_keys_name_the_key(archive: dict[str, Any], message: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        config.parse({"target": LOCAL, "archive": archive})
    assert str(e.value).startswith(message), str(e.value)


def test_the_archive_needs_a_target_that_can_list_and_delete() -> None:
    target = {"kind": "webdav", "url": "https://example.invalid/dav/", "user": "u"}
    with pytest.raises(config.ConfigError) as e:
        config.parse({"target": target, "archive": {"enabled": True}})
    assert str(e.value).startswith('archive.enabled: needs a local or s3 target (kind = "webdav"')


def test_archive_defaults() -> None:
    cfg = config.parse({"target": LOCAL})
    a = cfg.archive
    assert (a.enabled, a.every, a.keep_days, a.timezone) == (False, 60, 30, "UTC")
    assert a.variant == "live800x600.jpeg"  # the mid-size default variant
    big = config.parse(
        {
            "camera": {"width": 4056, "height": 3040},
            "variants": [{"name": "full.jpeg"}, {"name": "hd.jpeg", "width": 1920}],
            "target": LOCAL,
        }
    )
    assert big.archive.variant == "hd.jpeg"  # none at most 1280 wide: the smallest


def test_live_json_names_the_archive_only_when_enabled(tmp_path: Path) -> None:
    from livecam.camera.testpattern import TestPatternCamera
    from livecam.loop import Publisher

    for enabled in (False, True):
        doc = {
            "camera": {"source": "test", "width": 320, "height": 180},
            "target": {"kind": "local", "path": str(tmp_path)},
            "archive": {"enabled": enabled, "timezone": "Europe/Berlin", "every": 300},
        }
        cfg = config.parse(doc)
        camera = TestPatternCamera(320, 180)
        pub = Publisher(cfg, lambda camera=camera: camera, LocalTarget(tmp_path))
        pub.start()
        pub.publish_next()
        pub.close()
        manifest = json.loads((tmp_path / "live.json").read_bytes())
        if enabled:
            assert manifest["archive"] == {
                "days": "archive/days.json",
                "timezone": "Europe/Berlin",
                "every": 300,
            }
        else:
            assert "archive" not in manifest


def test_the_nginx_site_serves_archived_frames_immutable(served_dir: Path) -> None:
    from .conftest import ROOT, fetch, free_port

    day = served_dir / "archive" / "2026" / "12" / "07"
    day.mkdir(parents=True)
    for name in ("140500.jpeg", "strip.jpeg", "poster.jpeg"):
        (day / name).write_bytes(b"\xff\xd8\xff\xd9")
    (day / "timelapse.mp4").write_bytes(b"\0\0\0\x18ftypisom")
    (day / "index.json").write_text('{"frames": []}')
    (served_dir / "archive" / "days.json").write_text('{"days": []}')
    port = free_port()
    site = (ROOT / "scripts" / "nginx-livecam.conf").read_text()
    site = site.replace("listen 80 default_server;", f"listen 127.0.0.1:{port};")
    site = site.replace("listen [::]:80 default_server;", "")
    site = site.replace("root /run/livecam;", f'root "{served_dir}";')
    server = Nginx(server=site, port=port).start()
    try:
        base = server.url + "archive/"
        expected = {
            "2026/12/07/140500.jpeg": ("image/jpeg", archive_mod.IMMUTABLE),
            "2026/12/07/poster.jpeg": ("image/jpeg", archive_mod.IMMUTABLE),
            "2026/12/07/timelapse.mp4": ("video/mp4", archive_mod.IMMUTABLE),
            "2026/12/07/strip.jpeg": ("image/jpeg", "no-cache"),
            "2026/12/07/index.json": ("application/json", "no-cache"),
            "days.json": ("application/json", "no-cache"),
        }
        for name, (ctype, cache) in expected.items():
            status, headers, _ = fetch(base + name)
            assert status == 200, name
            assert headers["Content-Type"] == ctype, name
            assert headers["Cache-Control"] == cache, name
    finally:
        server.close()


# A process that archives a simulated day at full speed from a given minute: killed at
# any moment, it is almost surely in the middle of writing something.
DRIVER = """
import datetime as dt, sys, time
from livecam import config
from livecam.history.worker import Archiver
from livecam.targets.local import LocalTarget
from tests.test_archive import START, Clock, jpegs, simulate

class Paced(LocalTarget):
    # Each write takes a few ms as on an SD card, so the day outlasts the kills on any
    # machine.
    def put_object(self, *args, **kwargs):
        time.sleep(0.004)
        super().put_object(*args, **kwargs)

path, start = sys.argv[1], int(sys.argv[2])
cfg = config.parse({"target": {"kind": "local", "path": path},
                    "archive": {"enabled": True, "strip_every": 7, "every": 120}})
clock = Clock(START)
archiver = Archiver(cfg, Paced(path), now=clock.wall, clock=clock.mono, spawn=lambda d: None)
simulate(archiver, clock, 1440, step=120, start=start)
"""


def consistent(directory: Path) -> list[dict[str, Any]]:
    """The day's frames; asserts that every index names only objects that exist."""
    days = json.loads((directory / "archive/days.json").read_bytes())["days"]
    assert days == [DAYS[0]]
    index = json.loads((directory / "archive/2026/12/05/index.json").read_bytes())
    frames: list[dict[str, Any]] = index["frames"]
    keys = [f["key"] for f in frames]
    assert keys == sorted(set(keys))  # in time order, none twice
    for f in frames:
        assert (directory / f["key"]).stat().st_size == f["bytes"]
    if index["strip"]:
        assert (directory / index["strip"]).is_file()
    return frames


def test_sigkill_mid_archive_and_restart_keeps_every_index_consistent(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import ROOT

    start, kills = 0, 0
    for delay in (0.8, 1.3, 0.5, None):
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path), str(start)], cwd=ROOT)
        if delay is None:
            assert proc.wait(timeout=300) == 0
            break
        index = tmp_path / "archive/2026/12/05/index.json"
        deadline = time.monotonic() + 60
        while not index.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        if proc.poll() is not None:
            break  # done already: nothing left to kill
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        frames = consistent(tmp_path)
        # The restart begins at the last slot in the index: it is there, so it is skipped.
        last = dt.datetime.strptime(frames[-1]["t"], "%Y-%m-%dT%H:%M:%SZ")
        start = last.hour * 60 + last.minute
    assert kills >= 2
    frames = consistent(tmp_path)
    assert len(frames) == 720  # the day went on: nothing lost but a frame being written


def test_cost_counts_the_archive(tmp_path: Path) -> None:
    import re

    from livecam import cost

    from .conftest import run_cli, write_config

    body = '[camera]\ninterval = 60\n[target]\nkind = "s3"\nbucket = "cam"\n'
    off = cost.estimate(config.load(write_config(tmp_path, body, "off.toml")))
    path = write_config(tmp_path, body + "[archive]\nenabled = true\ntimelapse = false\n")
    cfg = config.load(path)
    a = cost.archive_estimate(cfg)
    assert a is not None and cost.archive_estimate(config.load(tmp_path / "off.toml")) is None
    # 1,440 frames a day: image + index each, the strip every 10, days.json, retention.
    assert a.puts_per_day == 2 * 1440 + 144 + 1 + 4 + 2 + 1
    assert a.puts_per_month == a.puts_per_day * 30
    frame = 800 * 600 * cost.JPEG_BYTES_PER_PIXEL
    assert a.stored_bytes == pytest.approx(30 * (1440 * (frame + 110) + cost.STRIP_BYTES))
    aws = cost.PROVIDERS[0]
    extra = cost.with_archive(aws, off, a) - cost.monthly(aws, off)[2]
    assert extra == pytest.approx(a.puts_per_month / 1e6 * 5.0 + a.stored_bytes / 1e9 * 0.023)
    result = run_cli("cost", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert "archive: live800x600.jpeg every 60 s, 1,440 frames a day" in result.stdout
    assert f"PUTs per month: {a.puts_per_month:,.0f}" in result.stdout
    assert re.search(r"AWS S3 Standard \(us-east-1\)\s+\$\d+\.\d\d\s+\$\d+\.\d\d", result.stdout)


@pytest.mark.slow
def test_sigkill_of_the_real_service_and_restart(tmp_path: Path) -> None:
    """`publisher.py run` archiving every 10 s, killed right as a frame is archived."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from .conftest import PUBLISHER, write_config

    out = tmp_path / "out"
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 1280
        height = 720
        interval = 0.5
        [target]
        kind = "local"
        path = "{out}"
        [archive]
        enabled = true
        every = 10
        strip_every = 1
        timelapse = false
        """,
    )

    def frames() -> list[dict[str, Any]]:
        indexes = sorted(out.glob("archive/*/*/*/index.json"))
        if not indexes:
            return []
        index = json.loads(indexes[-1].read_bytes())
        for f in index["frames"]:
            assert (out / f["key"]).stat().st_size == f["bytes"]
        days = json.loads((out / "archive/days.json").read_bytes())["days"]
        assert index["day"] in days
        return list(index["frames"])

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(frames()) < n:
            assert time.monotonic() < deadline, "no archived frame"
            time.sleep(0.01)

    count = 0
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, str(PUBLISHER), "run", "-c", str(path)])
        wait_for(count + 1)
        os.kill(proc.pid, signal.SIGKILL)  # the strip and index follow the image now
        proc.wait()
        count = len(frames())
    proc = subprocess.Popen([sys.executable, str(PUBLISHER), "run", "-c", str(path)])
    wait_for(count + 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    keys = [f["key"] for f in frames()]
    assert keys == sorted(set(keys)) and len(keys) >= count + 2


def test_lifecycle_prints_and_applies_keeping_other_rules(
    tmp_path: Path, moto_server: MotoServer, bucket: str
) -> None:
    from .conftest import run_cli, write_config

    s3 = s3_client(moto_server.url)
    other = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
             "Expiration": {"Days": 7}}  # fmt: skip
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [other]})
    body = (
        f'[target]\nkind = "s3"\nbucket = "{bucket}"\nprefix = "cam1/"\n'
        f'endpoint_url = "{moto_server.url}"\n[archive]\nenabled = true\nkeep_days = 14\n'
    )
    path = write_config(tmp_path, body)
    printed = run_cli("lifecycle", "-c", str(path))
    assert printed.returncode == 0, printed.stderr
    rule = json.loads(printed.stdout)["Rules"][0]
    assert rule["Filter"] == {"Prefix": "cam1/archive/"}
    assert rule["Expiration"] == {"Days": 15}
    for _ in range(2):  # applied twice: still one rule of ours
        applied = run_cli("lifecycle", "-c", str(path), "--apply")
        assert applied.returncode == 0, applied.stderr
        assert "(1 other rule(s) kept)" in applied.stdout
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert sorted(r["ID"] for r in rules) == ["livecam-archive", "logs"]
    local = write_config(tmp_path, '[target]\nkind = "local"\npath = "/tmp/x"\n', "l.toml")
    refused = run_cli("lifecycle", "-c", str(local))
    assert refused.returncode == 2
    assert 'target.kind: lifecycle rules are for kind = "s3" buckets only' in refused.stderr


def test_retention_runs_daily_even_without_frames(tmp_path: Path) -> None:
    cfg = archive_cfg({"kind": "local", "path": str(tmp_path)}, keep_days=1, every=3600)
    clock = Clock(START)
    archiver = Archiver(cfg, LocalTarget(tmp_path), now=clock.wall, spawn=lambda d: None)
    simulate(archiver, clock, 60, step=3600)  # one frame on day 1, then the camera dies
    assert (tmp_path / "archive/2026/12/05/index.json").is_file()
    for hours in (25, 49):  # ticks with no image on the next days
        now = START + dt.timedelta(hours=hours)
        archiver.handle(now, archiver.archive.slot(now), None)
    assert not (tmp_path / "archive/2026/12/05").exists()
    assert json.loads((tmp_path / "archive/days.json").read_bytes()) == {"days": []}
