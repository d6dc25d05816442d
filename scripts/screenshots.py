#!/usr/bin/env python3
"""Regenerate the page screenshots in docs/: normal, narrow phone, stale, offline, and
the history view on a desktop and a phone, and the grid of several cameras (desktop
and phone).

Runs the test-pattern publisher into a temp directory, serves it with livecam's demo
server and photographs the page in headless Chromium, waiting for each state rather
than sleeping. The archive for the history view is drawn (a sky over three days) in
the published format by tests/archivefixture.py. Usage:
.venv/bin/python scripts/screenshots.py [page] [grid] (both when neither is named;
page includes the history view).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecam import config, grid, httpserver  # noqa: E402
from livecam.camera.testpattern import TestPatternCamera  # noqa: E402
from livecam.loop import Publisher  # noqa: E402
from livecam.targets.local import LocalTarget  # noqa: E402
from tests.archivefixture import add_to_manifest, write_archive  # noqa: E402

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
PAST_SHOWN = "(document.getElementById('past').dataset.frame || '').endsWith('164000.jpeg')"
ARCHIVE_DAYS = ["2026-12-05", "2026-12-06", "2026-12-07"]


def sky(minute: int, size: tuple[int, int]) -> Image.Image:
    """A made-up view west at `minute` of the day: night, dawn, day, dusk, a hill."""
    w, h = size
    sun = float(np.sin(np.pi * (minute - 420) / 660))  # up from 07:00 to 18:00
    day = np.clip(sun * 3, 0, 1)
    glow = np.clip(1 - abs(sun) * 4, 0, 1)  # sunrise and sunset
    top = np.array([12, 16, 40]) * (1 - day) + np.array([60, 120, 205]) * day
    low = top * (1 - glow) + np.array([235, 130, 70]) * glow
    rows = np.linspace(0, 1, h)[:, None]
    img = (top[None, :] * (1 - rows) + low[None, :] * rows)[:, None, :].repeat(w, axis=1)
    xs = np.arange(w)[None, :]
    hill = (0.72 + 0.06 * np.sin(xs / w * 7) + 0.03 * np.sin(xs / w * 23)) * h
    ground = np.arange(h)[:, None] > hill
    img[ground] = np.array([25, 40, 28]) * (0.3 + 0.7 * day) + 10
    if sun > -0.05:  # the sun, crossing the frame
        cx, cy = w * (minute - 420) / 660, h * (0.75 - 0.6 * max(sun, 0))
        yy, xx = np.mgrid[0:h, 0:w]
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (h * 0.05) ** 2
        img[disc & ~ground] = [255, 236, 180]
    return Image.fromarray(img.astype(np.uint8))


def history_shots(browser: Any, url: str, out: Path) -> None:
    """The history view at 16:40 on the middle day, on a desktop and on a phone."""
    for name, viewport in (("history", (1200, 800)), ("history-phone", (390, 760))):
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.goto(f"{url}#2026-12-06T16:40")
        wait_for(page, PAST_SHOWN)
        wait_for(page, "document.getElementById('history-strip').complete")
        time.sleep(0.5)  # the fragment settles
        page.screenshot(path=str(out / f"screenshot-{name}.png"))
        page.close()


def page_shots(out: Path) -> None:
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
        write_archive(directory, ARCHIVE_DAYS, list(range(1440)), size=(640, 360),
                      picture=sky)  # fmt: skip
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
            offline = (directory / "live.json").read_text()
            (directory / "live.json").unlink()  # now the host answers 404
            wait_for(page, state_is("offline"))
            page.screenshot(path=str(out / "screenshot-offline.png"))
            page.close()
            # The publisher has stopped: name the archive in its last manifest.
            (directory / "live.json").write_text(offline)
            add_to_manifest(directory)
            history_shots(browser, server.url, out)
            browser.close()
        server.shutdown()
        server.server_close()
        pub.close()
    print(
        "wrote docs/screenshot-page.png, -phone.png, -stale.png, -offline.png, -history.png,"
        " -history-phone.png"
    )


GRID_CAMERAS = ["Garden", "Driveway", "Bird box", "Roof", "Workshop", "Allotment"]


def grid_shots(out: Path) -> None:
    """The grid of `publisher.py site`: four live cameras, one stopped, one unreachable."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stop = threading.Event()
        pubs, runners = [], []
        for n, name in enumerate(GRID_CAMERAS[:5], 1):
            cfg = config.parse(
                {
                    "camera": {"source": "test", "width": 1280, "height": 720, "interval": 1.0},
                    "target": {"kind": "local", "path": str(root / f"cam{n}")},
                    "site": {"title": name, "stale_after": 4},
                }
            )
            camera = TestPatternCamera(1280, 720)
            pub = Publisher(cfg, lambda c=camera: c, LocalTarget(root / f"cam{n}"))
            pub.start()
            pub.publish_next()
            pubs.append(pub)
            if n != 5:  # the fifth published one frame and stopped: stale
                runner = threading.Thread(target=pub.run, args=(stop,), daemon=True)
                runner.start()
                runners.append(runner)
        site = grid.parse(
            {
                "site": {"title": "Our cameras", "caption": "Six cameras, one static page"},
                "cameras": [{"name": n, "url": f"cam{i}/"} for i, n in enumerate(GRID_CAMERAS, 1)],
                "target": {"kind": "local", "path": tmp},
            }
        )
        grid.publish(site, LocalTarget(root))
        server = httpserver.serve(root, "127.0.0.1", 0)
        time.sleep(4.5)  # the fifth camera's frame is older than its stale_after
        states = "[...document.querySelectorAll('.tile')].map((t) => t.dataset.state).join()"
        # On the phone only the tiles on screen poll: the first three.
        settled = {
            "grid": f"{states} === 'live,live,live,live,stale,offline'",
            "grid-phone": f"{states}.startsWith('live,live,live,')",
        }
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for name, viewport in (("grid", (1200, 800)), ("grid-phone", (390, 760))):
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                page.goto(server.url)
                wait_for(page, settled[name])
                time.sleep(1.2)
                page.screenshot(path=str(out / f"screenshot-{name}.png"))
                page.close()
            browser.close()
        stop.set()
        for runner in runners:
            runner.join()
        server.shutdown()
        server.server_close()
        for pub in pubs:
            pub.close()
    print("wrote docs/screenshot-grid.png, -grid-phone.png")


def main() -> None:
    out = ROOT / "docs"
    wanted = set(sys.argv[1:]) or {"page", "grid"}
    if wanted - {"page", "grid"}:
        sys.exit("usage: screenshots.py [page] [grid]")
    if "page" in wanted:
        page_shots(out)
    if "grid" in wanted:
        grid_shots(out)


if __name__ == "__main__":
    main()
