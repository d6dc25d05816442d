"""Several cameras, one page: `publisher.py site` and the grid in a real browser.

Real publishers (`run`, the test camera) write to prefixes of one nginx root and of
one moto bucket; `site` publishes the grid beside them; headless Chromium watches it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livecam import cli, grid

from .conftest import (
    PUBLISHER,
    ROOT,
    S3_ENV,
    MotoServer,
    Nginx,
    free_port,
    run_cli,
    s3_client,
    write_config,
)
from .pagetools import docs_nginx_locations, open_page, publishing, set_visibility, wait_for

TILE = "document.querySelectorAll('.tile')"


def tile_js(i: int) -> str:
    return f"{TILE}[{i}]"


def site_toml(cameras: list[tuple[str, str]], target: str, title: str = "Our cameras") -> str:
    body = f'[site]\ntitle = "{title}"\n\n'
    for name, url in cameras:
        body += f'[[cameras]]\nname = "{name}"\nurl = "{url}"\n\n'
    return body + target


def local_target(path: Path) -> str:
    return f'[target]\nkind = "local"\npath = "{path}"\n'


def s3_target(endpoint: str, bucket: str, prefix: str = "") -> str:
    return (
        f'[target]\nkind = "s3"\nbucket = "{bucket}"\nprefix = "{prefix}"\n'
        f'endpoint_url = "{endpoint}"\naddressing_style = "path"\n'
        'acl = "public-read"\n'  # the browser reads without credentials
    )


def camera_toml(target: str, title: str, interval: float = 0.5) -> str:
    # Small frames and a short stale_after: the test sees LIVE turn STALE in seconds.
    return (
        f'[camera]\nsource = "test"\nwidth = 320\nheight = 180\ninterval = {interval}\n'
        f'[site]\ntitle = "{title}"\nstale_after = 3\n\n{target}'
    )


@pytest.fixture
def root(served_dir: Path) -> Path:
    """The site's root, which nginx's workers can read."""
    return served_dir


class Runs:
    """`publisher.py run` processes, stopped at the end of the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(PUBLISHER), "run", "-c", str(config)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.stop(proc)


@pytest.fixture
def runs() -> Iterator[Runs]:
    r = Runs()
    yield r
    r.close()


def tile_states(page: Any) -> list[str]:
    return list(page.evaluate(f"[...{TILE}].map((t) => t.dataset.state)"))


def tile_seqs(page: Any) -> list[int | None]:
    seqs = page.evaluate(f"[...{TILE}].map((t) => t.querySelector('img').dataset.livecamSeq)")
    return [int(s) if s else None for s in seqs]


NAMES = ["Garden", "Driveway", "Roof"]


