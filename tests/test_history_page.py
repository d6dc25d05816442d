"""The page's history control (issue #15) in headless Chromium.

A real publisher writes the live page and frame; the archive beside it is written in
the published format by tests/archivefixture.py (each frame a solid colour that names
it), served by a real nginx, or uploaded to moto's S3 server and read from there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image as PILImage

from livecam.site import content_type

from .archivefixture import (
    Colour,
    Frame,
    add_to_manifest,
    jpeg,
    solid,
    write_archive,
    write_json,
)
from .conftest import s3_client
from .pagetools import LIVE, Nginx, open_page, publishing, shows, state_is, wait_for

pytestmark = pytest.mark.browser

DAYS = ["2026-12-05", "2026-12-06", "2026-12-07"]
MINUTES = list(range(0, 1440, 10))  # a frame every ten minutes
ZONE = "Asia/Kolkata"  # UTC+05:30: the fragment and the strip are in local time, "t" is UTC
PAST = "document.getElementById('past')"


def frame_at(frames: list[Frame], hhmm: str) -> Frame:
    return next(f for f in frames if f.hhmm == hhmm)


def showing(frame: Frame) -> str:
    """JS: the history image shows `frame`, decoded."""
    return (
        f"{PAST}.dataset.frame && {PAST}.dataset.frame.endsWith('/{frame.key}')"
        f" && {PAST}.currentSrc.endsWith('/{frame.key}') && {PAST}.complete"
        f" && {PAST}.naturalWidth > 0"
    )


def fragment_is(frame: Frame) -> str:
    return f"window.location.hash === '#{frame.day}T{frame.hhmm}'"


def pixel(page: Any) -> Colour:
    """The colour at the middle of the history image as decoded."""
    rgb = page.evaluate(
        """() => {
            const img = document.getElementById('past');
            const c = document.createElement('canvas');
            c.width = img.naturalWidth;
            c.height = img.naturalHeight;
            const g = c.getContext('2d');
            g.drawImage(img, 0, 0);
            return Array.from(g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3));
        }"""
    )
    return (rgb[0], rgb[1], rgb[2])


def assert_shows(page: Any, frame: Frame, timeout: float = 5) -> None:
    wait_for(page, showing(frame), timeout)
    got = pixel(page)
    assert all(abs(a - b) <= 8 for a, b in zip(got, frame.colour, strict=True)), (got, frame)


def click_minute(page: Any, minute: float) -> None:
    """Click the strip where column `minute` is (1,440 columns across the track)."""
    box = page.locator("#history-track").bounding_box()
    x = box["x"] + box["width"] * (minute + 0.5) / 1440
    page.mouse.click(x, box["y"] + box["height"] / 2)


def archive_requests(requests: Any) -> list[str]:
    return [u for u in requests.urls("/archive/")]


def append_frame(root: Path, like: Frame, minutes: int) -> Frame:
    """A frame published `minutes` after `like`, once the page had read the day's
    index (a copy of `like`'s image)."""
    when = datetime.fromisoformat(like.t) + timedelta(minutes=minutes)
    local = when.astimezone(ZoneInfo(ZONE))
    hhmm = f"{local:%H:%M}"
    key = like.key.rsplit("/", 1)[0] + f"/{local:%H%M%S}.jpeg"
    (root / key).write_bytes((root / like.key).read_bytes())
    (root / key).chmod(0o644)
    folder = root / key.rsplit("/", 1)[0]
    index = json.loads((folder / "index.json").read_text())
    t = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    index["frames"].append({**index["frames"][-1], "key": key, "t": t})
    write_json(folder / "index.json", index)
    return Frame(like.day, hhmm, t, key, like.colour)


@pytest.fixture
def archived(served_dir: Path) -> Any:
    """The page and a live frame from a real publisher, three archived days beside them."""
    pub = publishing(served_dir, size=(640, 360))
    frames = write_archive(served_dir, DAYS, MINUTES, timezone=ZONE, timelapse_days=(DAYS[1],))
    add_to_manifest(served_dir, ZONE)
    yield pub, frames
    pub.close()


def test_history_days_scrub_keys_fragment_and_back_to_live(
    served_dir: Path, archived: Any, browser: Any
) -> None:
    pub, frames = archived
    server = Nginx(served_dir).start()
    page, console, requests = open_page(browser, server.url, 1200, 800)
    try:
        wait_for(page, shows(1), 5)
        wait_for(page, "!document.getElementById('history-open').hidden", 3)
        assert page.is_hidden("#history")
        page.wait_for_timeout(1500)  # polling live: the archive costs nothing meanwhile
        assert archive_requests(requests) == []

        # Open: the days that exist, newest first, on the newest frame of the newest day.
        page.click("#history-open")
        last = frames[DAYS[-1]][-1]
        assert_shows(page, last)
        wait_for(page, fragment_is(last), 2)
        options = page.eval_on_selector_all("#history-day option", "os => os.map(o => o.value)")
        assert options == DAYS[::-1]
        assert page.text_content("#history-time") == f"23:50 {ZONE}"
        assert page.is_visible("#history") and page.is_hidden("#state")
        assert page.evaluate(f"{LIVE} === null")  # the live link is out of the document
        assert requests.count("days.json") == 1
        # The live image's polling pauses: at most the poll already due goes out.
        polls = requests.count("live.json")
        page.wait_for_timeout(2500)
        assert requests.count("live.json") <= polls + 1

        # Scrub: a click on the strip shows the frame of that minute, in the archive's
        # time zone (the key and the fragment say 14:10 local, "t" is 08:40 UTC).
        click_minute(page, 14 * 60 + 10)
        f1410 = frame_at(frames[DAYS[-1]], "14:10")
        assert f1410.t == "2026-12-07T08:40:00Z"
        assert_shows(page, f1410)
        wait_for(page, fragment_is(f1410), 2)
        assert page.evaluate("document.activeElement.id") == "history-scrub"
        assert page.get_attribute("#history-scrub", "aria-valuetext").endswith(f"14:10 {ZONE}")
        # Between two frames: the nearest one.
        click_minute(page, 9 * 60 + 22)
        assert_shows(page, frame_at(frames[DAYS[-1]], "09:20"))
        # Dragging along the strip follows the pointer.
        box = page.locator("#history-track").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.25, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * (18 * 60 + 30.5) / 1440, y, steps=5)
        page.mouse.up()
        f1830 = frame_at(frames[DAYS[-1]], "18:30")
        assert_shows(page, f1830)
        wait_for(page, fragment_is(f1830), 2)  # written once the pointer lets go

        # Arrow keys step frame by frame; Home and End go to the day's ends.
        click_minute(page, 14 * 60 + 10)
        assert_shows(page, f1410)
        page.keyboard.press("ArrowRight")
        assert_shows(page, frame_at(frames[DAYS[-1]], "14:20"))
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        f1400 = frame_at(frames[DAYS[-1]], "14:00")
        assert_shows(page, f1400)
        wait_for(page, fragment_is(f1400), 2)
        page.keyboard.press("Home")
        assert_shows(page, frames[DAYS[-1]][0])
        assert page.is_disabled("#history-prev")
        page.click("#history-next")
        assert_shows(page, frames[DAYS[-1]][1])
        page.keyboard.press("ArrowRight")  # on the button: the arrows step anywhere
        assert_shows(page, frames[DAYS[-1]][2])
        page.focus("#history-scrub")
        page.keyboard.press("End")
        assert_shows(page, last)
        # Past the newest frame: the day's index is read again, for frames since.
        newer = append_frame(served_dir, last, 5)
        page.keyboard.press("ArrowRight")
        assert_shows(page, newer)

        # Another day: the same time of day on it; only that day has a timelapse.
        assert page.is_hidden("#history-timelapse")
        click_minute(page, 14 * 60)
        page.select_option("#history-day", DAYS[1])
        day2 = frame_at(frames[DAYS[1]], "14:00")
        assert_shows(page, day2)
        wait_for(page, fragment_is(day2), 2)
        href = page.get_attribute("#history-timelapse", "href")
        assert href == f"{server.url}archive/2026/12/06/timelapse.mp4"
        assert page.is_visible("#history-timelapse")
        assert page.get_attribute("#past-link", "href") == f"{server.url}{day2.key}"

        # Reload: the fragment brings the same moment back.
        page.reload()
        assert_shows(page, day2)
        assert page.input_value("#history-day") == DAYS[1]
        assert page.evaluate("window.location.hash") == "#2026-12-06T14:00"

        # A shared link to a moment opens there too.
        f0630 = frame_at(frames[DAYS[0]], "06:30")
        page.evaluate("window.location.hash = '#2026-12-05T06:30'")
        assert_shows(page, f0630)

        # Live: the live image and its polling are back, the fragment is gone.
        page.click("#history-live")
        wait_for(page, f"{LIVE} !== null && {shows(1)}", 3)
        assert page.is_hidden("#history") and page.is_visible("#history-open")
        assert page.evaluate("window.location.hash") == ""
        pub.publish_next()
        add_to_manifest(served_dir, ZONE)
        wait_for(page, f"{shows(2)} && {state_is('live')}", 4)
        assert page.is_visible("#state") and page.is_visible("#history-open")
        assert console.errors == []
    finally:
        page.close()
        server.close()


