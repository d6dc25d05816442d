"""Helpers for the browser tests of the live page and the embed script.

Everything runs for real on loopback: a publisher writing files, nginx (restartable,
so a test can take the host down), headless Chromium. Waits poll from Python: the
page's CSP forbids the in-page eval that Playwright's wait_for_function needs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.loop import Publisher
from livecam.targets.local import LocalTarget

from .conftest import ROOT, Nginx  # noqa: F401 - re-exported for the page tests

LIVE = "document.getElementById('live')"


def publisher_for(
    directory: Path,
    interval: float = 1.0,
    size: tuple[int, int] = (640, 360),
    site: dict[str, Any] | None = None,
    variants: list[dict[str, Any]] | None = None,
) -> Publisher:
    """A publisher with the test camera writing into `directory`; call start() first."""
    w, h = size
    doc: dict[str, Any] = {
        "camera": {"source": "test", "width": w, "height": h, "interval": interval},
        "target": {"kind": "local", "path": str(directory)},
        "site": site or {"title": "Page test"},
    }
    if variants is not None:
        doc["variants"] = variants
    cfg = config.parse(doc)
    camera = TestPatternCamera(w, h)
    return Publisher(cfg, lambda: camera, LocalTarget(directory))


def publishing(directory: Path, **kw: Any) -> Publisher:
    """`publisher_for(directory, ...)` that has already put the page and frame 1 there."""
    pub = publisher_for(directory, **kw)
    pub.start()
    pub.publish_next()
    return pub


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page, with the URL they name."""

    errors: list[tuple[str, str]] = field(default_factory=list)

    def unexpected(self, *failing: str) -> list[tuple[str, str]]:
        """Errors other than Chromium's own "Failed to load resource" line for a URL
        that a test broke on purpose (a 404, a stopped server): the page cannot
        silence those, and they are not the page's errors."""
        return [
            (text, url)
            for text, url in self.errors
            if not (
                text.startswith("Failed to load resource") and any(part in url for part in failing)
            )
        ]


def open_page(
    browser: Any,
    url: str,
    width: int = 1000,
    height: int = 700,
    dpr: float = 1,
    record: bool = True,
) -> tuple[Any, Console, Requests]:
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=dpr)
    console = Console()

    def on_console(m: Any) -> None:
        if m.type == "error":
            console.errors.append((m.text, m.location.get("url", "")))

    page.on("console", on_console)
    page.on("pageerror", lambda e: console.errors.append((str(e), "")))
    page.on("dialog", lambda d: (console.errors.append((f"dialog: {d.message}", "")), d.dismiss()))
    requests = Requests(page) if record else Requests()
    page.goto(url)
    return page, console, requests


class Requests:
    """Every request a page makes, in order, and how many were in flight at most."""

    def __init__(self, page: Any = None) -> None:
        self.log: list[tuple[float, str, dict[str, str]]] = []
        self.responses: list[tuple[str, int]] = []
        self._open: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        if page is not None:
            page.on("request", self._start)
            page.on("requestfinished", self._end)
            page.on("requestfailed", self._end)
            page.on("response", lambda r: self.responses.append((r.url, r.status)))

    @staticmethod
    def key(url: str) -> str:
        return url.split("?", 1)[0].rsplit("/", 1)[-1]

    def _start(self, request: Any) -> None:
        self.log.append((time.monotonic(), request.url, request.headers))
        k = self.key(request.url)
        self._open[k] = self._open.get(k, 0) + 1
        self.max_in_flight[k] = max(self.max_in_flight.get(k, 0), self._open[k])

    def _end(self, request: Any) -> None:
        k = self.key(request.url)
        self._open[k] = self._open.get(k, 1) - 1

    def urls(self, name: str = "") -> list[str]:
        return [url for _, url, _ in self.log if name in url]

    def count(self, name: str) -> int:
        return len(self.urls(name))


def wait_for(page: Any, condition: str, timeout: float) -> float:
    """Poll a JS expression until true; returns the seconds it took."""
    start = time.monotonic()
    while not page.evaluate(condition):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not true after {timeout} s: {condition}")
        page.wait_for_timeout(40)  # lets Playwright deliver events meanwhile
    return time.monotonic() - start


def shown_seq(page: Any, img: str = LIVE) -> int | None:
    seq = page.evaluate(f"{img}.dataset.livecamSeq")
    return int(seq) if seq else None


def shows(seq: int, img: str = LIVE) -> str:
    """JS: the element shows frame `seq`, decoded."""
    return (
        f"{img}.dataset.livecamSeq === '{seq}' && {img}.complete && {img}.naturalWidth > 0"
        f" && {img}.currentSrc.includes('?v={seq}')"
    )


def state_is(state: str) -> str:
    return f"document.body.dataset.state === '{state}'"


def set_visibility(page: Any, state: str) -> float:
    """Emulate a hidden or visible tab (the page reads document.visibilityState);
    returns the page's performance.now() just before the change."""
    return page.evaluate(
        """(state) => {
            if (!('__vis' in window)) {
                Object.defineProperty(Document.prototype, 'visibilityState',
                    {get() { return window.__vis; }, configurable: true});
                Object.defineProperty(Document.prototype, 'hidden',
                    {get() { return window.__vis === 'hidden'; }, configurable: true});
            }
            const at = performance.now();
            window.__vis = state;
            document.dispatchEvent(new Event('visibilitychange'));
            return at;
        }""",
        state,
    )


def docs_nginx_locations(live_dir: Path) -> str:
    """The nginx `location /live/` block of docs/embedding.md, pointed at `live_dir`."""
    text = (ROOT / "docs" / "embedding.md").read_text()
    blocks = re.findall(r"```nginx\n(.*?)```", text, flags=re.S)
    block = next(b for b in blocks if "location /live/" in b)
    return block.replace("/var/www/html/live/", f"{live_dir}/")
