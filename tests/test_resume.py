"""`seq` after a restart: it continues from the published manifest, also when the
target could not be read at start (a Pi that boots before its WiFi)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from livecam import config
from livecam.camera.testpattern import TestPatternCamera
from livecam.errors import PublishError
from livecam.loop import Publisher
from livecam.targets.local import LocalTarget
from livecam.targets.s3 import S3Target

from .conftest import MotoServer
from .faultproxy import Fault, FaultProxy


def s3_cfg(endpoint: str, bucket: str) -> config.Config:
    return config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240, "interval": 0.2},
            "target": {
                "kind": "s3",
                "bucket": bucket,
                "prefix": "cam/",
                "endpoint_url": endpoint,
                "region": "us-east-1",
                "max_attempts": 1,
                "connect_timeout": 1.0,
                "read_timeout": 1.0,
            },
            "publish": {"status_interval": 0},
        }
    )


def publisher(cfg: config.Config) -> Publisher:
    camera = TestPatternCamera(320, 240)
    return Publisher(cfg, lambda: camera, S3Target(cfg.target), site_files=lambda: [])


def test_seq_continues_after_a_start_with_the_endpoint_unreachable(
    moto_server: MotoServer, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = FaultProxy(moto_server.port)
    cfg = s3_cfg(proxy.url, bucket)
    try:
        first = publisher(cfg)
        first.start()
        for _ in range(3):
            first.publish_next()
        first.close()
        # The proxy logs a request just after answering it.
        deadline = time.monotonic() + 5
        while len(proxy.log.manifests) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        published = len(proxy.log.manifests)
        assert published == 3

        # The restart: every connection dropped until the network comes up.
        proxy.rule = lambda method, path: Fault(drop=True)
        second = publisher(cfg)
        stop = threading.Event()
        thread = threading.Thread(target=second.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(2.0)
        assert len(proxy.log.manifests) == published  # nothing published meanwhile
        proxy.rule = lambda method, path: None
        deadline = time.monotonic() + 15
        while (second.seq < 6 or len(proxy.log.manifests) < 6) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join(10)
        second.close()
    finally:
        proxy.close()
    seqs = [json.loads(body)["seq"] for _, body in proxy.log.manifests]
    assert seqs[:3] == [1, 2, 3]
    assert seqs[3:6] == [4, 5, 6], seqs
    assert any("cannot read the manifest" in r.getMessage() for r in caplog.records)


def test_once_refuses_to_guess_seq_when_the_target_cannot_be_read(
    moto_server: MotoServer, bucket: str
) -> None:
    proxy = FaultProxy(moto_server.port, lambda method, path: Fault(status=403, code="X"))
    pub = publisher(s3_cfg(proxy.url, bucket))
    try:
        with pytest.raises(PublishError, match="cannot read the manifest: access denied"):
            pub.start()
        with pytest.raises(PublishError, match="cannot read the manifest"):
            pub.publish_next()
    finally:
        pub.close()
        proxy.close()
    assert not proxy.log.manifests


def local_publisher(path: Path) -> Publisher:
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240},
            "target": {"kind": "local", "path": str(path)},
        }
    )
    return Publisher(
        cfg, lambda: TestPatternCamera(320, 240), LocalTarget(path), site_files=lambda: []
    )


def test_a_local_manifest_that_cannot_be_read_is_not_a_fresh_start(tmp_path: Path) -> None:
    (tmp_path / "live.json").mkdir()  # there, but not readable as a file
    pub = local_publisher(tmp_path)
    with pytest.raises(PublishError, match=r"cannot read .*live\.json"):
        pub.start()
    with pytest.raises(PublishError):
        pub.publish_next()
    (tmp_path / "live.json").rmdir()
    (tmp_path / "live.json").write_text('{"seq": 41}')
    assert pub.publish_next().seq == 42
    pub.close()


def test_a_garbled_local_manifest_starts_afresh_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Never written by livecam (its writes are atomic): waiting would never mend it.
    (tmp_path / "live.json").write_bytes(b"\x00\x00garbage")
    pub = local_publisher(tmp_path)
    with caplog.at_level(logging.WARNING):
        pub.start()
    assert pub.publish_next().seq == 1
    pub.close()
    assert any("is not a manifest; seq starts at 1" in r.getMessage() for r in caplog.records)
