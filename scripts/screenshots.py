#!/usr/bin/env python3
"""Regenerate the page screenshots in docs/ (normal, narrow phone, stale).

Runs the demo publisher into a temp directory, serves it with livecam's demo server
and photographs the page in headless Chromium. Usage: .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecam import config, httpserver  # noqa: E402
from livecam.camera.testpattern import TestPatternCamera  # noqa: E402
from livecam.service import Publisher  # noqa: E402
from livecam.targets.local import LocalTarget  # noqa: E402

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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
        time.sleep(1.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for name, viewport in (("page", (1200, 800)), ("phone", (390, 760))):
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                page.goto(server.url)
                time.sleep(2.5)
                page.screenshot(path=str(out / f"screenshot-{name}.png"))
                page.close()
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(server.url)
            time.sleep(2)
            stop.set()  # the publisher stops: after stale_after the page says so
            runner.join()
            time.sleep(5.5)
            page.screenshot(path=str(out / "screenshot-stale.png"))
            browser.close()
        server.shutdown()
        pub.close()
    print("wrote docs/screenshot-page.png, -phone.png, -stale.png")


if __name__ == "__main__":
    main()