def test_play_loops_the_day(served_dir: Path, archived: Any, browser: Any) -> None:
    _, frames = archived
    server = Nginx(served_dir).start()
    page, console, _ = open_page(browser, server.url + "#2026-12-07T23:20", 1000, 700)
    try:
        day = frames[DAYS[-1]]
        assert_shows(page, frame_at(day, "23:20"))
        page.click("#history-play")
        assert page.get_attribute("#history-play", "aria-pressed") == "true"
        # From 23:20 on through the end of the day and round to its start.
        wait_for(page, showing(day[2]), 10)
        page.click("#history-play")
        assert page.text_content("#history-play") == "Play"
        stopped = page.evaluate(f"{PAST}.dataset.frame")
        page.wait_for_timeout(600)
        assert page.evaluate(f"{PAST}.dataset.frame") == stopped
        assert console.errors == []
    finally:
        page.close()
        server.close()


def test_no_archive_no_control_and_no_requests(served_dir: Path, browser: Any) -> None:
    """Without an "archive" entry in live.json the page is the live page it was, even
    when opened with a history fragment."""
    pub = publishing(served_dir)
    write_archive(served_dir, DAYS[:1], [600])  # files there, but not announced
    server = Nginx(served_dir).start()
    page, console, requests = open_page(browser, server.url + "#2026-12-05T10:00")
    try:
        wait_for(page, shows(1), 5)
        page.wait_for_timeout(1500)
        assert page.is_hidden("#history-open") and page.is_hidden("#history")
        assert archive_requests(requests) == []
        assert console.errors == []
    finally:
        page.close()
        server.close()
        pub.close()


