"""Behind a CDN (nginx's proxy_cache set up as CloudFront's and Cloudflare's defaults,
tests/cdnproxy.py), in front of nginx serving a local target and of moto's S3: the page
shows each new frame in time and never an image other than the frame the manifest
names; simulated viewers cost the origin a constant per frame, however many.

Every test image carries its frame's seq in a JPEG comment (MarkingRenderer), so a
stale image is caught by its bytes, not by its URL.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from livecam import config, cost
from livecam.camera.base import Frame
from livecam.camera.testpattern import TestPatternCamera
from livecam.loop import Publisher
from livecam.render import Renderer
from livecam.rendered import Rendered
from livecam.site import SiteFile
from livecam.site import load as load_site
from livecam.targets.base import Target
from livecam.targets.local import LocalTarget

from .cdnproxy import MODES, CachingProxy, marker, origin_server, simulate_viewers
from .conftest import ROOT, MotoServer, fetch
from .pagetools import open_page
from .test_s3 import target_for

pytestmark = pytest.mark.browser


def mark(jpeg: bytes, seq: int) -> bytes:
    """`jpeg` with a COM segment naming `seq` right after its SOI marker."""
    payload = f"livecam-seq={seq}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


class MarkingRenderer(Renderer):
    """Renders as usual, then marks every image with the seq of the frame it shows."""

    def __init__(self, variants: Iterable[config.VariantConfig]) -> None:
        super().__init__(list(variants))
        self.publisher: Publisher | None = None

    def render(
        self, frame: Frame, names: Iterable[str] | None = None, *, seq: int = 0
    ) -> list[Rendered]:
        seq = (self.publisher.seq if self.publisher else 0) + 1
        return [replace(r, data=mark(r.data, seq)) for r in super().render(frame, names, seq=seq)]


@dataclass
class Running:
    """A publisher on its own thread, every `interval` s on a fixed grid."""

    pub: Publisher
    interval: float
    published: dict[int, float] = field(default_factory=dict)  # seq -> time.time() it landed
    publish_s: list[float] = field(default_factory=list)  # capture to manifest landed

    def loop(self, stop: threading.Event) -> None:
        due = time.monotonic()
        while not stop.is_set():
            result = self.pub.publish_next()
            landed = time.time()
            self.published[result.seq] = landed
            if result.captured_at is not None:
                self.publish_s.append(landed - result.captured_at.timestamp())
            due += self.interval
            stop.wait(max(0.0, due - time.monotonic()))


@contextmanager
def publishing(pub: Publisher, interval: float) -> Iterator[Running]:
    running = Running(pub, interval)
    pub.start()
    stop = threading.Event()
    thread = threading.Thread(target=running.loop, args=(stop,), daemon=True)
    thread.start()
    try:
        # The page opens on a published manifest: a loaded machine may take seconds.
        deadline = time.monotonic() + 30
        while not running.published and time.monotonic() < deadline:
            time.sleep(0.05)
        yield running
    finally:
        stop.set()
        thread.join(10)
        pub.close()


def make_publisher(
    target: Target,
    target_cfg: dict[str, Any],
    interval: float,
    frame_keys: bool,
    site_files: Callable[[], list[SiteFile]] = load_site,
) -> Publisher:
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 640, "height": 360, "interval": interval},
            "target": target_cfg,
            "publish": {"frame_keys": frame_keys},
            "site": {"title": "CDN test"},
        }
    )
    camera = TestPatternCamera(640, 360)
    renderer = MarkingRenderer(cfg.variants)
    pub = Publisher(cfg, lambda: camera, target, renderer=renderer, site_files=site_files)
    renderer.publisher = pub
    return pub


@contextmanager
def behind_cdn(
    origin: str,
    mode: str,
    request: pytest.FixtureRequest,
    interval: float,
    frame_keys: bool,
    *,
    warm: bool = False,
) -> Iterator[tuple[str, CachingProxy, Running]]:
    """A publisher behind the CDN in `mode`, with the recommended Cache-Control; yields
    the page's base URL through the proxy. `warm`: other viewers keep the fixed image
    URLs in the CDN's cache meanwhile."""
    live_cc = cost.recommended_cache_control(mode)
    if origin == "nginx":
        served: Path = request.getfixturevalue("served_dir")
        server = origin_server(served, live_cc).start()
        target: Target = LocalTarget(served)
        target_cfg: dict[str, Any] = {"kind": "local", "path": str(served)}
        path = "/"
        stop_origin = server.close
    else:
        moto: MotoServer = request.getfixturevalue("moto_server")
        bucket: str = request.getfixturevalue("bucket")
        # Public objects, as a CDN's origin bucket serves them (moto refuses anonymous
        # reads otherwise).
        s3 = {"cache_control": live_cc, "acl": "public-read"}
        target = target_for(moto.url, bucket, **s3)
        target_cfg = {"kind": "s3", "bucket": bucket, **s3}
        server_url = moto.url
        path = f"/{bucket}/cam1/"
        stop_origin = lambda: None  # noqa: E731 - the session's moto keeps running
    proxy = CachingProxy(server.url if origin == "nginx" else server_url, mode).start()
    pub = make_publisher(target, target_cfg, interval, frame_keys)
    warmer = Warmer(proxy.url + path) if warm else None
    try:
        with publishing(pub, interval) as running:
            if warmer:
                warmer.thread.start()
            yield proxy.url + path, proxy, running
    finally:
        if warmer:
            warmer.close()
        proxy.close()
        stop_origin()


