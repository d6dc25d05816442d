"""Security: secrets never leak, the demo server stays in its directory and on loopback,
keys cannot escape, text stays text, and no input makes a traceback (hypothesis)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecam import config, manifest
from livecam.errors import ConfigError
from livecam.manifest import ImageEntry

from .conftest import (
    PUBLISHER,
    ROOT,
    S3_ENV,
    MotoServer,
    fetch,
    free_port,
    no_aws_env,
    run_cli,
    wait_for_port,
    write_config,
)

SECRET = "livecam-FAKE-secret-0f9e8d7c6b5a"
KEY_ID = "AKIALIVECAMFAKEKEY77"


def secret_config(tmp_path: Path, endpoint: str, bucket: str, mode: int = 0o600) -> Path:
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 320
        height = 240
        interval = 0.2
        [target]
        kind = "s3"
        bucket = "{bucket}"
        endpoint_url = "{endpoint}"
        region = "us-east-1"
        access_key_id = "{KEY_ID}"
        secret_access_key = "{SECRET}"
        connect_timeout = 1
        max_attempts = 1
        """,
    )
    path.chmod(mode)
    return path


def test_secrets_never_reach_output_or_objects(
    tmp_path: Path, moto_server: MotoServer, bucket: str
) -> None:
    outputs = []
    path = secret_config(tmp_path, moto_server.url, bucket)
    for args in (["once", "--verbose"], ["check", "--verbose"]):
        r = run_cli(*args, "-c", str(path), base_env=no_aws_env())
        assert r.returncode == 0, r.stdout + r.stderr
        outputs.append(r.stdout + r.stderr)
    # Failing paths: a missing bucket and an unreachable endpoint, at --verbose.
    for endpoint, name in (
        (moto_server.url, "no-such-bucket"),
        (f"http://127.0.0.1:{free_port()}", "cam"),
    ):
        bad = secret_config(tmp_path, endpoint, name)
        for args in (["once", "--verbose"], ["check", "--verbose"]):
            r = run_cli(*args, "-c", str(bad), base_env=no_aws_env())
            assert r.returncode == 1
            outputs.append(r.stdout + r.stderr)
    # A running service at --verbose for a moment.
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "--verbose", "-c", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=no_aws_env(),
    )
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    outputs.append(out + err)
    for text in outputs:
        assert SECRET not in text
        assert "Traceback" not in text
    assert any("published frame" in t for t in outputs)  # --verbose did log frames
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server.url)
    for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        assert SECRET.encode() not in body and KEY_ID.encode() not in body, obj["Key"]


URL_PASSWORD = "livecam-FAKE-url-pass-91c2"


