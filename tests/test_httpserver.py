"""The demo server's headers for the page: content ETag on live.json, CSP on documents."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from livecam import httpserver

from .conftest import fetch


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    server = httpserver.serve(tmp_path, "127.0.0.1", 0)
    yield tmp_path, server.url
    server.shutdown()
    server.server_close()


def get(url: str, etag: str) -> int:
    req = urllib.request.Request(url, headers={"If-None-Match": etag})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_live_json_etag_is_the_md5_of_its_bytes(demo: tuple[Path, str]) -> None:
    root, base = demo
    (root / "live.json").write_bytes(b'{"seq":1}')
    status, headers, body = fetch(base + "live.json")
    assert (status, body) == (200, b'{"seq":1}')
    etag = headers["ETag"]
    md5 = hashlib.md5(b'{"seq":1}', usedforsecurity=False).hexdigest()
    assert etag == f'"{md5}"'
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Expose-Headers"] == "Date, ETag"
    assert "Content-Security-Policy" not in headers  # not a document: bytes saved per poll
    assert get(base + "live.json", etag) == 304
    assert get(base + "live.json", f'"x", W/{etag}') == 304
    # Same size, same second: still a different ETag, still a 200.
    (root / "live.json").write_bytes(b'{"seq":2}')
    assert get(base + "live.json", etag) == 200


def test_other_files_keep_the_nanosecond_etag_and_documents_get_the_csp(
    demo: tuple[Path, str],
) -> None:
    root, base = demo
    (root / "index.html").write_text("<!DOCTYPE html>")
    (root / "live.jpeg").write_bytes(b"\xff\xd8")
    _, headers, _ = fetch(base + "live.jpeg")
    assert "-" in headers["ETag"] and "Content-Security-Policy" not in headers
    _, headers, _ = fetch(base)
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("header", "matches"),
    [('"a"', True), ('W/"a"', True), ('"b", "a"', True), ("*", True), ('"b"', False), ("", False)],
)
def test_etag_matches(header: str, matches: bool) -> None:
    assert httpserver.etag_matches(header, '"a"') is matches
