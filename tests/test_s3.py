"""The S3 target against a real HTTP S3 endpoint (moto server mode) with real boto3."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from livecam import config, cost
from livecam.camera.base import Camera, Frame
from livecam.camera.testpattern import TestPatternCamera
from livecam.errors import PublishError
from livecam.loop import Publisher
from livecam.site import load as load_site
from livecam.targets.s3 import S3Target

from .conftest import (
    PUBLISHER,
    S3_ENV,
    MotoServer,
    free_port,
    no_aws_env,
    run_cli,
    s3_client,
    wait_for_port,
    write_config,
)
from .faultproxy import Fault, FaultProxy


def s3_toml(
    endpoint: str,
    bucket: str,
    prefix: str = "cam1/",
    interval: float = 1.0,
    extra: str = "",
    target_extra: str = "",
) -> str:
    return f"""
        [camera]
        source = "test"
        width = 640
        height = 360
        interval = {interval}

        [target]
        kind = "s3"
        bucket = "{bucket}"
        prefix = "{prefix}"
        endpoint_url = "{endpoint}"
        region = "us-east-1"
        {target_extra}

        [site]
        title = "S3 cam"
        {extra}
        """


def target_for(endpoint: str, bucket: str, prefix: str = "cam1/", **kw: Any) -> S3Target:
    cfg = config.parse(
        {
            "target": {
                "kind": "s3",
                "bucket": bucket,
                "prefix": prefix,
                "endpoint_url": endpoint,
                "region": "us-east-1",
                **kw,
            }
        }
    )
    return S3Target(cfg.target)


def record_puts(target: S3Target) -> list[str]:
    """The keys of successful PutObject calls, in order, via botocore's event hooks."""
    keys: list[str] = []

    def after(http_response: Any, parsed: Any, model: Any, context: Any, **kw: Any) -> None:
        if http_response.status_code == 200:
            keys.append(context["livecam_key"])

    def before(params: Any, context: Any, **kw: Any) -> None:
        context["livecam_key"] = params["Key"]

    target.client.meta.events.register("before-parameter-build.s3.PutObject", before)
    target.client.meta.events.register("after-call.s3.PutObject", after)
    return keys


def test_once_publishes_objects_with_types_and_cache_control(
    tmp_path: Path, moto_server: MotoServer, bucket: str
) -> None:
    path = write_config(tmp_path, s3_toml(moto_server.url, bucket))
    result = run_cli("once", "-c", str(path))
    assert result.returncode == 0, result.stderr
    s3 = s3_client(moto_server.url)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {
        "cam1/live.jpeg",
        "cam1/live800x600.jpeg",
        "cam1/live320x240.jpeg",
        "cam1/live.json",
        "cam1/index.html",
        "cam1/embed.html",
        "cam1/live.js",
        "cam1/live-embed.js",
        "cam1/history.js",
        "cam1/style.css",
        "cam1/favicon.svg",
    }
    expected_types = {
        "live.jpeg": "image/jpeg",
        "live.json": "application/json",
        "index.html": "text/html; charset=utf-8",
        "style.css": "text/css; charset=utf-8",
        "live.js": "text/javascript; charset=utf-8",
    }
    for name, ctype in expected_types.items():
        head = s3.head_object(Bucket=bucket, Key=f"cam1/{name}")
        assert head["ContentType"] == ctype
        assert head["CacheControl"] == "no-cache"
    m = json.loads(s3.get_object(Bucket=bucket, Key="cam1/live.json")["Body"].read())
    assert m["seq"] == 1 and m["title"] == "S3 cam"
    for name, entry in m["images"].items():
        body = s3.get_object(Bucket=bucket, Key=f"cam1/{name}")["Body"].read()
        assert entry["bytes"] == len(body)
    # Credentials never reach the output.
    assert S3_ENV["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout


def test_manifest_is_put_after_every_image(moto_server: MotoServer, bucket: str) -> None:
    target = target_for(moto_server.url, bucket)
    keys = record_puts(target)
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240},
            "target": {"kind": "s3", "bucket": bucket},
        }
    )
    camera = TestPatternCamera(320, 240)
    pub = Publisher(cfg, lambda: camera, target, site_files=lambda: [])
    pub.start()
    for _ in range(3):
        keys.clear()
        pub.publish_next()
        assert keys[-1] == "cam1/live.json"
        assert sorted(keys[:-1]) == [
            "cam1/live.jpeg",
            "cam1/live320x240.jpeg",
            "cam1/live800x600.jpeg",
        ]
    pub.close()