@pytest.mark.browser
@pytest.mark.parametrize("host", ["nginx", "s3"])
def test_three_publishers_three_live_tiles_one_stopped_turns_stale(
    host: str,
    root: Path,
    tmp_path: Path,
    runs: Runs,
    browser: Any,
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Acceptance 1: three `run` publishers under three prefixes, the grid beside them."""
    env: dict[str, str] = {}
    if host == "nginx":
        targets = [local_target(root / f"cam{n}") for n in (1, 2, 3)]
        site_target = local_target(root)
        server = Nginx(root).start()
        url = server.url

        def published(name: str) -> bool:
            return (root / name).is_file()

    else:
        env = {
            **S3_ENV,
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        bucket = f"grid-{free_port()}"
        s3_client(moto_server.url).create_bucket(Bucket=bucket)
        targets = [s3_target(moto_server.url, bucket, f"cam{n}/") for n in (1, 2, 3)]
        site_target = s3_target(moto_server.url, bucket)
        server = None
        url = f"{moto_server.url}/{bucket}/index.html"
        s3 = s3_client(moto_server.url)

        def published(name: str) -> bool:
            return bool(s3.list_objects_v2(Bucket=bucket, Prefix=name).get("KeyCount"))

    try:
        procs = [
            runs.start(write_config(tmp_path, camera_toml(t, f"cam{n}"), f"cam{n}.toml"), env)
            for n, t in enumerate(targets, 1)
        ]
        cameras = [(name, f"cam{n}/") for n, name in enumerate(NAMES, 1)]
        site = write_config(tmp_path, site_toml(cameras, site_target), "site.toml")
        # `site` looks for each live.json first: wait until the publishers wrote one.
        deadline = time.monotonic() + 60
        while not all(published(f"cam{n}/live.json") for n in (1, 2, 3)):
            assert time.monotonic() < deadline, [p.poll() for p in procs]
            time.sleep(0.2)
        result = run_cli("site", "-c", str(site), env=env)
        assert result.returncode == 0, result.stderr
        assert "published index.html" in result.stdout

        page, console, _ = open_page(browser, url, 1200, 800)
        try:
            wait_for(page, f"[...{TILE}].every((t) => t.dataset.state === 'live')", 10)
            names = page.evaluate(
                f"[...{TILE}].map((t) => t.querySelector('.tile-name').textContent)"
            )
            assert names == NAMES
            assert page.title() == "Our cameras"
            # Each tile changes: every one shows at least two newer frames.
            first = tile_seqs(page)
            wait_for(
                page,
                f"[...{TILE}].every((t, i) => Number(t.querySelector('img').dataset.livecamSeq)"
                f" >= {json.dumps(first)}[i] + 2)",
                10,
            )
            runs.stop(procs[1])
            # Driveway stops: STALE after its stale_after (3 s); the others stay LIVE.
            wait_for(page, f"{tile_js(1)}.dataset.state === 'stale'", 10)
            assert tile_states(page) == ["live", "stale", "live"]
            assert page.text_content("#tile-1-state") == "stale"
            before = tile_seqs(page)
            wait_for(
                page,
                f"Number({tile_js(0)}.querySelector('img').dataset.livecamSeq) > {before[0]}"
                f" && Number({tile_js(2)}.querySelector('img').dataset.livecamSeq) > {before[2]}",
                5,
            )
            assert tile_states(page) == ["live", "stale", "live"]
            assert console.errors == []
        finally:
            page.close()
    finally:
        if server is not None:
            server.close()


def sixteen(root: Path, size: tuple[int, int] = (1280, 720)) -> list[Any]:
    """16 cameras pre-published under root/camN/ (one frame each); returns the publishers."""
    pubs = []
    for n in range(1, 17):
        pubs.append(publishing(root / f"cam{n:02d}", size=size, site={"title": f"Camera {n}"}))
    return pubs


VISIBLE = f"""[...{TILE}].map((t, i) => {{
    const r = t.querySelector('img').getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight ? i : -1;
}}).filter((i) => i >= 0)"""


def polled(requests: Any, since: float = 0.0) -> set[int]:
    """The tiles (0-based) whose live.json the page asked for after `since`."""
    out = set()
    for at, url, _ in requests.log:
        if at >= since and url.endswith("/live.json"):
            out.add(int(url.rsplit("/", 2)[-2][3:]) - 1)
    return out


@pytest.mark.browser
def test_sixteen_tiles_only_the_visible_ones_poll(root: Path, tmp_path: Path, browser: Any) -> None:
    """Acceptance 2: a narrow window shows a few of 16 tiles; only those make requests,
    each loads the smallest variant that covers it, scrolling brings the others."""
    pubs = sixteen(root)
    stop = threading.Event()
    live = threading.Thread(target=pubs[0].run, args=(stop,), daemon=True)
    live.start()
    cameras = [(f"Camera {n}", f"cam{n:02d}/") for n in range(1, 17)]
    site = write_config(tmp_path, site_toml(cameras, local_target(root)))
    result = run_cli("site", "-c", str(site))
    assert result.returncode == 0, result.stderr
    server = Nginx(root).start()
    page, console, requests = open_page(browser, server.url, 390, 1000)
    try:
        wait_for(page, f"{tile_js(0)}.dataset.state === 'live'", 10)
        visible = set(page.evaluate(VISIBLE))
        assert 1 < len(visible) < 16, visible
        shown = [f"{tile_js(i)}.querySelector('img').dataset.livecamSeq" for i in visible]
        wait_for(page, " && ".join(f"{js} !== undefined" for js in shown), 5)
        page.wait_for_timeout(2500)  # two more polls of every visible tile (interval 1 s)
        assert polled(requests) == visible
        # Only the visible tiles loaded images, each the smallest that covers it: a
        # 352 px tile takes the 800x450 variant, not the 1280x720 one nor the 320x180.
        images = [u for _, u, _ in requests.log if ".jpeg" in u]
        assert {int(u.rsplit("/", 2)[-2][3:]) - 1 for u in images} == visible
        assert all("/live800x600.jpeg?v=" in u for u in images), images
        # The live camera keeps changing on screen.
        seq = int(page.evaluate(f"{tile_js(0)}.querySelector('img').dataset.livecamSeq"))
        wait_for(page, f"Number({tile_js(0)}.querySelector('img').dataset.livecamSeq) > {seq}", 5)

        # A hidden tab asks for nothing.
        set_visibility(page, "hidden")
        page.wait_for_timeout(300)  # a request in flight at the switch may finish
        hidden_at = time.monotonic()
        page.wait_for_timeout(2500)
        assert polled(requests, hidden_at) == set()
        set_visibility(page, "visible")

        # Scrolled to the end: the last tiles come to life, the first ones go quiet.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(300)
        scrolled_at = time.monotonic()
        now_visible = set(page.evaluate(VISIBLE))
        assert 15 in now_visible and not now_visible & visible, (visible, now_visible)
        wait_for(
            page,
            " && ".join(
                f"{tile_js(i)}.querySelector('img').dataset.livecamSeq === '1'" for i in now_visible
            ),
            5,
        )
        page.wait_for_timeout(2000)
        assert polled(requests, scrolled_at) == now_visible
        assert console.errors == []
    finally:
        page.close()
        stop.set()
        live.join(5)
        for pub in pubs:
            pub.close()
        server.close()


@pytest.mark.browser
def test_tiles_are_links_a_keyboard_reaches(root: Path, browser: Any) -> None:
    pubs = [publishing(root / "cam1", site={"title": "Garden page"}), publishing(root / "cam2")]
    site = write_config(
        root.parent,
        site_toml([("Garden", "cam1/"), ("Driveway", "cam2/")], local_target(root)),
        f"{root.name}-site.toml",
    )
    try:
        assert run_cli("site", "-c", str(site)).returncode == 0
        server = Nginx(root).start()
        page, console, _ = open_page(browser, server.url)
        try:
            wait_for(page, f"{tile_js(0)}.dataset.state === 'live'", 10)
            # Each tile is one link named by the camera and its state.
            assert page.get_by_role("link", name="Garden live").count() == 1
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.getAttribute('href')") == "cam1/index.html"
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.getAttribute('href')") == "cam2/index.html"
            page.keyboard.press("Shift+Tab")
            page.keyboard.press("Enter")
            page.wait_for_url(server.url + "cam1/index.html")
            wait_for(page, "document.getElementById('title').textContent === 'Garden page'", 5)
            assert console.errors == []
        finally:
            page.close()
            server.close()
    finally:
        site.unlink()
        for pub in pubs:
            pub.close()


@pytest.mark.browser
def test_a_camera_on_another_origin_with_the_documented_cors(root: Path, browser: Any) -> None:
    """A tile whose camera is on another host: the page's policy names that origin, the
    host allows it with docs/embedding.md's nginx config, the probe sees CORS."""
    camera_root = Path(tempfile.mkdtemp(prefix="livecam-camhost-"))
    camera_root.chmod(0o755)
    camera_host = Nginx(camera_root, extra=docs_nginx_locations(camera_root / "live")).start()
    pubs = [publishing(camera_root / "live"), publishing(root / "cam1")]
    other = camera_host.url + "live/"
    site = write_config(
        camera_root,
        site_toml([("Here", "cam1/"), ("There", other)], local_target(root)),
        "site.toml",
    )
    grid_host = Nginx(root).start()
    try:
        result = run_cli("site", "-c", str(site))
        assert result.returncode == 0, result.stderr
        assert f"ok   There: {other}live.json, seq 1, captured" in result.stdout
        assert "WARNING" not in result.stdout
        assert f"it reads from {camera_host.url.rstrip('/')}" in result.stdout
        page, console, _ = open_page(browser, grid_host.url)
        try:
            wait_for(page, f"[...{TILE}].every((t) => t.dataset.state === 'live')", 10)
            # Live comes with the manifest; the image is swapped in once decoded.
            wait_for(page, f"{tile_js(1)}.querySelector('img').dataset.livecamSeq === '1'", 5)
            assert page.evaluate(f"{tile_js(1)}.querySelector('img').currentSrc").startswith(other)
            assert page.get_attribute(".tile:nth-child(2) a", "href") == other + "index.html"
            assert console.errors == []  # a CSP or CORS refusal would show here
        finally:
            page.close()
    finally:
        for pub in pubs:
            pub.close()
        grid_host.close()
        camera_host.close()
        shutil.rmtree(camera_root, ignore_errors=True)


# --- acceptance 4: bad site files, through the real CLI -------------------------------

CAM = '[[cameras]]\nname = "Garden"\nurl = "cam1/"\n'
BAD_SITE_FILES = [
    # (id, TOML before [target], the message after "config error: ")
    ("no-cameras", "", "cameras: must be one or more [[cameras]] tables"),
    (
        "duplicate-name",
        CAM + '[[cameras]]\nname = "garden "\nurl = "cam2/"\n',
        'cameras[1].name: "garden" is cameras[0]\'s name too; names must be unique',
    ),
    (
        "duplicate-url",
        CAM + '[[cameras]]\nname = "Other"\nurl = "./cam1"\n',
        'cameras[1].url: "cam1/" is cameras[0]\'s url too; list each camera once',
    ),
    (
        "url-javascript",
        '[[cameras]]\nname = "X"\nurl = "javascript:alert(1)"\n',
        "cameras[0].url: must be an http(s) URL or a path relative to the grid page",
    ),
    (
        "url-ftp",
        '[[cameras]]\nname = "X"\nurl = "ftp://host/cam/"\n',
        "cameras[0].url: must be an http(s) URL or a path relative to the grid page",
    ),
    (
        "url-space",
        '[[cameras]]\nname = "X"\nurl = "cam 1/"\n',
        "cameras[0].url: must be an http(s) URL or a path relative to the grid page",
    ),
    (
        "url-credentials",
        '[[cameras]]\nname = "X"\nurl = "https://me:secret@host/cam/"\n',
        'cameras[0].url: must not hold a user or password (a public page cannot use them), got "https://***@host/cam/"',
    ),
    (
        "url-query",
        '[[cameras]]\nname = "X"\nurl = "https://host/cam/?x=1"\n',
        "cameras[0].url: must not have a query or fragment",
    ),
    (
        "url-root-relative",
        '[[cameras]]\nname = "X"\nurl = "/cam1/"\n',
        'cameras[0].url: must be relative to the grid page ("cam1/", not "/cam1/"',
    ),
    (
        "url-above-the-grid",
        '[[cameras]]\nname = "X"\nurl = "cam1/../../cam2/"\n',
        "cameras[0].url: leads above the directory the grid is published to ([target])",
    ),
    (
        "url-the-grid-itself",
        '[[cameras]]\nname = "X"\nurl = "./"\n',
        "cameras[0].url: is the grid's own directory",
    ),
    ("url-number", '[[cameras]]\nname = "X"\nurl = 1\n', "cameras[0].url: must be a string, got 1"),
    ("name-missing", '[[cameras]]\nurl = "cam1/"\n', "cameras[0].name: is required"),
    (
        "name-empty",
        '[[cameras]]\nname = " "\nurl = "cam1/"\n',
        "cameras[0].name: must not be empty",
    ),
    (
        "unknown-key",
        CAM + "order = 1\n",
        "cameras[0].order: unknown key (allowed: name, url)",
    ),
    (
        "unknown-section",
        "[camera]\n" + CAM,
        "camera: unknown section (allowed: site, cameras, target)",
    ),
    (
        "title-control",
        '[site]\ntitle = "a\\u0007"\n' + CAM,
        "site.title: must not contain control characters",
    ),
    ("no-live-json", CAM, 'cameras[0].url: no live.json under "cam1/" on local directory'),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in BAD_SITE_FILES], ids=[c[0] for c in BAD_SITE_FILES]
)
def test_a_bad_site_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    www = tmp_path / "www"
    path = write_config(tmp_path, body + local_target(www), "site.toml")
    code = cli.main(["site", "-c", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"livecam: config error: {expected}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (www / "index.html").exists()  # nothing published


def site_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`site ARGS` through the CLI's own entry point, in this process (faster than a
    subprocess; the tests above run the real program too)."""
    code = cli.main(["site", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_missing_target_and_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, CAM, "site.toml")
    code, _, err = site_cli(capsys, "-c", str(path))
    assert (code, err.split(":")[2].strip()) == (2, "target")
    path = write_config(tmp_path, CAM + '[target]\nkind = "ftp"\n', "site.toml")
    code, _, err = site_cli(capsys, "-c", str(path))
    assert code == 2
    assert 'target.kind: must be one of "local", "s3"' in err and 'got "ftp"' in err


@pytest.mark.nginx
def test_an_absolute_url_that_does_not_answer_is_an_error_unless_told(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    gone = f'[[cameras]]\nname = "Gone"\nurl = "http://127.0.0.1:{port}/cam/"\n'
    path = write_config(tmp_path, gone + local_target(tmp_path / "www"), "site.toml")
    result = run_cli("site", "-c", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"livecam: config error: cameras[0].url: cannot reach http://127.0.0.1:{port}/cam/live.json"
    ), result.stderr
    assert result.stderr.rstrip().endswith("or pass --no-check to publish anyway")
    # A host that answers 404, and one with a live.json that sends no CORS header.
    server = Nginx(root).start()
    try:
        missing = gone.replace(f"127.0.0.1:{port}", f"127.0.0.1:{server.port}")
        path.write_text(missing + local_target(tmp_path / "www"))
        code, _, err = site_cli(capsys, "-c", str(path))
        assert code == 2
        assert "live.json (HTTP 404): check the url" in err
        pub = publishing(root / "cam")
        code, out, err = site_cli(capsys, "-c", str(path))
        pub.close()
        assert code == 0, err
        assert "WARNING: no Access-Control-Allow-Origin" in out
    finally:
        server.close()
    path.write_text(gone + local_target(tmp_path / "www"))
    code, _, err = site_cli(capsys, "-c", str(path), "--no-check")
    assert code == 0, err
    assert (tmp_path / "www" / "index.html").is_file()


def test_the_page_escapes_text_and_lists_cameras_in_order(tmp_path: Path) -> None:
    cfg = grid.parse(
        {
            "site": {"title": "<b>Ours</b>", "caption": 'a "b" & c'},
            "cameras": [
                {"name": '"><img src=x onerror=alert(1)>', "url": "cam2"},
                {"name": "Zoo", "url": "https://zoo.example:8443/cam"},
                {"name": "Ape", "url": "a/./b/../cam1/"},
            ],
            "target": {"kind": "local", "path": str(tmp_path)},
        }
    )
    page = {f.name: f for f in grid.files(cfg)}["index.html"].data.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<title>&lt;b&gt;Ours&lt;/b&gt;</title>" in page
    assert '<p class="caption">a &quot;b&quot; &amp; c</p>' in page
    bases = [
        line.split('data-base="')[1].split('"')[0]
        for line in page.splitlines()
        if "data-base" in line
    ]
    assert bases == ["cam2/", "https://zoo.example:8443/cam/", "a/cam1/"]
    assert "connect-src 'self' https://zoo.example:8443;" in grid.csp(cfg)
    assert "img-src 'self' data: https://zoo.example:8443;" in grid.csp(cfg)
    assert "{{" not in page and "tile-0-name" in page and "tile-3-name" not in page
    # The page is valid HTML, as the linted template is.
    html_validate = ROOT / "node_modules" / ".bin" / "html-validate"
    if not html_validate.exists():
        pytest.skip("node_modules missing: scripts/test installs html-validate")
    (tmp_path / "index.html").write_text(page)
    result = subprocess.run(
        [str(html_validate), str(tmp_path / "index.html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_camera_page_does_not_carry_the_grid() -> None:
    from livecam import site

    names = {f.name for f in site.load()}
    assert "index.html" in names and not names & site.GRID_FILES


def test_the_example_site_file_is_valid() -> None:
    cfg = grid.load(ROOT / "site.example.toml")
    assert [c.name for c in cfg.cameras][:2] == ["Garden", "Driveway"]
