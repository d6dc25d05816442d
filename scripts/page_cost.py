#!/usr/bin/env python3
"""What one viewer costs the host: bytes and requests per poll and per minute.

Measures real traffic in headless Chromium (the Chrome DevTools Protocol's
Network.loadingFinished.encodedDataLength: response headers plus body as received)
for the live page and the embed script, against nginx and the demo server (whose
live.json ETag is an MD5, as on S3/R2/B2), and for the seed approach of reloading
the full JPEG every 150 ms. Everything on loopback, bounded in time.

Usage: .venv/bin/python scripts/page_cost.py [--seconds 30] [--interval 2]
Results go in docs/page.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent

import sys  # noqa: E402

sys.path.insert(0, str(ROOT))

from livecam import config, httpserver  # noqa: E402
from livecam.camera.testpattern import TestPatternCamera  # noqa: E402
from livecam.loop import Publisher  # noqa: E402
from livecam.targets.local import LocalTarget  # noqa: E402
from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.pagetools import Nginx  # noqa: E402

# A Raspberry Pi HQ camera's binned mode and the default variants.
WIDTH, HEIGHT = 2028, 1520
SEED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>seed</title>
<link rel="icon" href="data:,"><script src="seed.js" defer></script></head>
<body><img id="i" src="live.jpeg" alt="seed" style="max-width:100%"></body></html>
"""
SEED_JS = """"use strict";
// The seed page: the full JPEG again every 150 ms, whether it changed or not.
setInterval(() => { document.getElementById("i").src = "live.jpeg?" + Date.now(); }, 150);
"""


@dataclass
class Traffic:
    """Bytes received (headers + body) and requests, by file name."""

    counting: bool = False
    down: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)
    _counted: dict[str, int] = field(default_factory=dict)

    def attach(self, page: Any) -> None:
        cdp = page.context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.send("Network.enable")

    def _sent(self, e: dict[str, Any]) -> None:
        url = e["request"]["url"]
        if url.startswith("data:"):
            return
        name = url.split("?", 1)[0].rsplit("/", 1)[-1] or "index.html"
        self._names[e["requestId"]] = name
        if self.counting:
            self.requests[name] = self.requests.get(name, 0) + 1

    def _response(self, e: dict[str, Any]) -> None:
        # The headers' bytes; Chromium sends no loadingFinished for a 304 that
        # reaches the page (a fetch with cache "no-store"), so count them here.
        name = self._names.get(e["requestId"])
        if name and self.counting:
            self.statuses.setdefault(name, set()).add(e["response"]["status"])
            self._add(name, int(e["response"]["encodedDataLength"]))
            self._counted[e["requestId"]] = int(e["response"]["encodedDataLength"])

    def _finished(self, e: dict[str, Any]) -> None:
        name = self._names.pop(e["requestId"], None)
        if name and self.counting:
            # The whole response: headers and body; the headers were counted already.
            self._add(name, int(e["encodedDataLength"]) - self._counted.pop(e["requestId"], 0))

    def _add(self, name: str, n: int) -> None:
        self.down[name] = self.down.get(name, 0) + n


@dataclass
class Result:
    name: str
    seconds: float
    traffic: Traffic

    def row(self) -> str:
        t = self.traffic
        per_min = 60 / self.seconds
        polls = t.requests.get("live.json", 0)
        poll_bytes = t.down.get("live.json", 0) / polls if polls else 0
        images = sum(n for k, n in t.requests.items() if k.endswith(".jpeg"))
        total = sum(t.down.values())
        statuses = "/".join(str(s) for s in sorted(t.statuses.get("live.json", set()))) or "-"
        return (
            f"| {self.name} | {f'{poll_bytes:,.0f} B ({statuses})' if polls else '-'} "
            f"| {polls * per_min:.0f} | {images * per_min:.0f} "
            f"| {human(total * per_min)} | {human(total * per_min * 60)} |"
        )


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