def test_a_failed_image_keeps_the_manifest_on_the_previous_frame(
    moto_server: MotoServer, bucket: str
) -> None:
    proxy = FaultProxy(moto_server.port)
    target = target_for(proxy.url, bucket, max_attempts=1)
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240},
            "target": {"kind": "s3", "bucket": bucket},
        }
    )
    camera = TestPatternCamera(320, 240)
    pub = Publisher(cfg, lambda: camera, target, site_files=lambda: [])
    s3 = s3_client(moto_server.url)
    try:
        pub.start()
        pub.publish_next()
        before = s3.get_object(Bucket=bucket, Key="cam1/live.json")["Body"].read()
        proxy.rule = lambda method, path: (
            Fault(status=500) if method == "PUT" and "live800x600" in path else None
        )
        with pytest.raises(PublishError, match="internal error"):
            pub.publish_next()
        after = s3.get_object(Bucket=bucket, Key="cam1/live.json")["Body"].read()
        assert after == before
        assert json.loads(after)["seq"] == 1
        manifest_puts = [p for _, m, p, _ in proxy.log.requests if m == "PUT" and "live.json" in p]
        assert len(manifest_puts) == 1  # only the first frame's
        proxy.rule = lambda method, path: None
        assert pub.publish_next().seq == 2
    finally:
        pub.close()
        proxy.close()


def test_prefix_is_honoured_and_seq_resumes(moto_server: MotoServer, bucket: str) -> None:
    s3 = s3_client(moto_server.url)
    for prefix in ("", "a/b/"):
        target = target_for(moto_server.url, bucket, prefix=prefix)
        cfg = config.parse(
            {
                "camera": {"source": "test", "width": 320, "height": 240},
                "target": {"kind": "s3", "bucket": bucket},
            }
        )
        camera = TestPatternCamera(320, 240)
        for expected_seq in (1, 2):
            pub = Publisher(
                cfg,
                lambda camera=camera: camera,
                target_for(moto_server.url, bucket, prefix=prefix),
                site_files=lambda: [],
            )
            pub.start()
            assert pub.publish_next().seq == expected_seq
            pub.close()
        target.close()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [
        "a/b/live.jpeg",
        "a/b/live.json",
        "a/b/live320x240.jpeg",
        "a/b/live800x600.jpeg",
        "live.jpeg",
        "live.json",
        "live320x240.jpeg",
        "live800x600.jpeg",
    ]


def test_page_is_uploaded_only_when_changed(moto_server: MotoServer, bucket: str) -> None:
    files = load_site()
    first = target_for(moto_server.url, bucket)
    assert sorted(first.publish_site(files)) == sorted(f.name for f in files)
    assert first.publish_site(files) == []  # remembered: no request at all
    # A new process: one HEAD per file, no PUT.
    second = target_for(moto_server.url, bucket)
    puts = record_puts(second)
    assert second.publish_site(files) == []
    assert puts == []
    changed = [
        f if f.name != "style.css" else type(f)(f.name, f.data + b"\n/* v2 */") for f in files
    ]
    assert second.publish_site(changed) == ["style.css"]
    # A changed Cache-Control setting re-uploads too.
    third = target_for(moto_server.url, bucket, site_cache_control="public, max-age=60")
    assert sorted(third.publish_site(changed)) == sorted(f.name for f in files)


def test_check_passes_and_cleans_up(tmp_path: Path, moto_server: MotoServer, bucket: str) -> None:
    path = write_config(tmp_path, s3_toml(moto_server.url, bucket))
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^ok   put s3://livecam-test-\S+/cam1/\.livecam-probe-", out, re.M)
    assert "ok   get s3://" in out and "ok   delete s3://" in out
    assert out.splitlines()[-1] == "all checks passed"
    listing = s3_client(moto_server.url).list_objects_v2(Bucket=bucket)
    assert "Contents" not in listing


def test_check_names_a_missing_bucket(
    tmp_path: Path, moto_server: MotoServer, s3_env: dict
) -> None:  # type: ignore[type-arg]
    path = write_config(tmp_path, s3_toml(moto_server.url, "no-such-bucket-here"))
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 1
    assert "FAIL put s3://no-such-bucket-here/cam1/.livecam-probe-" in result.stdout
    assert "bucket 'no-such-bucket-here' does not exist at this endpoint" in result.stdout


def test_check_names_an_unreachable_endpoint(tmp_path: Path, s3_env: dict) -> None:  # type: ignore[type-arg]
    port = free_port()
    path = write_config(
        tmp_path,
        s3_toml(
            f"http://127.0.0.1:{port}", "cam", target_extra="connect_timeout = 1\nmax_attempts = 1"
        ),
    )
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 1
    assert f"cannot reach the S3 endpoint (http://127.0.0.1:{port}" in result.stdout


