"""Embedding on other sites: live-embed.js and embed.html on another origin, behind
the nginx configuration of docs/embedding.md, run as written."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import fetch
from .pagetools import (
    LIVE,
    Nginx,
    docs_nginx_locations,
    open_page,
    publishing,
    shows,
    wait_for,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def camera_host(served_dir: Path) -> Iterator[Nginx]:
    """The camera's host: the documented nginx config, the camera under /live/."""
    root = Path(tempfile.mkdtemp(prefix="livecam-root-"))
    root.chmod(0o755)
    server = Nginx(root, extra=docs_nginx_locations(served_dir)).start()
    yield server
    server.close()
    root.rmdir()


@pytest.fixture
def other_site() -> Iterator[tuple[Path, Nginx]]:
    """Another origin (another loopback port) whose pages embed the camera."""
    root = Path(tempfile.mkdtemp(prefix="livecam-site-"))
    root.chmod(0o755)
    server = Nginx(root).start()
    yield root, server
    server.close()
    shutil.rmtree(root, ignore_errors=True)


def img(n: int) -> str:
    return f"document.getElementById('cam{n}')"


def other_page(root: Path, body: str) -> None:
    """Write the other site's page, embedding the camera as its snippets say."""
    (root / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,"><title>Another site</title></head>\n'
        f"<body>\n{body}\n</body></html>\n"
    )


def test_docs_nginx_config_sends_the_documented_headers(
    served_dir: Path, camera_host: Nginx
) -> None:
    pub = publishing(served_dir)
    try:
        live = camera_host.url + "live/"
        status, headers, _ = fetch(live + "live.json")
        assert status == 200
        assert headers["Cache-Control"] == "no-cache"
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Access-Control-Expose-Headers"] == "Date, ETag"
        status, headers, _ = fetch(live + "live800x600.jpeg")
        assert (status, headers["Cache-Control"]) == (200, "no-cache")
        status, headers, body = fetch(live)
        assert status == 200 and b'id="live"' in body
        assert "frame-ancestors 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        _, headers, _ = fetch(live + "embed.html")
        assert "frame-ancestors *" in headers["Content-Security-Policy"]
    finally:
        pub.close()


def test_the_page_works_under_the_documented_csp(
    served_dir: Path, camera_host: Nginx, browser: Any
) -> None:
    pub = publishing(served_dir)
    page, console, _ = open_page(browser, camera_host.url + "live/")
    try:
        wait_for(page, shows(1), 5)
        pub.publish_next()
        wait_for(page, shows(2), 2)
        wait_for(page, "document.getElementById('snippet-script').textContent !== ''", 2)
        assert console.errors == []  # a CSP violation would be reported here
    finally:
        page.close()
        pub.close()


def test_embed_script_makes_images_on_another_origin_live(
    served_dir: Path, camera_host: Nginx, other_site: tuple[Path, Nginx], browser: Any
) -> None:
    root, site = other_site
    live = camera_host.url + "live/"
    assert live.split("/")[2] != site.url.split("/")[2]  # two origins
    # Two images of the same camera, at two sizes, as the page's snippet writes them.
    fixed = f"{live}live800x600.jpeg"
    other_page(
        root,
        f"""<p>Our camera:</p>
<img id="cam1" src="{fixed}" data-livecam="{live}" alt="Roof" width="300" height="169">
<img id="cam2" src="{fixed}" data-livecam="{live}" alt="Roof, large" width="1000" height="563">
<script src="{live}live-embed.js" defer></script>""",
    )
    pub = publishing(served_dir, size=(1280, 720))
    page, console, requests = open_page(browser, site.url, 1400, 900)
    try:
        wait_for(page, f"{shows(1, img(1))} && {shows(1, img(2))}", 5)
        assert page.evaluate(f"{img(1)}.currentSrc") == f"{live}live320x240.jpeg?v=1"
        assert page.evaluate(f"{img(2)}.currentSrc") == f"{live}live.jpeg?v=1"
        assert page.get_attribute("#cam1", "alt").startswith("Roof: live image captured ")
        assert page.get_attribute("#cam2", "data-livecam-state") == "live"
        for seq in (2, 3):
            pub.publish_next()
            wait_for(page, f"{shows(seq, img(1))} && {shows(seq, img(2))}", 2)
        # An image added later (a single-page site) is upgraded too.
        page.evaluate(f"""() => {{
            const i = document.createElement('img');
            i.id = 'cam3'; i.width = 600; i.alt = 'Roof again';
            i.dataset.livecam = '{live}';
            document.body.append(i);
        }}""")
        wait_for(page, shows(3, img(3)), 2)
        # One poller for the camera: one manifest request in flight at most, and no
        # header of the script's own, which would cost a CORS preflight per poll.
        assert requests.max_in_flight["live.json"] == 1
        polls = [h for _, url, h in requests.log if url.endswith("/live.json")]
        assert polls and not any("if-none-match" in h for h in polls)
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_embed_script_without_cors_keeps_the_fixed_image(
    served_dir: Path, other_site: tuple[Path, Nginx], browser: Any
) -> None:
    """A host that does not allow CORS: the img stays the fixed image, marked offline."""
    plain = Nginx(served_dir).start()  # the tests' plain nginx: no CORS headers
    root, site = other_site
    other_page(
        root,
        f"""<img id="cam1" src="{plain.url}live800x600.jpeg" data-livecam="{plain.url}"
     alt="Roof" width="400" height="225">
<script src="{plain.url}live-embed.js" defer></script>""",
    )
    pub = publishing(served_dir)
    page, console, _ = open_page(browser, site.url)
    try:
        wait_for(page, f"{img(1)}.dataset.livecamState === 'offline'", 5)
        assert page.evaluate(f"{img(1)}.complete && {img(1)}.naturalWidth > 0")
        assert page.evaluate(f"{img(1)}.currentSrc") == f"{plain.url}live800x600.jpeg"
        # Chromium reports the refused CORS read itself; the script adds nothing.
        assert all("CORS" in text or "Failed to load" in text for text, _ in console.errors)
    finally:
        page.close()
        pub.close()
        plain.close()