@contextmanager
def publishing(directory: Path, interval: float, running: bool) -> Iterator[Publisher]:
    """The test camera publishing into `directory`: every `interval` (a changing
    scene) or one frame only (a static scene, as with skip_unchanged)."""
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": WIDTH, "height": HEIGHT, "interval": interval},
            "target": {"kind": "local", "path": str(directory)},
            "site": {"title": "Cost test"},
        }
    )
    camera = TestPatternCamera(WIDTH, HEIGHT)
    pub = Publisher(cfg, lambda: camera, LocalTarget(directory))
    stop = threading.Event()
    runner = None
    if running:
        runner = threading.Thread(target=pub.run, args=(stop,), daemon=True)
        runner.start()
        while not (directory / "live.json").exists():
            time.sleep(0.05)
    else:
        pub.start()
        pub.publish_next()
    try:
        yield pub
    finally:
        stop.set()
        if runner:
            runner.join()
        pub.close()


def measure(
    browser: Any,
    name: str,
    url: str,
    seconds: float,
    viewport: tuple[int, int] = (1200, 800),
    dpr: float = 1,
    ready: str = "document.querySelector('[data-livecam-seq]') !== null",
) -> Result:
    page = browser.new_page(
        viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=dpr
    )
    traffic = Traffic()
    traffic.attach(page)
    page.goto(url)
    deadline = time.monotonic() + 20
    while not page.evaluate(ready):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: the page never showed a frame")
        page.wait_for_timeout(50)
    page.wait_for_timeout(2500)  # past the first load: steady state only
    traffic.counting = True
    start = time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    elapsed = time.monotonic() - start
    traffic.counting = False
    page.close()
    return Result(name, elapsed, traffic)


def run(seconds: float, interval: float, emit: Callable[[str], None]) -> None:
    work = Path(tempfile.mkdtemp(prefix="livecam-cost-"))
    work.chmod(0o755)
    cam = work / "cam"
    other = work / "other"
    for d in (cam, other):
        d.mkdir()
        d.chmod(0o755)
    nginx = Nginx(cam).start()
    other_site = Nginx(other).start()
    demo = httpserver.serve(cam, "127.0.0.1", 0)
    results: list[Result] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            with publishing(cam, interval, running=False):
                (other / "index.html").write_text(
                    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                    '<link rel="icon" href="data:,"><title>other</title></head><body>'
                    f'<img data-livecam="{demo.url}" alt="cam" width="800" height="600">'
                    f'<script src="{demo.url}live-embed.js" defer></script></body></html>'
                )
                for label, url in (
                    ("page, static scene, demo server / S3-like (MD5 ETag: 304)", demo.url),
                    ("page, static scene, nginx (no safe validator: 200)", nginx.url),
                    ("embed script, other site, static, demo server (304 on the wire)",
                     other_site.url),
                ):  # fmt: skip
                    results.append(measure(browser, label, url, seconds))
                    emit(results[-1].row())
            with publishing(cam, interval, running=True):
                for label, viewport, dpr in (
                    ("page, new frame every interval, nginx, 1200x800", (1200, 800), 1),
                    ("page, new frame every interval, nginx, phone 390x844 @2x", (390, 844), 2),
                ):
                    results.append(measure(browser, label, nginx.url, seconds, viewport, dpr))
                    emit(results[-1].row())
                (cam / "seed.html").write_text(SEED_PAGE)
                (cam / "seed.js").write_text(SEED_JS)
                results.append(
                    measure(
                        browser,
                        "seed: full JPEG every 150 ms, nginx",
                        nginx.url + "seed.html",
                        min(seconds, 10),
                        ready="document.getElementById('i').complete",
                    )
                )
                emit(results[-1].row())
            browser.close()
    finally:
        demo.shutdown()
        demo.server_close()
        nginx.close()
        other_site.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="per scenario (default 30)")
    parser.add_argument("--interval", type=float, default=2.0, help="camera.interval (2)")
    args = parser.parse_args()
    print(
        f"camera {WIDTH}x{HEIGHT}, default variants, interval {args.interval:g} s, "
        f"{args.seconds:g} s per scenario, Chromium on loopback\n"
    )
    print("| viewer | bytes per manifest poll | polls/min | images/min | per minute | per hour |")
    print("| --- | --- | --- | --- | --- | --- |")
    run(args.seconds, args.interval, lambda row: print(row, flush=True))


if __name__ == "__main__":
    main()