@pytest.fixture(scope="module")
def auth_s3() -> Iterator[dict[str, str]]:
    """A moto server that checks credentials: a user allowed on cam1/ only, and one
    allowed nothing."""
    import boto3

    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "6", **S3_ENV}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        kw: dict[str, Any] = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "x",
            "aws_secret_access_key": "y",
        }
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="cam")
        key = iam.create_access_key(UserName="cam")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                    "Resource": "arn:aws:s3:::authcam/cam1/*",
                }
            ],
        }
        iam.put_user_policy(UserName="cam", PolicyName="livecam", PolicyDocument=json.dumps(policy))
        boto3.client("s3", **kw).create_bucket(Bucket="authcam")
        iam.create_user(UserName="nobody")
        other = iam.create_access_key(UserName="nobody")["AccessKey"]
        yield {
            "url": url,
            "key": key["AccessKeyId"],
            "secret": key["SecretAccessKey"],
            "other_key": other["AccessKeyId"],
            "other_secret": other["SecretAccessKey"],
        }
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("valid", "all checks passed"),
        ("wrong-secret", "the secret access key does not match the access key id"),
        ("unknown-key", "the access key id is not known to this endpoint"),
        ("no-permission", "access denied to s3://authcam/cam1/.livecam-probe-"),
    ],
)
def test_check_explains_credential_problems(
    tmp_path: Path, auth_s3: dict[str, str], who: str, expected: str
) -> None:
    key, secret = {
        "valid": (auth_s3["key"], auth_s3["secret"]),
        "wrong-secret": (auth_s3["key"], "wrong-secret-" + "x" * 27),
        "unknown-key": ("AKIAUNKNOWNUNKNOWN00", auth_s3["secret"]),
        "no-permission": (auth_s3["other_key"], auth_s3["other_secret"]),
    }[who]
    path = write_config(tmp_path, s3_toml(auth_s3["url"], "authcam"))
    env = {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    result = run_cli("check", "-c", str(path), "--verbose", env=env)
    assert expected in result.stdout, result.stdout + result.stderr
    assert result.returncode == (0 if who == "valid" else 1)
    assert secret not in result.stdout + result.stderr


def test_no_credentials_is_explained(tmp_path: Path, moto_server: MotoServer) -> None:
    path = write_config(tmp_path, s3_toml(moto_server.url, "cam"))
    result = run_cli("check", "-c", str(path), base_env=no_aws_env())
    assert result.returncode == 1
    assert "no S3 credentials found" in result.stdout


def test_a_missing_profile_is_explained(
    tmp_path: Path, moto_server: MotoServer, s3_env: dict
) -> None:  # type: ignore[type-arg]
    path = write_config(tmp_path, s3_toml(moto_server.url, "cam", target_extra='profile = "nope"'))
    result = run_cli("check", "-c", str(path))
    assert result.returncode == 1
    assert "The config profile (nope) could not be found" in result.stdout + result.stderr


# --- outage ------------------------------------------------------------------------------


def test_endpoint_outage_of_10_s_is_survived_without_flood_or_backlog(
    tmp_path: Path,
    s3_env: dict[str, str],  # type: ignore[type-arg]
) -> None:
    server = MotoServer()
    server.start()
    s3_client(server.url).create_bucket(Bucket="outage")
    interval = 1.0
    path = write_config(tmp_path, s3_toml(server.url, "outage", interval=interval))
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(path)],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(
        target=lambda: [lines.append((time.monotonic(), ln)) for ln in proc.stderr],  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    s3 = s3_client(server.url)

    def seq() -> int:
        return int(
            json.loads(s3.get_object(Bucket="outage", Key="cam1/live.json")["Body"].read())["seq"]
        )

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # not published yet
                if seq() >= 3:
                    break
            time.sleep(0.2)
        server.stop()
        down_at = time.monotonic()
        time.sleep(10)
        server.start()
        back_at = time.monotonic()
        before = seq()
        resumed_at = None
        while time.monotonic() < back_at + 10:
            if seq() > before:
                resumed_at = time.monotonic()
                break
            time.sleep(0.05)
        assert resumed_at is not None, "publishing did not resume"
        resume_delay = resumed_at - back_at
        time.sleep(3)
        m = json.loads(s3.get_object(Bucket="outage", Key="cam1/live.json")["Body"].read())
        captured = datetime.fromisoformat(m["captured_at"].replace("Z", "+00:00"))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        reader.join(5)
        server.stop()
    assert code == 0
    assert resume_delay <= 2 * interval + 0.5, resume_delay
    # No backlog: the newest manifest is a fresh frame, not one replayed from the outage.
    assert datetime.now(UTC) - captured < timedelta(seconds=2 * interval + 1)
    outage_lines = [ln for t, ln in lines if down_at <= t <= back_at + 2 and "WARNING" in ln]
    # At most one line per backoff step (attempts 1, 2, 4, 8, ...): ~4 in 10 s, not ~10.
    assert 1 <= len(outage_lines) <= 5, outage_lines
    assert any("cannot reach the S3 endpoint" in ln for ln in outage_lines)
    assert any("publishing resumed after" in ln for _, ln in lines)
    assert all(S3_ENV["AWS_SECRET_ACCESS_KEY"] not in ln for _, ln in lines)
    print(
        f"resumed {resume_delay:.2f} s after the endpoint returned; "
        f"{len(outage_lines)} warning lines during a 10 s outage"
    )


# --- cost controls -----------------------------------------------------------------------


class StaticCamera(Camera):
    def __init__(self) -> None:
        self.colour = (90, 90, 90)
        self.when = datetime(2026, 11, 21, tzinfo=UTC)

    def capture(self) -> Frame:
        self.when += timedelta(seconds=1)
        return Frame(Image.new("RGB", (320, 240), self.colour), self.when)


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def test_skip_unchanged_on_s3_publishes_only_keepalives_then_every_change(
    moto_server: MotoServer, bucket: str
) -> None:
    target = target_for(moto_server.url, bucket)
    puts = record_puts(target)
    cfg = config.parse(
        {
            "camera": {"source": "test", "width": 320, "height": 240, "interval": 1.0},
            "target": {"kind": "s3", "bucket": bucket},
            "publish": {"skip_unchanged": True, "max_age": 20.0},
        }
    )
    camera, clock = StaticCamera(), Clock()
    pub = Publisher(cfg, lambda: camera, target, clock=clock, site_files=lambda: [])
    pub.start()
    for _ in range(60):  # a static minute
        pub.publish_next()
        clock.t += 1.0
    static_manifests = puts.count("cam1/live.json")
    assert static_manifests == 3  # t = 0, 20, 40
    puts.clear()
    for i in range(10):  # a changing scene: every frame
        camera.colour = (i * 20, 100, 255 - i * 20)
        pub.publish_next()
        clock.t += 1.0
    assert puts.count("cam1/live.json") == 10
    pub.close()


def test_cost_matches_a_hand_computation(tmp_path: Path) -> None:
    path = write_config(tmp_path, s3_toml("http://127.0.0.1:9", "cam", interval=1.0))
    cfg = config.load(path)
    e = cost.estimate(cfg)
    # 3 default variants + live.json = 4 PUTs a second, 30 days.
    assert e.puts_per_month == 4 * 86400 * 30 == 10_368_000
    # A HEAD per page file each minute, checking that the bucket was not wiped.
    assert len(load_site()) == 7
    assert e.heads_per_month == 7 * 60 * 24 * 30 == 302_400
    aws, r2, b2 = (cost.monthly(p, e)[0] for p in cost.PROVIDERS)
    assert aws == pytest.approx(10_368_000 / 1000 * 0.005 + 302_400 / 1000 * 0.0004)  # $51.96
    assert r2 == pytest.approx(10 * 4.50)  # (10.368M - 1M free) rounded up to 10M
    assert b2 == pytest.approx((302_400 - 2500 * 30) / 10_000 * 0.004)  # uploads free
    result = run_cli("cost", "-c", str(path))
    assert result.returncode == 0
    assert "PUTs per month: 10,368,000" in result.stdout
    assert "HEADs per month: 302,400 (the page and kept images, checked every 60 s)" in (
        result.stdout
    )
    assert re.search(r"AWS S3 Standard \(us-east-1\)\s+\$51\.96", result.stdout)
    assert re.search(r"Cloudflare R2 Standard\s+\$45\.00", result.stdout)
    assert re.search(r"Backblaze B2\s+\$0\.09", result.stdout)


def test_cost_with_every_n_and_skip_unchanged(tmp_path: Path) -> None:
    body = (
        s3_toml("http://127.0.0.1:9", "cam", interval=2.0)
        + """
        [publish]
        skip_unchanged = true
        max_age = 60

        [[variants]]
        name = "big.jpeg"
        every = 10

        [[variants]]
        name = "small.jpeg"
        width = 320
        height = 240
        """
    )
    cfg = config.load(write_config(tmp_path, body))
    e = cost.estimate(cfg, viewers=1)
    assert e.puts_per_frame == pytest.approx(0.1 + 1 + 1)
    assert e.frames_per_month == 1_296_000
    assert e.min_frames_per_month == 43_200
    assert e.gets_per_month == 1_296_000 * 2  # polls every 2 s + one image per frame
    assert e.heads_per_month == (7 + 1) * 43_200  # big.jpeg is kept between its frames