class Warmer:
    """Other viewers keeping the fixed image URLs warm in the CDN, with any ?v=."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            for name in ("live.jpeg", "live800x600.jpeg", "live320x240.jpeg"):
                fetch(f"{self.base}{name}?v={n}")
            n += 1
            self.stop.wait(0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


SHOWN_JS = """() => {
    window.__shown = [];
    const img = document.getElementById('live');
    img.addEventListener('livecam', (e) => {
        const s = e.detail.shown;
        const last = window.__shown[window.__shown.length - 1];
        if (s && (!last || last[0] !== s.entry.seq)) {
            // The lag as the event sees it: the page before lagMs existed has none.
            window.__shown.push(
                [s.entry.seq, Date.now(), Date.now() - s.capturedMs, s.url, s.lagMs]);
        }
    });
}"""


def watch_page(browser: Any, url: str, seconds: float) -> tuple[list[Any], list[Any], Any, str]:
    """Open the page, record what it shows for `seconds`; returns the frames shown
    ([seq, epoch ms, lag ms, url, the page's own lag ms]), the image responses, the
    request log and the status line's tooltip."""
    page, console, requests = open_page(browser, url)
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if ".jpeg" in r.url else None)
    try:
        page.evaluate(SHOWN_JS)
        page.wait_for_timeout(seconds * 1000)
        shown = page.evaluate("window.__shown")
        tooltip = page.get_attribute("#updated", "title") or ""
        images = []
        for r in responses:
            try:
                images.append((r.url, r.status, marker(r.body())))
            except Exception:  # a body Chromium no longer holds
                images.append((r.url, r.status, None))
        assert console.unexpected() == []
        return shown, images, requests, tooltip
    finally:
        page.close()


def url_seq(url: str) -> int:
    """The frame an image URL names: frames/<seq>-<run>/name or name?v=<seq>."""
    if "/frames/" in url:
        return int(url.split("/frames/", 1)[1].split("-", 1)[0])
    return int(url.rsplit("?v=", 1)[1])


def check_in_time(shown: list[Any], running: Running, bound: float, end: float) -> list[float]:
    """For every frame published once the page was showing frames, and early enough
    to be due before `end`: seconds until the page showed it or a newer one."""
    assert shown, "the page showed nothing"
    first = shown[0][1] / 1000
    delays = []
    for seq, landed in sorted(running.published.items()):
        if landed < first + 0.5 or landed + bound > end:
            continue
        later = [t / 1000 for s, t, *_ in shown if s >= seq and t / 1000 >= landed - 0.05]
        assert later, f"frame {seq} never shown: {shown}"
        delays.append(later[0] - landed)
    assert delays, (shown, running.published)
    return delays


# The default run: each CDN in front of one origin, 9 s; --slow: all four, 40 s each.
@pytest.mark.parametrize(("origin", "mode"), [("nginx", "cloudfront"), ("s3", "cloudflare")])
def test_page_behind_a_cdn_shows_new_frames_in_time_and_never_an_older_image(
    origin: str, mode: str, request: pytest.FixtureRequest, browser: Any
) -> None:
    run_cdn_page(origin, mode, request, browser, 9.0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("origin", ["nginx", "s3"])
def test_page_behind_a_cdn_long(
    origin: str, mode: str, request: pytest.FixtureRequest, browser: Any
) -> None:
    run_cdn_page(origin, mode, request, browser, 40.0)


def run_cdn_page(
    origin: str, mode: str, request: pytest.FixtureRequest, browser: Any, seconds: float
) -> None:
    interval = 2.0
    with behind_cdn(origin, mode, request, interval, True, warm=True) as (base, _, running):
        shown, images, _, _ = watch_page(browser, base + "index.html", seconds)
        end = time.time()
    # Never an image other than the frame its URL (from the manifest) names.
    assert images and all(status == 200 for _, status, _ in images), images
    assert all(m is None or m == url_seq(url) for url, _, m in images), images
    assert sum(m is not None for _, _, m in images) >= len(images) / 2, images
    assert all("/frames/" in url for url, _, _ in images), images
    # Every new frame (or a newer one) on screen within interval + 1.5 s.
    delays = check_in_time(shown, running, interval + 1.5, end)
    assert max(delays) <= interval + 1.5, delays


@pytest.mark.slow
def test_fixed_names_behind_a_query_dropping_cdn_show_older_frames(
    request: pytest.FixtureRequest, browser: Any
) -> None:
    """Why frame keys exist: `name?v=SEQ` through CloudFront's default policy, with other
    viewers keeping the fixed URLs warm, loads bytes of an older frame. (The check of
    the test above catches it.)"""
    with behind_cdn("nginx", "cloudfront", request, 1.0, False, warm=True) as (base, _, _):
        _, images, _, _ = watch_page(browser, base + "index.html", 7.0)
    stale = [(url, m) for url, _, m in images if m is not None and m != url_seq(url)]
    assert stale, images


# --- many viewers: origin requests per published frame ---------------------------------


def run_viewers(
    mode: str, request: pytest.FixtureRequest, viewers: int, seconds: float
) -> dict[str, float]:
    interval = 2.0
    with behind_cdn("nginx", mode, request, interval, frame_keys=True) as (base, proxy, run):
        time.sleep(1.0)  # the first frame is out
        before = proxy.origin_requests()
        first = max(run.published)
        stats = simulate_viewers(base, viewers, seconds, interval, "live800x600.jpeg")
        after = proxy.origin_requests()
        frames = max(run.published) - first
    origin = {k: after[k] - before[k] for k in after}
    figures = {
        "viewers": viewers,
        "seconds": seconds,
        "frames": frames,
        "polls": stats.polls,
        "images": stats.images,
        "errors": stats.errors,
        "stale_images": stats.stale_images,
        "origin_manifest_per_frame": origin["manifest"] / frames,
        "origin_images_per_frame": origin["image"] / frames,
        "origin_per_frame": (origin["manifest"] + origin["image"]) / frames,
    }
    print(f"\n{mode}: {figures}")
    assert stats.stale_images == 0
    assert stats.errors <= stats.polls * 0.01, figures
    assert stats.polls >= viewers * (seconds / interval - 1) * 0.8, figures
    return figures


def test_viewers_cost_the_origin_a_constant_per_frame(request: pytest.FixtureRequest) -> None:
    # Cloudflare's policy, the one that lets more through (the slow run has both).
    few = run_viewers("cloudflare", request, 100, 8.0)
    # One image variant in use and the manifest: a frame key is fetched once, the
    # manifest at most once a second (1 to 2 s TTL) plus the collapsed misses.
    assert few["origin_images_per_frame"] <= 1.5, few
    assert few["origin_per_frame"] <= 5, few


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_thousand_viewers_cost_the_origin_what_a_hundred_do(
    mode: str, request: pytest.FixtureRequest
) -> None:
    few = run_viewers(mode, request, 100, 60.0)
    many = run_viewers(mode, request, 1000, 60.0)
    assert many["origin_per_frame"] <= 5 and few["origin_per_frame"] <= 5, (few, many)
    assert many["origin_per_frame"] <= few["origin_per_frame"] + 1, (few, many)


# --- freshness: capture-to-display lag in Chromium against nginx -------------------------


def measure_lag(
    served_dir: Path, browser: Any, seconds: float, live_embed: bytes | None = None, skip: int = 0
) -> dict[str, float]:
    """Median capture-to-display lag and manifest requests per frame, interval 2 s,
    Chromium against nginx (no CDN); `live_embed` replaces site/live-embed.js."""
    interval = 2.0
    server = origin_server(served_dir, "no-cache").start()

    def files() -> list[SiteFile]:  # the page, with another engine if asked
        return [
            SiteFile(f.name, live_embed) if f.name == "live-embed.js" and live_embed else f
            for f in load_site()
        ]

    target = LocalTarget(served_dir)
    pub = make_publisher(target, {"kind": "local", "path": str(served_dir)}, interval, False, files)
    try:
        with publishing(pub, interval) as running:
            time.sleep(0.5)
            shown, _, requests, tooltip = watch_page(browser, server.url + "index.html", seconds)
    finally:
        server.close()
    # The first frame is shown whenever the page opened; `skip` more while it learns.
    settled = shown[1 + skip :]
    lags = [lag for _, _, lag, *_ in settled]
    if live_embed is None:
        # The page's own figure (the status line's tooltip) agrees with the event's.
        assert all(abs(own - lag) < 250 for _, _, lag, _, own in settled), settled
        assert re.fullmatch(r"captured .+, shown \d+\.\d s later", tooltip), tooltip
    frames = len(settled)
    since = settled[0][1] / 1000 - (interval - 0.1) - time.time() + time.monotonic()
    polls = len([t for t, url, _ in requests.log if url.endswith("live.json") and t >= since])
    figures = {
        "frames": frames,
        "median_lag_ms": statistics.median(lags),
        "median_publish_ms": statistics.median(running.publish_s) * 1000,
        "manifest_requests_per_frame": polls / max(1, frames),
    }
    print(f"\nlag: {figures}", [round(x) for x in lags])
    return figures


def test_phase_locked_frames_show_sooner_than_half_an_interval(
    served_dir: Path, browser: Any
) -> None:
    # Short, and robust to a loaded machine: the frames after the first 6 (about 12 s
    # to learn when frames appear) show well before the plain cadence's average of half
    # an interval. The acceptance bounds (publish time + 300 ms, 1.2 manifest requests
    # a frame) are checked over a minute with --slow.
    f = measure_lag(served_dir, browser, 26.0, skip=6)
    assert f["median_lag_ms"] <= f["median_publish_ms"] + 600, f
    assert f["manifest_requests_per_frame"] <= 1.35, f


BASELINE = "14f3ee7"  # main before phase-locked polling: the page as it was


@pytest.mark.slow
def test_lag_over_a_minute_against_the_plain_cadence(
    served_dir: Path, browser: Any, request: pytest.FixtureRequest
) -> None:
    """docs/scaling.md's figures: the same 60 s run with the page before phase-locked
    polling (git show BASELINE:site/live-embed.js), then with this one."""
    old = subprocess.run(
        ["git", "show", f"{BASELINE}:site/live-embed.js"],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    if old.returncode == 0:
        other = Path(tempfile.mkdtemp(prefix="livecam-served-"))
        other.chmod(0o755)  # for nginx's workers
        request.addfinalizer(lambda: shutil.rmtree(other, ignore_errors=True))
        before = measure_lag(other, browser, 60.0, old.stdout)
        print(f"\nbefore (plain cadence): {before}")
    f = measure_lag(served_dir, browser, 60.0)
    print(f"\nafter (phase-locked): {f}")
    assert f["median_lag_ms"] <= f["median_publish_ms"] + 300, f
    assert f["manifest_requests_per_frame"] <= 1.2, f
    if old.returncode == 0:
        assert f["median_lag_ms"] < before["median_lag_ms"], (before, f)
