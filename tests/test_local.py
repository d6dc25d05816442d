"""The local target end to end, as a user runs it: `once`, `run`, `check`, nginx."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from livecam.targets.local import filesystem

from .conftest import PUBLISHER, ROOT, fetch, run_cli, write_config


def local_config(tmp_path: Path, target: Path, interval: float = 1.0, extra: str = "") -> Path:
    return write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 1280
        height = 720
        interval = {interval}

        [[variants]]
        name = "live.jpeg"
        quality = 80

        [[variants]]
        name = "live800x600.jpeg"
        width = 800
        height = 600

        [[variants]]
        name = "thumb.jpg"
        width = 200

        [target]
        kind = "local"
        path = "{target}"

        [site]
        title = "Roof cam"
        {extra}
        """,
    )


def test_once_writes_every_variant_and_the_manifest(tmp_path: Path) -> None:
    target = tmp_path / "www"
    result = run_cli("once", "-c", str(local_config(tmp_path, target)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("published frame 1: live.jpeg 1280x720")
    m = json.loads((target / "live.json").read_text())
    assert m["seq"] == 1
    assert m["interval"] == 1.0
    assert m["title"] == "Roof cam"
    assert m["captured_at"].endswith("Z") and len(m["captured_at"]) == 24
    expected = {"live.jpeg": (1280, 720), "live800x600.jpeg": (800, 450), "thumb.jpg": (200, 113)}
    assert {k: (v["width"], v["height"]) for k, v in m["images"].items()} == expected
    for name, entry in m["images"].items():
        data = (target / name).read_bytes()
        assert entry["bytes"] == len(data)
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.format == "JPEG" and im.size == expected[name]
    for page in ("index.html", "embed.html", "live.js", "live-embed.js", "style.css"):
        assert (target / page).is_file()
    # Served files are readable by the web server's user, not 0600 temp files.
    assert (target / "live.jpeg").stat().st_mode & 0o044 == 0o044
    assert not [p for p in target.iterdir() if p.name.startswith(".")]


def test_page_files_are_copied_only_when_changed(tmp_path: Path) -> None:
    target = tmp_path / "www"
    cfg = local_config(tmp_path, target)
    assert run_cli("once", "-c", str(cfg)).returncode == 0
    before = (target / "index.html").stat().st_mtime_ns
    time.sleep(0.05)
    assert run_cli("once", "-c", str(cfg)).returncode == 0
    assert (target / "index.html").stat().st_mtime_ns == before
    (target / "live.js").write_text("tampered")
    assert run_cli("once", "-c", str(cfg)).returncode == 0
    assert (target / "live.js").read_bytes() == (ROOT / "site" / "live.js").read_bytes()


def test_leftover_temp_files_are_removed_on_start(tmp_path: Path) -> None:
    target = tmp_path / "www"
    target.mkdir()
    leftover = target / ".livecam-12345-7.tmp"
    leftover.write_bytes(b"half a jpeg")
    result = run_cli("once", "-c", str(local_config(tmp_path, target)))
    assert result.returncode == 0
    assert not leftover.exists()
    assert "removed 1 temp file(s)" in result.stderr


def test_sigterm_stops_within_a_second_with_exit_0(tmp_path: Path) -> None:
    target = tmp_path / "www"
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(local_config(tmp_path, target, 0.5))],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (target / "live.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.7)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert code == 0
    assert took < 1.5, took
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]
    err = proc.stderr.read() if proc.stderr else ""
    assert "received SIGTERM, stopping" in err
    assert "Traceback" not in err


def test_check_reports_each_step(tmp_path: Path) -> None:
    target = tmp_path / "www"
    result = run_cli("check", "-c", str(local_config(tmp_path, target)))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok   config ")
    assert any(line.startswith("ok   camera open: test pattern 1280x720") for line in lines)
    assert any(line.startswith("ok   write .livecam-probe-") for line in lines)
    assert any(line.startswith("ok   delete .livecam-probe-") for line in lines)
    assert lines[-1] == "all checks passed"
    assert not list(target.glob(".livecam-*"))


def test_check_says_which_file_system_the_directory_is_on(tmp_path: Path) -> None:
    """On tmpfs, fine; on a disk, a line of advice for a Pi's SD card."""
    for target in (tmp_path / "www", Path("/dev/shm") / f"livecam-check-{os.getpid()}"):
        fs = filesystem(target.parent)
        if fs is None:
            pytest.skip("no mount table here")
        try:
            result = run_cli("check", "-c", str(local_config(tmp_path, target)))
        finally:
            shutil.rmtree(target, ignore_errors=True)
        assert result.returncode == 0, result.stdout + result.stderr
        (line,) = [x for x in result.stdout.splitlines() if x.startswith("ok   directory ")]
        assert f"exists, on {fs}" in line
        assert ("SD card" in line) == (fs not in ("tmpfs", "ramfs")), line


def test_the_file_system_comes_from_the_longest_mount_point() -> None:
    mounts = (
        "/dev/root / ext4 rw,noatime 0 0\n"
        "tmpfs /run tmpfs rw,nosuid 0 0\n"
        "tmpfs /var/www/live\\040cam tmpfs rw 0 0\n"
        "/dev/sda1 /var/www ext4 rw 0 0\n"
        "broken line\n"
    )
    assert filesystem("/run/livecam", mounts) == "tmpfs"
    assert filesystem("/running", mounts) == "ext4"  # not under /run
    assert filesystem("/var/www/live cam/x", mounts) == "tmpfs"
    assert filesystem("/var/www/live", mounts) == "ext4"
    assert filesystem("/home/pi", mounts) == "ext4"
    assert filesystem("/x", "") is None


def test_check_fails_on_an_unwritable_target(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli("check", "-c", str(local_config(tmp_path, blocker / "www")))
    assert result.returncode == 1
    assert "FAIL directory" in result.stdout
    assert result.stdout.splitlines()[-1] == "some checks failed"


def test_concurrent_readers_through_nginx_never_see_a_torn_frame(
    tmp_path: Path, served_dir: Path, nginx
) -> None:
    """8 readers fetch the manifest and every image it names through a real nginx while
    the publisher runs at interval = 0 for 10 s."""
    base = nginx(served_dir)
    cfg = local_config(tmp_path, served_dir, interval=0.0)
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(cfg)],
        stderr=subprocess.DEVNULL,
    )
    stats = {"manifests": 0, "images": 0, "bad": []}  # type: ignore[var-annotated]
    lock = threading.Lock()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            status, _, body = fetch(base + "live.json")
            if status == 404:
                time.sleep(0.01)
                continue
            try:
                m = json.loads(body)
            except ValueError as e:
                with lock:
                    stats["bad"].append(f"manifest does not parse: {e}")
                continue
            for name, entry in m["images"].items():
                status, headers, data = fetch(f"{base}{name}?v={entry['seq']}")
                problem = None
                if status != 200:
                    problem = f"{name}: HTTP {status}"
                else:
                    try:
                        with Image.open(io.BytesIO(data)) as im:
                            im.load()
                            if im.size != (entry["width"], entry["height"]):
                                problem = f"{name}: {im.size} != manifest"
                    except Exception as e:
                        problem = f"{name}: undecodable ({e})"
                    if headers.get("Cache-Control") != "no-cache":
                        problem = f"{name}: Cache-Control {headers.get('Cache-Control')}"
                with lock:
                    stats["images"] += 1
                    if problem:
                        stats["bad"].append(problem)
            with lock:
                stats["manifests"] += 1

    threads = [threading.Thread(target=reader) for _ in range(8)]
    try:
        deadline = time.monotonic() + 20
        while not (served_dir / "live.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        for t in threads:
            t.start()
        time.sleep(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    frames = json.loads((served_dir / "live.json").read_text())["seq"]
    assert code == 0
    assert stats["bad"] == []
    assert stats["manifests"] > 100 and stats["images"] > 300, stats
    assert frames > 20
    print(
        f"{frames} frames published; {stats['manifests']} manifests, "
        f"{stats['images']} images read, 0 torn"
    )


def test_demo_server_refuses_traversal_and_symlinks_out(tmp_path: Path) -> None:
    from livecam import httpserver

    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_text("hello")
    (root / ".livecam-1-1.tmp").write_text("temp")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (root / "leak.txt").symlink_to(secret)
    (root / "inside.txt").symlink_to(root / "index.html")
    server = httpserver.serve(root, "127.0.0.1", 0)
    base = server.url
    try:
        assert fetch(base)[2] == b"hello"
        assert fetch(base + "inside.txt")[0] == 200
        for path in (
            "leak.txt",
            "../secret.txt",
            "%2e%2e/secret.txt",
            "%2E%2E%2Fsecret.txt",
            "..%2fsecret.txt",
            "a/..%2f..%2fsecret.txt",
            ".livecam-1-1.tmp",
            "%00",
            "..\\secret.txt",
        ):
            req = urllib.request.Request(base + path)
            status, _, body = fetch(req.full_url)
            assert status == 404, path
            assert b"top secret" not in body
        status, headers, _ = fetch(base + "index.html")
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        etag = headers["ETag"]
        req = urllib.request.Request(base + "index.html", headers={"If-None-Match": etag})
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("expected 304")
        except urllib.error.HTTPError as e:
            assert e.code == 304
    finally:
        server.shutdown()
        server.server_close()


def test_demo_binds_loopback_by_default() -> None:
    from livecam.cli import build_parser

    args = build_parser().parse_args(["demo"])
    assert args.bind == "127.0.0.1" and args.port == 8000
