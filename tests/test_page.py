"""The live page in headless Chromium, served by nginx or the demo server.

Each test is one scenario of issue #5's acceptance list, with a real publisher
writing files, a real web server and a real browser; every one ends with no
console errors but Chromium's own "Failed to load resource" line for what the test
broke on purpose.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from livecam import httpserver

from .conftest import ROOT, free_port, wait_for_port
from .pagetools import (
    LIVE,
    Nginx,
    open_page,
    publisher_for,
    publishing,
    set_visibility,
    shown_seq,
    shows,
    state_is,
    wait_for,
)

pytestmark = pytest.mark.browser


def resource_starts(page: Any, name: str) -> list[float]:
    """performance.now() at which each completed request for `name` started."""
    return page.evaluate(
        "(name) => performance.getEntriesByType('resource')"
        ".filter((e) => e.name.includes(name)).map((e) => e.startTime)",
        name,
    )


def write_manifest(directory: Path, doc: dict[str, Any]) -> None:
    tmp = directory / ".live.json.tmp"
    tmp.write_text(json.dumps(doc))
    tmp.chmod(0o644)
    os.replace(tmp, directory / "live.json")


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(UTC))


def test_page_shows_each_new_frame_within_interval_without_flicker(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    base = nginx(served_dir)
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, base)
    try:
        # Record every state of the image element: it must never be broken or empty.
        page.evaluate("""() => {
            window.__states = [];
            const img = document.getElementById('live');
            new MutationObserver(() => window.__states.push(
                [img.getAttribute('src'), img.complete, img.naturalWidth])).observe(
                img, {attributes: true, attributeFilter: ['src']});
        }""")
        wait_for(page, shows(1), 5)
        assert page.title() == "Page test"
        assert page.text_content("#title") == "Page test"
        interval = pub.cfg.camera.interval
        for expected in (2, 3, 4):
            pub.publish_next()
            took = wait_for(page, shows(expected), interval + 1)
            assert took <= interval + 1
        states = page.evaluate("window.__states")
        assert len(states) >= 3, "the image was not swapped for each frame"
        for _src, complete, natural_width in states:
            assert complete and natural_width > 0, states  # decoded before it was shown
        assert page.text_content("#state") == "live"
        assert re.fullmatch(r"updated \d+ s ago", page.text_content("#updated") or "")
        assert page.get_attribute("#live", "alt").startswith("Page test: live image captured ")
        # Each image once (the swap reuses the decoded image), nothing from elsewhere.
        images = requests.urls(".jpeg")
        assert len(images) == len(set(images)) == 4, images
        assert all(u.startswith(base) or u.startswith("data:") for u in requests.urls())
        # The manifest once per interval, no faster.
        starts = resource_starts(page, "live.json")
        gaps = [(b - a) / 1000 for a, b in itertools.pairwise(starts)]
        assert gaps and min(gaps) >= 0.9 * interval, gaps
        assert requests.max_in_flight["live.json"] == 1
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_a_missing_or_corrupt_image_keeps_the_old_frame(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    base = nginx(served_dir)
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, base)
    try:
        wait_for(page, shows(1), 5)
        src = page.evaluate(f"{LIVE}.currentSrc")
        doc = json.loads((served_dir / "live.json").read_text())
        (served_dir / "corrupt.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG" * 100)
        (served_dir / "corrupt.jpeg").chmod(0o644)
        for name in ("missing.jpeg", "corrupt.jpeg"):
            doc["seq"] += 1
            doc["captured_at"] = now_iso()
            doc["images"] = {name: {"width": 640, "height": 360, "bytes": 1, "seq": doc["seq"]}}
            write_manifest(served_dir, doc)
            wait_for(page, f"performance.getEntriesByType('resource').some("
                           f"(e) => e.name.includes('{name}'))", 5)  # fmt: skip
            page.wait_for_timeout(1500)  # the failed load settled; another poll passed
            assert page.evaluate(f"{LIVE}.currentSrc") == src
            assert page.evaluate(f"{LIVE}.complete && {LIVE}.naturalWidth > 0")
            assert page.evaluate("document.body.dataset.state") == "live"
        # A broken image is retried with backoff, not on every poll.
        assert requests.count("corrupt.jpeg") == 1
        pub.publish_next()  # a good frame again
        wait_for(page, shows(2), 3)
        assert console.unexpected("missing.jpeg") == []
    finally:
        page.close()
        pub.close()


def test_stopped_publisher_shows_stale_within_three_intervals(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    interval = 4.0  # no [site] stale_after: stale after max(3 × interval, 10 s) = 12 s
    base = nginx(served_dir)
    pub = publishing(served_dir, interval=interval)
    page, console, _ = open_page(browser, base)
    try:
        wait_for(page, shows(1), 5)
        pub.publish_next()
        published = time.monotonic()
        wait_for(page, shows(2), interval + 1)
        assert page.is_hidden("#notice")
        # The publisher stops here: no frame after this one.
        wait_for(page, state_is("stale"), 3 * interval + 1 - (time.monotonic() - published))
        took = time.monotonic() - published
        assert 3 * interval - 0.5 <= took <= 3 * interval + 1, took
        assert page.text_content("#state") == "stale"
        assert page.is_visible("#notice")
        assert "stopped publishing" in (page.text_content("#notice") or "")
        assert (page.text_content("#announce") or "").startswith("Stale")
        # Started again: live without a reload.
        pub.publish_next()
        wait_for(page, f"{shows(3)} && {state_is('live')}", interval + 1)
        assert page.is_hidden("#notice")
        assert page.text_content("#announce") == "Live again"
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_unreachable_manifest_shows_offline_and_recovers_without_reload(
    served_dir: Path, browser: Any
) -> None:
    server = Nginx(served_dir).start()
    pub = publisher_for(served_dir)
    pub.start()
    for name in ("live.json", "live.jpeg", "live800x600.jpeg", "live320x240.jpeg"):
        (served_dir / name).unlink(missing_ok=True)
    page, console, requests = open_page(browser, server.url)
    try:
        # Nothing published yet: offline at once, a placeholder, no broken image.
        wait_for(page, state_is("offline"), 3)
        assert "not found (HTTP 404)" in (page.text_content("#notice") or "")
        assert page.is_visible("#placeholder")
        pub.publish_next()
        wait_for(page, f"{shows(1)} && {state_is('live')}", 4)
        assert page.is_hidden("#placeholder")

        # Deleted: 404.
        (served_dir / "live.json").unlink()
        wait_for(page, state_is("offline"), 5)
        assert "HTTP 404" in (page.text_content("#notice") or "")
        assert page.evaluate(f"{LIVE}.complete && {LIVE}.naturalWidth > 0")  # old frame stays
        pub.publish_next()
        wait_for(page, f"{shows(2)} && {state_is('live')}", 6)

        # Unreadable: 403.
        (served_dir / "live.json").chmod(0)
        wait_for(page, state_is("offline"), 5)
        assert "access denied (HTTP 403)" in (page.text_content("#notice") or "")
        (served_dir / "live.json").chmod(0o644)
        wait_for(page, state_is("live"), 6)

        # The host down: connection refused.
        server.stop()
        wait_for(page, state_is("offline"), 5)
        assert "cannot reach the server" in (page.text_content("#notice") or "")
        assert re.search(r"retrying( in \d+ s)?\.$", page.text_content("#notice") or "")
        server.start()
        pub.publish_next()
        wait_for(page, f"{shows(3)} && {state_is('live')}", 8)
        assert page.is_hidden("#notice")
        assert requests.max_in_flight["live.json"] == 1
        assert console.unexpected("live.json") == []
    finally:
        page.close()
        pub.close()
        server.close()


def test_hidden_tab_makes_no_requests_and_polls_at_once_when_visible(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    base = nginx(served_dir)
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, base)
    try:
        wait_for(page, shows(1), 5)
        page.wait_for_timeout(1500)  # polling normally
        hidden_at = set_visibility(page, "hidden")
        before = len(requests.log)
        pub.publish_next()  # a new frame that nobody is looking at
        page.wait_for_timeout(3500)  # more than three intervals
        started = [s for s in resource_starts(page, "") if s > hidden_at]
        assert started == [], "requests while hidden"
        assert len(requests.log) == before
        assert shown_seq(page) == 1

        visible_at = set_visibility(page, "visible")
        polled = f"e.name.includes('live.json') && e.startTime >= {visible_at}"
        wait_for(page, f"performance.getEntriesByType('resource').some((e) => {polled})", 2)
        first = min(s for s in resource_starts(page, "live.json") if s >= visible_at)
        assert first - visible_at < 100  # ms: at once, not at the next tick
        wait_for(page, shows(2), 2)
        assert console.errors == []
    finally:
        page.close()
        pub.close()


# Three sizes of one 16:9 frame: at 400 px the small one covers, at 1600 px only the
# full-size one does.
VARIANTS = [
    {"name": "live.jpeg"},
    {"name": "live960.jpeg", "width": 960, "height": 540},
    {"name": "live480.jpeg", "width": 480, "height": 270},
]


@pytest.mark.parametrize(
    ("width", "height", "dpr", "expected"),
    [
        (400, 800, 1, "live480.jpeg"),
        (400, 800, 2, "live960.jpeg"),  # a phone's pixel ratio counts
        (1600, 1000, 1, "live.jpeg"),
    ],
)
def test_page_loads_the_smallest_variant_that_covers(
    served_dir: Path,
    nginx: Any,
    browser: Any,
    width: int,
    height: int,
    dpr: float,
    expected: str,
) -> None:
    base = nginx(served_dir)
    pub = publishing(served_dir, size=(1920, 1080), variants=VARIANTS)
    page, console, requests = open_page(browser, base, width, height, dpr)
    try:
        wait_for(page, shows(1), 5)
        assert requests.urls(".jpeg") == [f"{base}{expected}?v=1"]  # nothing else first
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_variant_is_chosen_again_on_resize(served_dir: Path, nginx: Any, browser: Any) -> None:
    base = nginx(served_dir)
    pub = publishing(served_dir, size=(1920, 1080), variants=VARIANTS)
    page, console, requests = open_page(browser, base, 400, 800)
    try:
        wait_for(page, shows(1), 5)
        page.set_viewport_size({"width": 1600, "height": 1000})
        wait_for(page, f"{LIVE}.currentSrc.endsWith('/live.jpeg?v=1') && {shows(1)}", 3)
        # Smaller again: the sharper frame on screen stays, nothing is downloaded.
        page.set_viewport_size({"width": 400, "height": 800})
        page.wait_for_timeout(800)
        assert page.evaluate(f"{LIVE}.currentSrc").endswith("/live.jpeg?v=1")
        assert requests.urls(".jpeg") == [f"{base}live480.jpeg?v=1", f"{base}live.jpeg?v=1"]
        # The next frame is chosen for the new size.
        pub.publish_next()
        wait_for(page, f"{LIVE}.currentSrc.endsWith('/live480.jpeg?v=2')", 3)
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_hostile_strings_in_the_manifest_render_as_text(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    hostile = {
        "title": "<script>window.__pwned = 1</script>\"'&amp;",
        "caption": '"><img src=x onerror="window.__pwned = 2">',
        "location": "' onmouseover='window.__pwned = 3' x='",
        "link": "javascript:window.__pwned = 4",
    }
    base = nginx(served_dir)
    pub = publishing(served_dir)
    write_manifest(served_dir, {**json.loads((served_dir / "live.json").read_text()), **hostile})
    page, console, _ = open_page(browser, base)
    try:
        wait_for(page, shows(1), 5)
        wait_for(page, "document.getElementById('snippet-img').textContent !== ''", 3)
        assert page.text_content("#title") == hostile["title"]
        assert page.title() == hostile["title"]
        assert page.text_content("#caption") == hostile["caption"]
        assert page.text_content("#location") == hostile["location"]
        assert page.is_hidden("#link")  # not an http(s) URL: no link at all
        assert page.get_attribute("#live", "alt").startswith(hostile["title"] + ": live image")
        # The page's own: the live image, the history view's image and its strip.
        assert page.evaluate("document.images.length") == 3
        assert page.evaluate("document.scripts.length") == 3
        assert page.evaluate("window.__pwned") is None
        # The snippets are HTML for other sites: the title is escaped in them.
        snippet = page.text_content("#snippet-img") or ""
        assert "<script>" not in snippet and 'alt="&#60;script&#62;window.__pwned' in snippet
        assert "&#34;&#39;&#38;amp;" in snippet
        # An http(s) link is shown by its host, whatever else the string holds.
        odd = 'https://example.org/a?b="><b>x</b>'
        write_manifest(served_dir, {**json.loads((served_dir / "live.json").read_text()),
                                    "seq": 2, "link": odd})  # fmt: skip
        wait_for(page, "!document.getElementById('link').hidden", 3)
        assert page.text_content("#link") == "example.org"
        href = page.get_attribute("#link", "href")
        assert href == "https://example.org/a?b=%22%3E%3Cb%3Ex%3C/b%3E"
        assert page.evaluate("document.querySelectorAll('b').length") == 0
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_snippets_offer_only_images_the_page_would_load(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    """The loader refuses image names that lead out of the camera's directory; the
    copy-paste snippets must not offer them to other sites either."""
    base = nginx(served_dir)
    pub = publishing(served_dir, size=(1280, 720))
    doc = json.loads((served_dir / "live.json").read_text())
    small = doc["images"]["live320x240.jpeg"]
    foreign = {"bytes": 1, "seq": doc["seq"]}
    doc["images"] = {
        "live320x240.jpeg": small,
        "https://other.example/live800x600.jpeg": {**foreign, "width": 800, "height": 450},
        "//other.example/cam.jpeg": {**foreign, "width": 1280, "height": 720},
        "javascript:window.__pwned=1//x.jpeg": {**foreign, "width": 1920, "height": 1080},
    }
    write_manifest(served_dir, doc)
    page, console, requests = open_page(browser, base)
    try:
        wait_for(page, "document.getElementById('snippet-script').textContent !== ''", 5)
        size = f'width="{small["width"]}" height="{small["height"]}"'
        assert page.text_content("#snippet-img") == (
            f'<img src="{base}live320x240.jpeg" alt="Page test" {size}>'
        )
        snippets = "".join(page.text_content(f"#snippet-{k}") or "" for k in ("iframe", "script"))
        assert "other.example" not in snippets and "javascript" not in snippets
        wait_for(page, shows(1), 5)
        assert page.evaluate(f"{LIVE}.currentSrc") == f"{base}live320x240.jpeg?v=1"
        assert page.get_attribute("#full", "href") == f"{base}live320x240.jpeg?v=1"
        assert all(u.startswith(base) or u.startswith("data:") for u in requests.urls())
        assert page.evaluate("window.__pwned") is None
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_a_capture_time_far_in_the_future_reads_age_unknown(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    """A camera whose clock runs ahead: its frame is not "updated 0 s ago", its age is
    unknown, and the page says so; a few seconds ahead is ordinary and still live."""
    base = nginx(served_dir)
    pub = publishing(served_dir)
    doc = json.loads((served_dir / "live.json").read_text())
    ahead = iso(datetime.now(UTC) + timedelta(hours=3))
    for entry in doc["images"].values():
        entry.pop("captured_at", None)
    write_manifest(served_dir, {**doc, "captured_at": ahead})
    page, console, _ = open_page(browser, base)
    try:
        wait_for(page, f"{shows(1)} && {state_is('unknown')}", 5)
        assert page.text_content("#state") == "age unknown"
        assert page.text_content("#updated") == "camera clock 3 h ahead"
        assert "age is unknown" in (page.text_content("#notice") or "")
        assert page.is_visible("#notice")
        assert page.get_attribute("#live", "data-livecam-state") == "unknown"
        assert (page.text_content("#announce") or "").startswith("Age unknown")
        soon = iso(datetime.now(UTC) + timedelta(seconds=2))
        write_manifest(served_dir, {**doc, "seq": doc["seq"] + 1, "captured_at": soon})
        wait_for(page, state_is("live"), 3)
        assert re.fullmatch(r"updated \d+ s ago", page.text_content("#updated") or "")
        assert page.is_hidden("#notice")
        assert page.text_content("#announce") == "Live again"
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_each_image_shows_its_own_capture_time(served_dir: Path, nginx: Any, browser: Any) -> None:
    """With skip_unchanged, after a backoff or at interval 0, frames are not `interval`
    apart: the page takes an image's capture time from its entry, not from
    `captured_at - (seq - entry.seq) * interval`."""
    base = nginx(served_dir)
    pub = publishing(served_dir)
    doc = json.loads((served_dir / "live.json").read_text())
    now = datetime.now(UTC)
    taken = iso(now - timedelta(seconds=50))  # the guess would say 9 s (9 intervals)
    images = {name: {**e, "seq": 1, "captured_at": taken} for name, e in doc["images"].items()}
    write_manifest(
        served_dir,
        {**doc, "seq": 10, "captured_at": iso(now), "interval": 1.0, "images": images},
    )
    page, console, _ = open_page(browser, base)
    try:
        wait_for(page, f"{shows(1)} && {state_is('live')}", 5)
        wait_for(page, f"document.getElementById('updated').dateTime === '{taken}'", 2)
        assert re.fullmatch(r"updated 5\d s ago", page.text_content("#updated") or "")
        # A manifest from before per-image times: the newest frame's time, not the guess.
        newest = now_iso()
        old = {name: {k: v for k, v in e.items() if k != "captured_at"} | {"seq": 5}
               for name, e in images.items()}  # fmt: skip
        write_manifest(
            served_dir, {**doc, "seq": 11, "captured_at": newest, "interval": 1.0, "images": old}
        )
        wait_for(page, shows(5), 3)
        wait_for(page, f"document.getElementById('updated').dateTime === '{newest}'", 2)
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_keyboard_opens_the_full_size_image(served_dir: Path, nginx: Any, browser: Any) -> None:
    base = nginx(served_dir)
    pub = publishing(served_dir, size=(1280, 720))
    page, console, _ = open_page(browser, base, 400, 800)
    try:
        wait_for(page, shows(1), 5)
        assert "live800x600.jpeg" in page.evaluate(f"{LIVE}.currentSrc")  # small on screen
        for _ in range(5):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "full":
                break
        assert page.evaluate("document.activeElement.id") == "full"
        # The link is named by the image's alt text, which says when it was captured.
        link = page.get_by_role("link", name=re.compile(r"^Page test: live image captured "))
        assert link.count() == 1
        with page.context.expect_page() as popup_info:
            page.keyboard.press("Enter")
        popup = popup_info.value
        popup.wait_for_load_state()
        assert popup.url == f"{base}live.jpeg?v=1"  # the full-size frame on screen
        popup.close()
        assert page.get_attribute("#announce", "role") == "status"
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_idle_viewer_gets_304s_from_a_content_etag_host(served_dir: Path, browser: Any) -> None:
    """The demo server's live.json ETag is an MD5, as on S3: polls of an unchanged
    manifest are conditional and answered 304, with no body."""
    server = httpserver.serve(served_dir, "127.0.0.1", 0)
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, server.url)
    try:
        wait_for(page, shows(1), 5)
        page.wait_for_timeout(3500)  # a static scene: the publisher publishes nothing
        md5 = hashlib.md5(
            (served_dir / "live.json").read_bytes(), usedforsecurity=False
        ).hexdigest()
        polls = [h for _, url, h in requests.log if url.endswith("/live.json")]
        assert len(polls) >= 4
        assert "if-none-match" not in polls[0]
        assert all(h.get("if-none-match") == f'"{md5}"' for h in polls[1:]), polls
        statuses = [s for url, s in requests.responses if url.endswith("/live.json")]
        assert statuses[0] == 200 and set(statuses[1:]) == {304}, statuses
        assert requests.count(".jpeg") == 1
        pub.publish_next()  # a change is a 200 again
        wait_for(page, shows(2), 2)
        assert console.errors == []
    finally:
        page.close()
        pub.close()
        server.shutdown()
        server.server_close()


def test_no_validator_is_sent_to_nginx(served_dir: Path, nginx: Any, browser: Any) -> None:
    """nginx's ETag is "mtime-size" with 1 s resolution: not safe for a manifest
    rewritten within a second, so the page does not revalidate against it."""
    base = nginx(served_dir)
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, base)
    try:
        wait_for(page, shows(1), 5)
        page.wait_for_timeout(2500)
        polls = [h for _, url, h in requests.log if url.endswith("/live.json")]
        assert len(polls) >= 3
        assert not any("if-none-match" in h or "if-modified-since" in h for h in polls)
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_host_down_backs_off_without_a_request_storm(served_dir: Path, browser: Any) -> None:
    server = Nginx(served_dir).start()
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, server.url)
    try:
        wait_for(page, shows(1), 5)
        server.stop()
        down = time.monotonic()
        before = len(requests.log)
        page.wait_for_timeout(20_000)
        times = [t for t, url, _ in requests.log[before:] if url.endswith("/live.json")]
        # 1, 2, 4, 8 s apart (±20 % jitter): 4 to 6 attempts in 20 s, never a storm.
        assert 3 <= len(times) <= 7, [round(t - down, 2) for t in times]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 0.75 for g in gaps), gaps
        assert all(b >= 1.25 * a for a, b in itertools.pairwise(gaps)), gaps
        assert requests.max_in_flight["live.json"] == 1
        assert page.evaluate("document.body.dataset.state") == "offline"
        # Back up, and the device says it is online again: polls at once, recovers.
        server.start()
        pub.publish_next()
        page.evaluate("window.dispatchEvent(new Event('online'))")
        wait_for(page, f"{shows(2)} && {state_is('live')}", 2)
        assert console.unexpected("live.json") == []
    finally:
        page.close()
        pub.close()
        server.close()


@pytest.mark.slow
def test_backoff_is_capped_at_30_seconds(served_dir: Path, browser: Any) -> None:
    server = Nginx(served_dir).start()
    pub = publishing(served_dir)
    page, console, requests = open_page(browser, server.url)
    try:
        wait_for(page, shows(1), 5)
        server.stop()
        before = len(requests.log)
        page.wait_for_timeout(130_000)
        times = [t for t, url, _ in requests.log[before:] if url.endswith("/live.json")]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= 30 * 1.2 + 0.5, gaps
        assert sum(g >= 24 for g in gaps) >= 2, gaps  # reached the cap and stayed there
        assert console.unexpected("live.json") == []
    finally:
        page.close()
        pub.close()
        server.close()


class SlowHandler(httpserver.Handler):
    """The demo server, answering live.json after 2.5 s."""

    def send_head(self) -> Any:
        if self.path.startswith("/live.json"):
            time.sleep(2.5)
        return super().send_head()


def test_never_two_manifest_requests_in_flight(served_dir: Path, browser: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SlowHandler, directory=str(served_dir)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pub = publisher_for(served_dir)  # interval 1 s < the 2.5 s answer
    pub.start()
    pub.publish_next()
    page, console, requests = open_page(browser, f"http://127.0.0.1:{server.server_port}/")
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:  # everything that may trigger a poll, often
            set_visibility(page, "hidden")
            set_visibility(page, "visible")
            page.evaluate("window.dispatchEvent(new Event('online'))")
            page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow'))")
            page.set_viewport_size({"width": 900 + int(time.monotonic() * 10) % 200, "height": 700})
            page.wait_for_timeout(300)
        assert requests.max_in_flight["live.json"] == 1
        assert requests.count("live.json") <= 8 / 2.5 + 2
        assert shown_seq(page) == 1
        assert console.errors == []
    finally:
        page.close()
        pub.close()
        server.shutdown()
        server.server_close()


def test_page_fetches_the_engine_itself_under_an_older_cached_index(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    """After an upgrade a browser may hold an index.html from before live-embed.js
    (S3 serves page files with max-age): live.js then loads the engine itself."""
    base = nginx(served_dir)
    pub = publishing(served_dir)
    index = served_dir / "index.html"
    old = index.read_text().replace('<script src="live-embed.js" defer></script>\n', "")
    assert "live-embed.js" not in old
    index.write_text(old)
    page, console, _ = open_page(browser, base)
    try:
        wait_for(page, shows(1), 5)
        assert page.text_content("#state") == "live"
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_readme_demo_command_shows_a_changing_image(browser: Any) -> None:
    """The README's first command, as a newcomer runs it, in a real browser."""
    port = free_port()
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, timeout=120)
        page, console, _ = open_page(browser, f"http://127.0.0.1:{port}/")
        wait_for(page, f"{LIVE}.dataset.livecamSeq !== undefined", 10)
        seen = {shown_seq(page)}
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            page.wait_for_timeout(200)
            seen.add(shown_seq(page))
        assert len(seen) >= 3, seen  # changed at least twice within 10 s
        assert page.text_content("#title") == "livecam demo"
        assert console.errors == []
        page.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    out = proc.stdout.read() if proc.stdout else ""
    assert f"open http://127.0.0.1:{port}/" in out
    assert proc.returncode == 0