def test_url_credentials_never_reach_output(
    tmp_path: Path, moto_server: MotoServer, bucket: str
) -> None:
    """A user and password inside endpoint_url are scrubbed as the key id and secret are:
    from a working endpoint, a refused one, a running service and a config error."""
    with_password = f"http://livecam:{URL_PASSWORD}@"
    (tmp_path / "working").mkdir()
    (tmp_path / "refused").mkdir()
    working = secret_config(
        tmp_path / "working", moto_server.url.replace("http://", with_password), bucket
    )
    refused = secret_config(tmp_path / "refused", f"{with_password}127.0.0.1:{free_port()}", "cam")
    outputs = []
    for path, code in ((working, 0), (refused, 1)):
        for args in (["once", "--verbose"], ["check", "--verbose"]):
            r = run_cli(*args, "-c", str(path), base_env=no_aws_env())
            assert r.returncode == code, r.stdout + r.stderr
            outputs.append(r.stdout + r.stderr)
        proc = subprocess.Popen(
            [sys.executable, str(PUBLISHER), "run", "--verbose", "-c", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=no_aws_env(),
        )
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        outputs.append(out + err)
    bad = write_config(
        tmp_path,
        f'[target]\nkind = "s3"\nbucket = "cam"\nendpoint_url = "ftp://u:{URL_PASSWORD}@h"\n',
    )
    r = run_cli("check", "-c", str(bad))
    assert r.returncode == 2
    outputs.append(r.stdout + r.stderr)
    for text in outputs:
        assert URL_PASSWORD not in text
        assert "Traceback" not in text
    # Still says where: the host, with the credentials replaced.
    assert any("http://***@127.0.0.1:" in t for t in outputs[:3])  # describe() at moto
    assert any("cannot reach the S3 endpoint (http://***@127.0.0.1:" in t for t in outputs[3:6])
    assert 'got "ftp://***@h"' in outputs[-1]


def test_a_config_with_secrets_readable_by_others_warns(tmp_path: Path) -> None:
    path = secret_config(tmp_path, "http://127.0.0.1:9", "cam", mode=0o644)
    r = run_cli("cost", "-c", str(path))
    assert r.returncode == 0
    assert re.search(r"WARNING .*readable by other users \(mode 644\); run: chmod 600", r.stderr)
    assert SECRET not in r.stderr + r.stdout
    path.chmod(0o600)
    assert "readable by other users" not in run_cli("cost", "-c", str(path)).stderr


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hex_port = local.split(":")
                if int(hex_port, 16) == port and state == "0A":
                    if len(addr) == 8:
                        found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                    else:
                        found.add(addr)
    return found


def test_demo_listens_on_loopback_only_by_default() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_port(port)
        assert listening_addresses(port) == {"127.0.0.1"}
        status, headers, _body = fetch(f"http://127.0.0.1:{port}/")
        assert status == 200
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_demo_dir_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """`demo --dir` overwrites index.html and serves all of DIR: a user's own non-empty
    directory is refused in one line (exit 2) and left alone; a new or empty one
    becomes a demo directory, which a later demo reuses."""
    mine = tmp_path / "mysite"
    mine.mkdir()
    (mine / "index.html").write_text("my home page")
    (mine / "notes.txt").write_text("private")
    for target in (mine, mine / "notes.txt"):
        result = run_cli("demo", "--dir", str(target), "--port", str(free_port()), timeout=20)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(target) in lines[0], result.stderr
        assert "not empty" in lines[0] or "Not a directory" in lines[0], lines[0]
    assert (mine / "index.html").read_text() == "my home page"
    assert sorted(p.name for p in mine.iterdir()) == ["index.html", "notes.txt"]

    ours = tmp_path / "demo"
    ours.mkdir()
    for _ in range(2):  # empty, then a previous demo's
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(PUBLISHER), "demo", "--dir", str(ours), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for_port(port)
            status, _, body = fetch(f"http://127.0.0.1:{port}/")
            assert status == 200 and b'id="live"' in body
            assert fetch(f"http://127.0.0.1:{port}/.livecam-demo")[0] == 404
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        assert (ours / ".livecam-demo").is_file() and (ours / "live.json").is_file()


def test_demo_server_refuses_every_escape(tmp_path: Path) -> None:
    from livecam import httpserver

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("home")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "sub" / "up").symlink_to(tmp_path)
    server = httpserver.serve(root, "127.0.0.1", 0)
    try:
        for path in (
            "linkdir/secret.txt",
            "sub/up/outside/secret.txt",
            "%2e%2e/outside/secret.txt",
            "%252e%252e/outside/secret.txt",
            "sub/%2e%2e/%2e%2e/outside/secret.txt",
            "..%5coutside%5csecret.txt",
            "sub/",
            "linkdir/",
            "%c0%ae%c0%ae/outside/secret.txt",
        ):
            status, _, body = fetch(server.url + path)
            assert status == 404, path
            assert b"top secret" not in body
        for method in ("PUT", "POST", "DELETE"):
            import urllib.request

            req = urllib.request.Request(server.url + "index.html", data=b"x", method=method)
            try:
                urllib.request.urlopen(req, timeout=5)
                raise AssertionError(f"{method} accepted")
            except urllib.error.HTTPError as e:
                assert e.code == 405
        assert (root / "index.html").read_text() == "home"
    finally:
        server.shutdown()
        server.server_close()


def test_page_scripts_never_write_html() -> None:
    for js in (ROOT / "site").glob("*.js"):
        text = js.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert banned not in text, (js.name, banned)


def test_nginx_security_headers_are_documented() -> None:
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "reliability.md").read_text()
    assert "Content-Security-Policy" in docs and "X-Content-Type-Options" in docs


# --- keys cannot escape -------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["../", "a/../b/", "/abs/", "a//b/", "./", "a/./b/", "a\\b/", "a\x00b/", "a\nb/", "..", "a/.."],
)
def test_hostile_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"^target\.prefix: must be a relative key prefix"):
        config.parse({"target": {"kind": "s3", "bucket": "cam", "prefix": prefix}})


@pytest.mark.parametrize(
    "name",
    [
        "../live.jpeg",
        "a/live.jpeg",
        "/live.jpeg",
        ".live.jpeg",
        "live.json",
        "live.jpeg\n",
        "li\x00ve.jpeg",
        "live..jpeg",
        "index.html",
        "live.jpeg.exe",
        "x" * 200 + ".jpeg",
    ],
)
def test_hostile_variant_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^variants\[0\]\.name: must be a plain file name"):
        config.parse({"variants": [{"name": name}], "target": {"path": "/x"}})


