"""The SFTP target against a real OpenSSH sshd (internal-sftp) on loopback, and the
plain-rename fallback against an SFTP server that lacks posix-rename@openssh.com."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.loop import Publisher
from livecam.site import load as load_site
from livecam.targets.sftp import SFTPTarget

from .conftest import run_cli, write_config
from .remoteservers import PlainSftpServer, Sshd, sshd_fixture  # noqa: F401 - the fixture

PAGE = {f.name for f in load_site()}  # index.html, live.js, ...: whatever site/ holds


def camera_toml(interval: float = 1.0) -> str:
    return f"""
        [camera]
        source = "test"
        width = 640
        height = 360
        interval = {interval}
        """


def sftp_config(tmp_path: Path, server: Sshd, www: Path, **kw: Any) -> Path:
    return write_config(tmp_path, camera_toml() + "\n" + server.toml(www, **kw))


def target_for(server: Sshd, www: Path, **kw: Any) -> SFTPTarget:
    return SFTPTarget(config.parse({"target": server.target(www, **kw)}).target)


def publisher(target: SFTPTarget, interval: float = 0.2) -> Publisher:
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 180, "interval": interval},
            "target": {"kind": "local", "path": "/nonexistent"},  # the target is given
            "publish": {"status_interval": 0},
        }
    )
    camera = TestPatternCamera(320, 180)
    return Publisher(cfg, lambda: camera, target)


def intact(www: Path) -> int:
    m = json.loads((www / "live.json").read_bytes())
    for name, entry in m["images"].items():
        with Image.open(www / name) as im:
            im.load()
            assert im.size == (entry["width"], entry["height"])
    return int(m["seq"])


def temp_files(www: Path) -> list[str]:
    return sorted(p.name for p in www.rglob("*.tmp"))


def test_once_publishes_images_manifest_and_page(tmp_path: Path, sshd: Sshd) -> None:
    www = tmp_path / "www" / "cam"  # missing: made on the server
    result = run_cli("once", "-c", str(sftp_config(tmp_path, sshd, www)))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in www.iterdir()}
    assert names == {"live.jpeg", "live800x600.jpeg", "live320x240.jpeg", "live.json"} | PAGE
    assert intact(www) == 1
    assert oct((www / "live.jpeg").stat().st_mode & 0o777) == oct(0o644)
    assert temp_files(www) == []


def test_images_land_before_the_manifest_and_seq_resumes(tmp_path: Path, sshd: Sshd) -> None:
    www = tmp_path / "www"
    target = target_for(sshd, www)
    order: list[str] = []
    real = target._replace

    def replace(sftp: Any, temp: str, final: str) -> None:
        real(sftp, temp, final)
        order.append(final.rsplit("/", 1)[1])

    target._replace = replace  # type: ignore[method-assign]
    pub = publisher(target)
    pub.start()
    order.clear()
    pub.publish_next()
    pub.publish_next()
    assert order[-1] == "live.json" and order.count("live.json") == 2
    assert order.index("live.json") == 3  # three images, then the manifest
    pub.close()
    assert intact(www) == 2
    # A new process (a restart) carries on from the published seq.
    again = publisher(target_for(sshd, www))
    again.start()
    again.publish_next()
    again.close()
    assert intact(www) == 3


def test_stale_temp_files_are_removed_on_start(tmp_path: Path, sshd: Sshd) -> None:
    www = tmp_path / "www"
    www.mkdir()
    for name in (".livecam-live.jpeg.tmp", ".livecam-123-4.tmp"):
        (www / name).write_bytes(b"half a frame")
    (www / "keep.tmp").write_bytes(b"not ours")
    target = target_for(sshd, www)
    target.start()
    target.close()
    assert temp_files(www) == ["keep.tmp"]


def test_page_is_published_only_when_it_changed(tmp_path: Path, sshd: Sshd) -> None:
    www = tmp_path / "www"
    files = load_site()
    target = target_for(sshd, www)
    target.start()
    assert set(target.publish_site(files)) == PAGE
    assert target.publish_site(files) == []
    assert target.publish_site(files, verify=True) == []
    target.close()
    fresh = target_for(sshd, www)  # a restart: looks at what is there
    assert fresh.publish_site(files) == []
    (www / "style.css").write_text("/* edited on the server */")
    assert fresh.publish_site(files, verify=True) == ["style.css"]
    (www / "index.html").unlink()
    assert fresh.missing(["index.html", "live.js"]) == ["index.html"]
    assert fresh.publish_site(files, verify=True) == ["index.html"]
    fresh.close()


def test_check_passes_and_leaves_nothing(tmp_path: Path, sshd: Sshd) -> None:
    www = tmp_path / "www"
    result = run_cli("check", "-c", str(sftp_config(tmp_path, sshd, www)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   connect" in result.stdout
    assert "atomic replace (posix-rename@openssh.com)" in result.stdout
    assert result.stdout.splitlines()[-1] == "all checks passed"
    assert list(www.iterdir()) == []


def check_fails(tmp_path: Path, sshd: Sshd, www: Path, **kw: Any) -> str:
    result = run_cli("check", "-c", str(sftp_config(tmp_path, sshd, www, **kw)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "some checks failed"
    fails = [ln for ln in result.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 1, result.stdout
    return fails[0]


def test_check_explains_an_unknown_host_key(tmp_path: Path, sshd: Sshd) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    line = check_fails(tmp_path, sshd, tmp_path / "www", known_hosts=str(empty))
    pub = Path(f"{sshd.host_key}.pub").read_text().split()
    fp = subprocess.run(
        ["ssh-keygen", "-lf", f"{sshd.host_key}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert f"is not in {empty}" in line
    assert fp in line  # the fingerprint, as ssh-keygen -l prints it
    assert f"[127.0.0.1]:{sshd.port} {pub[0]} {pub[1]}" in line  # the line to add
    assert empty.read_text() == ""  # never added by us


def test_check_explains_a_changed_host_key(tmp_path: Path, sshd: Sshd) -> None:
    wrong = tmp_path / "known_hosts"
    other = Path(f"{sshd.other_key}.pub").read_text().split()
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    line = check_fails(tmp_path, sshd, tmp_path / "www", known_hosts=str(wrong))
    assert "CHANGED" in line and "intercepting" in line
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in line


def test_check_explains_a_key_the_server_refuses(tmp_path: Path, sshd: Sshd) -> None:
    line = check_fails(tmp_path, sshd, tmp_path / "www", key_file=str(sshd.other_key))
    assert "authentication failed" in line and "authorized_keys" in line
    assert str(sshd.other_key) in line


def test_check_explains_a_read_only_directory(tmp_path: Path) -> None:
    server = Sshd(sftp_flags="-R").start()  # internal-sftp refuses every write
    try:
        www = tmp_path / "www"
        www.mkdir()
        line = check_fails(tmp_path, server, www)
    finally:
        server.close()
    assert line.startswith(f"FAIL write {www}/")
    assert "permission denied" in line


def test_check_explains_a_directory_it_cannot_create(tmp_path: Path, sshd: Sshd) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = check_fails(tmp_path, sshd, blocker / "www")
    assert line.startswith(f"FAIL directory {blocker}/www")
    assert "not a directory" in line or "cannot create" in line


def test_check_explains_connection_refused(tmp_path: Path, sshd: Sshd) -> None:
    sshd.stop()
    line = check_fails(tmp_path, sshd, tmp_path / "www")
    assert "connection refused" in line


def test_disk_full_on_the_server_is_explained(tmp_path: Path, sshd: Sshd) -> None:
    from .test_faults import small_tmpfs

    www = tmp_path / "www"
    with small_tmpfs(www, "200k") as mounted:
        if not mounted:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        (www / "filler").write_bytes(b"\0" * 150_000)
        target = target_for(sshd, www)
        target.start()
        with pytest.raises(Exception, match="disk full") as e:
            target.write("big.jpeg", b"\xff" * 120_000)
        target.close()
        assert "big.jpeg" in str(e.value)
        assert temp_files(www) == []


def test_the_plain_rename_fallback(
    tmp_path: Path, sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    """A server without posix-rename@openssh.com: each file is replaced by remove +
    rename, said once in the log."""
    import livecam.targets.sftp as sftp_mod

    server = PlainSftpServer(sshd.user_key)
    sftp_mod._fallback_logged = False
    try:
        www = tmp_path / "www"
        table = sshd.target(www, port=server.port, known_hosts=str(server.known_hosts))
        target = SFTPTarget(config.parse({"target": table}).target)
        pub = publisher(target)
        with caplog.at_level(logging.WARNING):
            pub.start()
            for _ in range(3):
                pub.publish_next()
        pub.close()
    finally:
        server.close()
    assert intact(www) == 3
    assert temp_files(www) == []
    assert server.renames >= 3 * 4 + 6
    said = [r.getMessage() for r in caplog.records if "posix-rename" in r.getMessage()]
    assert len(said) == 1, said
    assert "remove + rename" in said[0] and "briefly miss" in said[0]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"kind": "sftp", "user": "u", "path": "www"},
            'target.host: is required when kind = "sftp"',
        ),
        ({"kind": "sftp", "host": "h", "user": "u"}, 'target.path: is required when kind = "sftp"'),
        (
            {"kind": "sftp", "host": "h", "user": "u", "path": "../www"},
            "target.path: must be a directory on the server",
        ),
        (
            {"kind": "sftp", "host": "h", "user": "u", "path": "w", "port": 0},
            "target.port: must be an integer from 1 to 65535, got 0",
        ),
        (
            {"kind": "sftp", "host": "h", "user": "u", "path": "w", "bucket": "b"},
            'target.bucket: only applies with kind = "s3" (kind is "sftp")',
        ),
        (
            {"kind": "sftp", "host": "h", "user": "u", "path": "w", "url": "https://h/"},
            'target.url: only applies with kind = "webdav" (kind is "sftp")',
        ),
        (
            {"kind": "local", "path": "/tmp/x", "host": "h"},
            'target.host: only applies with kind = "sftp" (kind is "local")',
        ),
        (
            {"kind": "webdav", "url": "https://u:pw@h/dav/", "user": "u"},
            "target.url: must not hold a user or password",
        ),
        (
            {"kind": "webdav", "url": "ftp://h/", "user": "u"},
            "target.url: must be an http:// or https:// URL",
        ),
        (
            {"kind": "sftp", "host": "h", "user": "u", "path": "w", "passphrase": "x"},
            "target.passphrase: secrets never go in the config",
        ),
    ],
)
def test_remote_target_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        config.parse({"target": table})
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value) and "pw@" not in str(e.value)


def test_remote_target_config_defaults() -> None:
    t = config.parse(
        {"target": {"kind": "sftp", "host": "h", "user": "u", "path": "~/www/"}}
    ).target
    assert (t.port, t.path, t.key_file, t.known_hosts) == (22, "www", None, None)
    w = config.parse({"target": {"kind": "webdav", "url": "https://h/dav", "user": "u"}}).target
    assert (w.url, w.password_file, w.ca_file) == ("https://h/dav", None, None)


def test_check_explains_a_key_with_a_passphrase(tmp_path: Path, sshd: Sshd) -> None:
    key = tmp_path / "locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(key)], check=True
    )
    line = check_fails(tmp_path, sshd, tmp_path / "www", key_file=str(key))
    assert "protected by a passphrase" in line and "ssh-agent" in line


def test_check_explains_a_missing_known_hosts_file(tmp_path: Path, sshd: Sshd) -> None:
    missing = tmp_path / "no" / "known_hosts"
    line = check_fails(tmp_path, sshd, tmp_path / "www", known_hosts=str(missing))
    assert f"is not in {missing}" in line and "add this line" in line
    assert not missing.exists()