def test_index_keys_outside_the_camera_are_ignored(served_dir: Path, browser: Any) -> None:
    """An index is data: a key naming another origin, a scheme or an absolute path is
    never loaded; days.json entries that are not days are dropped."""
    pub = publishing(served_dir)
    frames = write_archive(served_dir, DAYS[:1], [600, 610])
    folder = served_dir / "archive/2026/12/05"
    index = json.loads((folder / "index.json").read_text())
    bad = {"t": "2026-12-05T10:05:00Z", "width": 160, "height": 90, "bytes": 1}
    index["frames"] += [
        {**bad, "key": "https://other.example/x.jpeg"},
        {**bad, "key": "//other.example/x.jpeg"},
        {**bad, "key": "/elsewhere/x.jpeg"},
        {**bad, "key": "javascript:window.__pwned=1"},
        {**bad, "t": "not a time", "key": "archive/2026/12/05/100000.jpeg"},
    ]
    index["timelapse"] = "https://other.example/t.mp4"
    write_json(folder / "index.json", index)
    write_json(served_dir / "archive/days.json", {"days": ["<b>x</b>", DAYS[0], 7, None]})
    add_to_manifest(served_dir)
    server = Nginx(served_dir).start()
    page, console, requests = open_page(browser, server.url + "#2026-12-05T10:05")
    try:
        day = frames[DAYS[0]]
        assert_shows(page, day[0])  # 10:00 and 10:10 are as near: the first wins
        assert page.eval_on_selector_all("#history-day option", "os => os.length") == 1
        page.focus("#history-scrub")
        page.keyboard.press("End")
        assert_shows(page, day[1])
        page.keyboard.press("ArrowRight")  # nothing after the last good frame
        page.wait_for_timeout(300)
        assert_shows(page, day[1])
        assert page.is_hidden("#history-timelapse")
        assert all(u.startswith(server.url) or u.startswith("data:") for u in requests.urls())
        assert page.evaluate("window.__pwned") is None
        assert console.errors == []
    finally:
        page.close()
        server.close()
        pub.close()


