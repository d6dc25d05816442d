#!/usr/bin/env python3
"""Regenerate the page screenshots in docs/: normal, narrow phone, stale, offline.

Runs the test-pattern publisher into a temp directory, serves it with livecam's demo
server and photographs the page in headless Chromium, waiting for each state rather
than sleeping. Usage: .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecam import config, httpserver  # noqa: E402
from livecam.camera.testpattern import TestPatternCamera  # noqa: E402
from livecam.loop import Publisher  # noqa: E402
from livecam.targets.local import LocalTarget  # noqa: E402

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_for(page: Any, condition: str, timeout: float = 20.0) -> None:
    """Poll a JS expression from Python (the page's CSP forbids in-page eval)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(condition)
        time.sleep(0.1)


def state_is(state: str) -> str:
    return f"document.body.dataset.state === {state!r}"


FRAME_SHOWN = "document.getElementById('live').dataset.livecamSeq !== undefined"


def main() -> None:
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cfg = config.parse(
            {
                "camera": {"source": "test", "width": 1280, "height": 720, "interval": 1.0},
                "target": {"kind": "local", "path": tmp},
                "site": {
                    "title": "Roof camera",
                    "caption": "Looking west over the valley",
                    "location": "Demo town, 420 m",
                    "link": "https://example.org/",
                    "stale_after": 4,
                },
            }
        )
        camera = TestPatternCamera(1280, 720)
        pub = Publisher(cfg, lambda: camera, LocalTarget(directory))
        stop = threading.Event()
        runner = threading.Thread(target=pub.run, args=(stop,), daemon=True)
        runner.start()
        server = httpserver.serve(directory, "127.0.0.1", 0)
        while not (directory / "live.json").exists():
            time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for name, viewport in (("page", (1200, 800)), ("phone", (390, 760))):
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                page.goto(server.url)
                wait_for(page, FRAME_SHOWN)
                time.sleep(1.2)  # "updated 1 s ago" rather than a frame mid-swap
                page.screenshot(path=str(out / f"screenshot-{name}.png"))
                page.close()
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(server.url)
            wait_for(page, FRAME_SHOWN)
            stop.set()  # the publisher stops: after stale_after (4 s) the page says so
            runner.join()
            wait_for(page, state_is("stale"))
            time.sleep(2)
            page.screenshot(path=str(out / "screenshot-stale.png"))
            (directory / "live.json").unlink()  # now the host answers 404
            wait_for(page, state_is("offline"))
            page.screenshot(path=str(out / "screenshot-offline.png"))
            browser.close()
        server.shutdown()
        server.server_close()
        pub.close()
    print("wrote docs/screenshot-page.png, -phone.png, -stale.png, -offline.png")


if __name__ == "__main__":
    main()
