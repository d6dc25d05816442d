"""The live page in headless Chromium, served by nginx or the demo server."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.service import Publisher
from livecam.targets.local import LocalTarget

from .conftest import ROOT, free_port, wait_for_port


def publisher_for(
    directory: Path, interval: float = 1.0, size: tuple[int, int] = (640, 360)
) -> Publisher:
    w, h = size
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": w, "height": h, "interval": interval},
            "target": {"kind": "local", "path": str(directory)},
            "site": {"title": "Page test"},
        }
    )
    camera = TestPatternCamera(w, h)
    return Publisher(cfg, lambda: camera, LocalTarget(directory))


def open_page(
    browser: Any, url: str, width: int = 1000, height: int = 700
) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    return page, problems


def shown_seq(page: Any) -> int | None:
    src = page.evaluate("document.getElementById('live').currentSrc")
    return int(src.rsplit("?v=", 1)[1]) if "?v=" in src else None


def wait_for(page: Any, condition: str, timeout: float) -> None:
    """Poll a JS expression from Python: the page's CSP forbids Playwright's in-page eval."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout} s: {condition}")
        time.sleep(0.05)


def test_page_swaps_to_each_new_frame_without_flicker(served_dir: Path, nginx, browser) -> None:
    base = nginx(served_dir)
    pub = publisher_for(served_dir)
    pub.start()
    pub.publish_next()
    page, problems = open_page(browser, base)
    try:
        # Record every state of the image element: it must never be broken or empty.
        page.evaluate("""() => {
            window.__states = [];
            const img = document.getElementById('live');
            new MutationObserver(() => window.__states.push(
                [img.getAttribute('src'), img.complete, img.naturalWidth])).observe(
                img, {attributes: true, attributeFilter: ['src']});
        }""")
        wait_for(page, "document.getElementById('live').currentSrc.includes('?v=1')", 5)
        assert page.title() == "Page test"
        assert page.text_content("#title") == "Page test"
        for expected in (2, 3):
            pub.publish_next()
            published = time.monotonic()
            wait_for(
                page,
                f"document.getElementById('live').currentSrc.includes('?v={expected}')",
                pub.cfg.camera.interval + 1,
            )
            assert time.monotonic() - published <= pub.cfg.camera.interval + 1
        states = page.evaluate("window.__states")
        assert states, "the image was never swapped"
        for _src, complete, natural_width in states:
            assert complete and natural_width > 0, states  # decoded before it was shown
        assert page.text_content("#state") == "live"
        assert page.text_content("#updated").startswith("updated ")
        assert problems == []
    finally:
        page.close()
        pub.close()


def test_page_picks_the_smallest_variant_that_covers(served_dir: Path, nginx, browser) -> None:
    base = nginx(served_dir)
    pub = publisher_for(served_dir, size=(1280, 720))
    pub.start()
    pub.publish_next()
    try:
        page, problems = open_page(browser, base, width=300, height=500)
        wait_for(page, "document.getElementById('live').currentSrc.includes('?v=')", 5)
        assert "live320x240.jpeg" in page.evaluate("document.getElementById('live').currentSrc")
        page.close()
        page, problems2 = open_page(browser, base, width=1400, height=900)
        wait_for(page, "document.getElementById('live').currentSrc.includes('?v=')", 5)
        # Only the full 1280 px frame comes close to covering 1400 px.
        assert "/live.jpeg?" in page.evaluate("document.getElementById('live').currentSrc")
        page.close()
        assert problems == problems2 == []
    finally:
        pub.close()


def test_readme_demo_command_shows_a_changing_image(browser) -> None:
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
        page, problems = open_page(browser, f"http://127.0.0.1:{port}/")
        wait_for(page, "document.getElementById('live').currentSrc.includes('?v=')", 10)
        seen = {shown_seq(page)}
        deadline = time.monotonic() + 10
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            seen.add(shown_seq(page))
        assert len(seen) >= 3, seen  # changed at least twice within 10 s
        assert page.text_content("#title") == "livecam demo"
        assert problems == []
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