def test_history_from_an_s3_bucket(
    served_dir: Path, moto_server: Any, bucket: str, browser: Any
) -> None:
    """The same static files read straight from an S3 endpoint (moto's server, path
    style, public-read objects): nothing but GETs of objects, no listing."""
    pub = publishing(served_dir)
    frames = write_archive(served_dir, DAYS[1:], list(range(13 * 60, 15 * 60, 10)), ZONE)
    add_to_manifest(served_dir, ZONE)
    pub.close()
    client = s3_client(moto_server.url)
    for path in sorted(served_dir.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            key = f"cam/{path.relative_to(served_dir).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(),
                              ContentType=content_type(key), ACL="public-read")  # fmt: skip
    base = f"{moto_server.url}/{bucket}/cam/"
    page, console, requests = open_page(browser, base + "index.html#2026-12-06T14:00")
    try:
        assert_shows(page, frame_at(frames[DAYS[1]], "14:00"))
        page.keyboard.press("ArrowRight")
        assert_shows(page, frame_at(frames[DAYS[1]], "14:10"))
        page.select_option("#history-day", DAYS[2])
        assert_shows(page, frame_at(frames[DAYS[2]], "14:10"))
        page.click("#history-live")
        wait_for(page, f"{LIVE} !== null && {shows(1)}", 5)
        assert not any("list-type" in u or u.endswith("/cam/") for u in requests.urls())
        assert console.errors == []
    finally:
        page.close()


def test_history_of_the_publishers_own_archive(served_dir: Path, browser: Any) -> None:
    """End to end: the publisher archives on an injected wall clock (Europe/Zurich,
    UTC+1 in December) into a directory nginx serves; the page shows what it wrote:
    its days, its strip, its frames, at the local minute."""
    from livecam import config
    from livecam.camera.testpattern import TestPatternCamera
    from livecam.history.archive import Image as ArchiveImage
    from livecam.history.worker import Archiver
    from livecam.loop import Publisher
    from livecam.targets.local import LocalTarget

    zone = "Europe/Zurich"
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 640, "height": 360, "interval": 1.0},
            "target": {"kind": "local", "path": str(served_dir)},
            "site": {"title": "Archive test"},
            "archive": {"enabled": True, "timezone": zone, "timelapse": False,
                        "strip_every": 1},
        }
    )  # fmt: skip
    now = [datetime(2026, 12, 6, 11, 0, 1, tzinfo=UTC)]
    target = LocalTarget(served_dir)
    archiver = Archiver(cfg, target, now=lambda: now[0])
    camera = TestPatternCamera(640, 360)
    pub = Publisher(cfg, lambda: camera, target, archiver=archiver)
    pub.start()
    pub.publish_next()
    written: dict[str, list[Frame]] = {}
    for day, hour in ((6, 11), (7, 8)):  # UTC: 12:00 and 09:00 in Zurich
        for i in range(12):
            now[0] = datetime(2026, 12, day, hour, i, 1, tzinfo=UTC)
            colour = solid(day, i, i)
            data = jpeg(PILImage.new("RGB", (160, 90), colour))
            archiver.handle(now[0], archiver.archive.slot(now[0]), ArchiveImage(data, 160, 90))
            local = now[0].astimezone(ZoneInfo(zone))
            key = f"archive/2026/12/{day:02d}/{local:%H%M}00.jpeg"
            frame = Frame(f"2026-12-{day:02d}", f"{local:%H:%M}", "", key, colour)
            written.setdefault(frame.day, []).append(frame)
    assert json.loads((served_dir / "archive/days.json").read_text()) == {
        "days": ["2026-12-06", "2026-12-07"]
    }
    assert "archive" in json.loads((served_dir / "live.json").read_text())
    server = Nginx(served_dir).start()
    page, console, _ = open_page(browser, server.url, 1200, 800)
    try:
        wait_for(page, shows(1), 5)
        wait_for(page, "!document.getElementById('history-open').hidden", 3)
        page.click("#history-open")
        day7 = written["2026-12-07"]
        assert_shows(page, day7[-1])
        options = page.eval_on_selector_all("#history-day option", "os => os.map(o => o.value)")
        assert options == ["2026-12-07", "2026-12-06"]
        assert page.text_content("#history-time") == f"09:11 {zone}"
        wait_for(page, "document.getElementById('history-strip').naturalWidth === 1440", 3)
        click_minute(page, 9 * 60 + 5)
        assert_shows(page, day7[5])
        wait_for(page, "window.location.hash === '#2026-12-07T09:05'", 2)
        page.keyboard.press("ArrowLeft")
        assert_shows(page, day7[4])
        page.select_option("#history-day", "2026-12-06")
        assert_shows(page, written["2026-12-06"][0])  # 12:00, the nearest to 09:04
        page.reload()
        assert_shows(page, written["2026-12-06"][0])
        page.click("#history-live")
        wait_for(page, f"{LIVE} !== null && {shows(1)}", 3)
        assert console.errors == []
    finally:
        page.close()
        server.close()
        pub.close()