@settings(max_examples=300, deadline=None)
@given(prefix=st.text(max_size=40), name=st.text(max_size=40))
def test_any_accepted_key_stays_under_its_prefix(prefix: str, name: str) -> None:
    try:
        cfg = config.parse(
            {
                "variants": [{"name": name}],
                "target": {"kind": "s3", "bucket": "cam", "prefix": prefix},
            }
        )
    except ConfigError:
        return
    key = cfg.target.prefix + cfg.variants[0].name
    assert key.startswith(cfg.target.prefix)
    assert not key.startswith("/") and "//" not in key and "\\" not in key
    assert all(part not in (".", "..") for part in key.split("/"))
    assert not any(ord(c) < 32 or ord(c) == 127 for c in key)
    assert "/" not in cfg.variants[0].name


# --- fuzz: config loading and manifest rendering -------------------------------------------

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.datetimes(),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
known_keys = st.sampled_from(
    [
        "source",
        "width",
        "height",
        "interval",
        "quality",
        "timeout",
        "rotation",
        "hflip",
        "controls",
        "command",
        "name",
        "every",
        "kind",
        "path",
        "bucket",
        "prefix",
        "endpoint_url",
        "cache_control",
        "skip_unchanged",
        "max_age",
        "title",
        "link",
        "stale_after",
        "lens_position",
        "autofocus",
        "exposure_time",
        "analogue_gain",
    ]
)
sections = st.fixed_dictionaries(
    {},
    optional={
        "camera": st.dictionaries(known_keys, toml_values, max_size=5),
        "variants": st.lists(st.dictionaries(known_keys, toml_values, max_size=4), max_size=3)
        | toml_values,
        "target": st.dictionaries(known_keys, toml_values, max_size=5)
        | st.just({"kind": "local", "path": "/tmp/x"}),
        "publish": st.dictionaries(known_keys, toml_values, max_size=3),
        "site": st.dictionaries(known_keys, toml_values, max_size=4),
        "extra": toml_values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=sections)
def test_fuzz_config_gives_a_config_or_one_clean_line(data: dict[str, Any]) -> None:
    try:
        cfg = config.parse(data)
    except ConfigError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message
        assert re.match(r"^[a-z_]+(\[\d+\])?(\.[^:]+)?: ", message), message
        return
    assert isinstance(cfg, config.Config)
    assert cfg.variants


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_toml_files_never_crash(text: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        config.load(f.name)
    except ConfigError as e:
        assert "\n" not in str(e)
    finally:
        os.unlink(f.name)


@settings(max_examples=300, deadline=None)
@given(title=st.text(max_size=80), caption=st.text(max_size=80), seq=st.integers(0, 2**40))
def test_fuzz_manifest_rendering_roundtrips(title: str, caption: str, seq: int) -> None:
    try:
        cfg = config.parse({"site": {"title": title, "caption": caption}, "target": {"path": "/x"}})
    except ConfigError:
        return
    body = manifest.build(
        seq,
        datetime(2026, 11, 21, tzinfo=UTC),
        2.0,
        {"live.jpeg": ImageEntry(640, 480, 1234, seq)},
        cfg.site,
    )
    m = json.loads(body)
    assert m["title"] == title and m.get("caption", "") == caption and m["seq"] == seq
    assert manifest.read_seq(body) == seq


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_reading_a_published_manifest_never_crashes(data: bytes) -> None:
    assert manifest.read_seq(data) >= 0


def test_secret_env_credentials_never_logged(tmp_path: Path) -> None:
    # boto3's own debug logging would print request headers; it stays off at --verbose.
    import logging

    from livecam.cli import setup_logging

    setup_logging(verbose=True)
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.WARNING
    assert S3_ENV["AWS_SECRET_ACCESS_KEY"]  # the fake secret the S3 tests grep for


@pytest.mark.parametrize("size", ["9152x9152", "100x20000", "8x8", "big"])
def test_demo_size_is_bounded_like_the_config(size: str) -> None:
    """`demo --size` takes what `camera.width`/`height` take: each side 16 to 9152 and at
    most 64 MP, so the demo cannot ask for a frame that exhausts memory."""
    result = run_cli("demo", "--size", size, "--port", str(free_port()), timeout=20)
    assert result.returncode == 2, result.stderr
    assert "--size" in result.stderr and size in result.stderr
