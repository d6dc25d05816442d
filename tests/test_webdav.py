"""The WebDAV target against a real nginx with its dav module on loopback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config
from livecam.site import load as load_site
from livecam.targets.webdav import WebDAVTarget

from .conftest import run_cli, write_config
from .remoteservers import (  # noqa: F401 - the fixtures
    DAV_PASSWORD,
    DavNginx,
    dav_fixture,
    dav_root_fixture,
    toml_table,
)
from .test_sftp import PAGE, camera_toml, intact, publisher, temp_files


def dav_config(tmp_path: Path, server: DavNginx, path: str = "cam/", **kw: Any) -> Path:
    return write_config(
        tmp_path, camera_toml() + "\n" + toml_table("target", server.target(path, **kw))
    )


def target_for(server: DavNginx, path: str = "cam/", **kw: Any) -> WebDAVTarget:
    return WebDAVTarget(config.parse({"target": server.target(path, **kw)}).target)


def test_once_publishes_images_manifest_and_page(
    tmp_path: Path, dav: DavNginx, dav_root: Path
) -> None:
    result = run_cli("once", "-c", str(dav_config(tmp_path, dav, "a/b/cam/")))
    assert result.returncode == 0, result.stderr
    www = dav_root / "a" / "b" / "cam"  # made with MKCOL, parents first
    names = {p.name for p in www.iterdir()}
    assert names == {"live.jpeg", "live800x600.jpeg", "live320x240.jpeg", "live.json"} | PAGE
    assert intact(www) == 1
    assert temp_files(dav_root) == []
    assert DAV_PASSWORD not in result.stdout + result.stderr


def test_images_land_before_the_manifest_and_seq_resumes(dav: DavNginx, dav_root: Path) -> None:
    target = target_for(dav)
    moves: list[str] = []
    real = target._request

    def request(method: str, url: str, *a: Any, **kw: Any) -> Any:
        reply = real(method, url, *a, **kw)
        if method == "MOVE" and reply.status in (201, 204):
            moves.append(kw["headers"]["Destination"].rsplit("/", 1)[1])
        return reply

    target._request = request  # type: ignore[method-assign]
    pub = publisher(target)
    pub.start()
    moves.clear()
    pub.publish_next()
    pub.publish_next()
    assert moves[3] == "live.json" and moves[-1] == "live.json" and moves.count("live.json") == 2
    pub.close()
    assert intact(dav_root / "cam") == 2
    again = publisher(target_for(dav))
    again.start()
    again.publish_next()
    again.close()
    assert intact(dav_root / "cam") == 3


def test_a_stale_temp_file_is_consumed_by_the_next_publish(dav: DavNginx, dav_root: Path) -> None:
    """A crash between PUT and MOVE leaves a temp file; its name is fixed per file, so
    the next publish of that file overwrites and moves it."""
    www = dav_root / "cam"
    www.mkdir()
    www.chmod(0o777)
    for name in (".livecam-live.jpeg.tmp", ".livecam-live.json.tmp", ".livecam-index.html.tmp"):
        (www / name).write_bytes(b"half a frame")
    pub = publisher(target_for(dav))
    pub.start()
    pub.publish_next()
    pub.close()
    assert temp_files(www) == []
    assert intact(www) == 1


def test_page_is_published_only_when_it_changed(dav: DavNginx, dav_root: Path) -> None:
    files = load_site()
    target = target_for(dav)
    target.start()
    assert set(target.publish_site(files)) == PAGE
    assert target.publish_site(files) == []
    assert target.publish_site(files, verify=True) == []
    target.close()
    fresh = target_for(dav)
    assert fresh.publish_site(files) == []
    (dav_root / "cam" / "style.css").write_text("/* edited on the server */")
    assert fresh.publish_site(files, verify=True) == ["style.css"]
    (dav_root / "cam" / "index.html").unlink()
    assert fresh.missing(["index.html", "live.js"]) == ["index.html"]
    assert fresh.publish_site(files, verify=True) == ["index.html"]
    fresh.close()


def test_check_passes_and_leaves_nothing(tmp_path: Path, dav: DavNginx, dav_root: Path) -> None:
    result = run_cli("check", "-c", str(dav_config(tmp_path, dav)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   write" in result.stdout
    assert result.stdout.splitlines()[-1] == "all checks passed"
    assert list((dav_root / "cam").iterdir()) == []


def check_fails(tmp_path: Path, dav: DavNginx, path: str = "cam/", **kw: Any) -> str:
    result = run_cli("check", "-c", str(dav_config(tmp_path, dav, path, **kw)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "some checks failed"
    fails = [ln for ln in result.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 1, result.stdout
    assert DAV_PASSWORD not in result.stdout + result.stderr
    return fails[0]


def test_check_explains_a_wrong_password(
    tmp_path: Path, dav: DavNginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVECAM_WEBDAV_PASSWORD", "not-the-password")
    line = check_fails(tmp_path, dav)
    assert "HTTP 401" in line and "password" in line


def test_the_password_file_is_read(
    tmp_path: Path, dav: DavNginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVECAM_WEBDAV_PASSWORD")
    secret = tmp_path / "password"
    secret.write_text(DAV_PASSWORD + "\n")
    path = dav_config(tmp_path, dav, password_file=str(secret))
    assert run_cli("check", "-c", str(path)).returncode == 0
    line = check_fails(tmp_path, dav, password_file=str(tmp_path / "nonexistent"))
    assert "cannot read target.password_file" in line
    monkeypatch.delenv("LIVECAM_WEBDAV_PASSWORD", raising=False)


def test_check_explains_no_password(tmp_path: Path, dav: DavNginx) -> None:
    env = {"LIVECAM_WEBDAV_PASSWORD": ""}
    result = run_cli("check", "-c", str(dav_config(tmp_path, dav)), env=env)
    assert result.returncode == 1
    assert "no WebDAV password" in result.stdout and "LIVECAM_WEBDAV_PASSWORD" in result.stdout


def test_check_explains_a_read_only_collection(tmp_path: Path, dav: DavNginx) -> None:
    line = check_fails(tmp_path, dav, "readonly/")
    assert "HTTP 403" in line and "permission denied" in line


def test_check_explains_connection_refused(tmp_path: Path, dav: DavNginx) -> None:
    dav.stop()
    line = check_fails(tmp_path, dav)
    assert "connection refused" in line


def test_check_explains_an_untrusted_certificate(tmp_path: Path, dav: DavNginx) -> None:
    import socket
    import ssl
    import subprocess
    import threading

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert), "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(3):
            conn, _ = listener.accept()
            try:
                ctx.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    body = camera_toml() + toml_table(
        "target", {"kind": "webdav", "url": f"https://127.0.0.1:{port}/dav/", "user": "cam"}
    )
    result = run_cli("check", "-c", str(write_config(tmp_path, body)))
    listener.close()
    assert result.returncode == 1
    assert "certificate" in result.stdout and "target.ca_file" in result.stdout


def test_secrets_never_go_in_the_config(tmp_path: Path) -> None:
    body = camera_toml() + toml_table(
        "target", {"kind": "webdav", "url": "https://h/", "user": "u", "password": "x"}
    )
    result = run_cli("check", "-c", str(write_config(tmp_path, body)))
    assert result.returncode == 2
    assert "target.password: secrets never go in the config" in result.stdout


def test_a_lost_collection_is_made_again_with_the_page(
    dav: DavNginx, dav_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    pub = publisher(target_for(dav))
    pub.start()
    pub.publish_next()
    shutil.rmtree(dav_root / "cam")
    with caplog.at_level(logging.WARNING):
        pub.publish_next()
    pub.close()
    assert set(PAGE) <= {p.name for p in (dav_root / "cam").iterdir()}
    assert json.loads((dav_root / "cam" / "live.json").read_bytes())["seq"] == 2
    assert any("recreated it" in r.getMessage() for r in caplog.records)
    with Image.open(dav_root / "cam" / "live.jpeg") as im:
        im.load()


@pytest.mark.parametrize("kind", ["sftp", "webdav"])
def test_cost_shows_bandwidth_not_request_fees(tmp_path: Path, kind: str) -> None:
    table = (
        {"kind": "sftp", "host": "example.org", "user": "cam", "path": "www"}
        if kind == "sftp"
        else {"kind": "webdav", "url": "https://example.org/dav/", "user": "cam"}
    )
    body = camera_toml(interval=2.0) + toml_table("target", table)
    result = run_cli("cost", "-c", str(write_config(tmp_path, body)), "--viewers", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "no per-request fee" in out and "GB/month" in out and "for 2 viewer(s)" in out
    assert "AWS S3" not in out
    # 640x360 test camera every 2 s: one month of frames at 0.15 bytes per pixel.
    frames = 30 * 24 * 3600 / 2
    pixels = 640 * 360 + 640 * 360 + 320 * 180  # live.jpeg, 800x600 and 320x240 boxes
    upload = frames * (pixels * 0.15 + 600) / 1e9
    assert f"upload from the camera: ~{upload:,.1f} GB/month" in out


def test_a_full_disk_on_the_server_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import tempfile

    from .test_faults import small_tmpfs

    root = Path(tempfile.mkdtemp(prefix="livecam-davfull-"))
    with small_tmpfs(root, "200k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        root.chmod(0o777)
        (root / "filler").write_bytes(b"\0" * 150_000)
        monkeypatch.setenv("LIVECAM_WEBDAV_PASSWORD", DAV_PASSWORD)
        server = DavNginx(root).start()
        try:
            target = target_for(server, "")
            target.start()
            with pytest.raises(Exception, match="full disk") as e:
                target.write("big.jpeg", b"\xff" * 120_000)
            target.close()
        finally:
            server.close()
        assert "PUT /.livecam-big.jpeg.tmp" in str(e.value)
        assert not (root / "big.jpeg").exists()
    shutil.rmtree(root, ignore_errors=True)