def test_embed_html_in_an_iframe_on_another_site(
    served_dir: Path, camera_host: Nginx, other_site: tuple[Path, Nginx], browser: Any
) -> None:
    root, site = other_site
    live = camera_host.url + "live/"
    other_page(
        root,
        f"""<iframe id="frame" src="{live}embed.html" title="Roof camera"
        width="480" height="270" style="border:0"></iframe>""",
    )
    pub = publishing(served_dir, size=(1280, 720))
    page, console, _ = open_page(browser, site.url)
    try:
        wait_for(page, "window.frames.length === 1", 5)
        frame = page.frame_locator("#frame")
        inner = page.frames[1]
        wait_for(inner, shows(1), 5)
        # The smallest variant covering 480 px: 800x450; only the image and a timestamp.
        assert inner.evaluate(f"{LIVE}.currentSrc") == f"{live}live800x600.jpeg?v=1"
        box = frame.locator("#live").bounding_box()
        assert box is not None and round(box["width"]) == 480
        assert frame.locator(".stamp").is_visible()
        pub.publish_next()
        wait_for(inner, shows(2), 2)
        assert inner.evaluate("document.getElementById('updated').textContent").startswith(
            "updated "
        )
        assert console.errors == []
    finally:
        page.close()
        pub.close()


def test_page_snippets_embed_this_camera_and_copy(
    served_dir: Path, camera_host: Nginx, browser: Any
) -> None:
    pub = publishing(served_dir, size=(1280, 720), site={"title": 'Roof "north"'})
    live = camera_host.url + "live/"
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(live)
        wait_for(page, "document.getElementById('snippet-script').textContent !== ''", 5)
        alt = 'alt="Roof &#34;north&#34;" width="800" height="450"'
        assert page.text_content("#snippet-img") == f'<img src="{live}live800x600.jpeg" {alt}>'
        iframe = page.text_content("#snippet-iframe") or ""
        assert iframe.startswith(f'<iframe src="{live}embed.html" title="Roof &#34;north&#34;"')
        assert page.text_content("#snippet-script") == (
            f'<img src="{live}live800x600.jpeg" data-livecam="{live}" {alt}>\n'
            f'<script src="{live}live-embed.js" defer></script>'
        )
        page.click("button[data-copy='snippet-script']")
        wait_for(page, "document.querySelector(\"button[data-copy='snippet-script']\")"
                       ".textContent === 'Copied'", 2)  # fmt: skip
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.text_content("#snippet-script")
        assert errors == []
    finally:
        context.close()
        pub.close()


def test_an_image_put_back_after_its_camera_was_dropped_goes_live_again(
    served_dir: Path, nginx: Any, browser: Any
) -> None:
    """A single-page site detaches an image (its camera stops polling once no image
    shows it) and attaches it again later: it must go live again, not stay frozen."""
    base = nginx(served_dir)
    pub = publishing(served_dir)
    (served_dir / "spa.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>SPA</title>'
        '<link rel="icon" href="data:,">'
        '<script src="live-embed.js" defer></script></head>\n<body>\n<img id="cam1"'
        ' src="live800x600.jpeg" data-livecam="./" alt="Roof" width="400" height="225">\n'
        "</body></html>\n"
    )
    cam = "window.__cam"
    page, console, requests = open_page(browser, base + "spa.html")
    try:
        wait_for(page, shows(1, img(1)), 5)
        page.evaluate(f"{cam} = document.getElementById('cam1'); {cam}.remove()")
        page.wait_for_timeout(2500)  # the next poll finds no image: the camera is dropped
        polls = requests.count("live.json")
        page.wait_for_timeout(2000)
        assert requests.count("live.json") == polls
        page.evaluate(f"document.body.append({cam})")
        pub.publish_next()
        wait_for(page, shows(2, cam), 4)
        assert page.get_attribute("#cam1", "data-livecam-state") == "live"
        assert console.errors == []
    finally:
        page.close()
        pub.close()
