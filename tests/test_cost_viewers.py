"""`cost --viewers N [--cdn ...]`: bandwidth priced per provider and behind a CDN, each
figure checked against a computation by hand (docs/scaling.md shows the same)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livecam import config, cost

from .conftest import run_cli, write_config

CONFIG = """
[camera]
interval = 2.0

[target]
kind = "s3"
bucket = "cam"
"""

FRAMES = 30 * 86400 / 2  # 1,296,000 a month
VIEWERS = 1000
# live800x600.jpeg, the smallest variant at least 800 px wide: 800x600 px at 0.15 B/px.
IMAGE = 800 * 600 * 0.15  # 72,000 bytes
POLLS = VIEWERS * FRAMES  # one live.json a viewer per 2 s interval
IMAGES = VIEWERS * FRAMES  # one image a viewer per frame
EGRESS_GB = (POLLS * 600 + IMAGES * IMAGE) / 1e9  # 94,089.6 GB


@pytest.fixture
def cfg(tmp_path: Path) -> config.Config:
    return config.load(write_config(tmp_path, CONFIG))


def test_bandwidth_for_a_thousand_viewers_matches_a_hand_computation(cfg: config.Config) -> None:
    e = cost.estimate(cfg, viewers=VIEWERS)
    v = cost.viewing(cfg, e)
    assert (v.image, v.image_bytes, v.measured) == ("live800x600.jpeg", 72_000, False)
    assert v.polls == POLLS == 1_296_000_000
    assert v.images == IMAGES
    assert v.egress_bytes / 1e9 == pytest.approx(94_089.6)
    aws, r2, b2 = (cost.egress_cost(p, EGRESS_GB) for p in cost.PROVIDERS)
    # AWS: 100 GB free, then 10 TB at $0.09, 40 TB at $0.085, the rest at $0.07.
    assert aws == pytest.approx(10_000 * 0.09 + 40_000 * 0.085 + (EGRESS_GB - 100 - 50_000) * 0.07)
    assert aws == pytest.approx(7_379.272)
    assert r2 == 0.0
    assert b2 == pytest.approx(EGRESS_GB * 0.01)  # $940.90
    # A measured image size replaces the estimate.
    v = cost.viewing(cfg, e, image_bytes=50_000)
    assert v.measured and v.egress_bytes == pytest.approx(POLLS * 600 + IMAGES * 50_000)


def test_behind_a_cdn_the_bucket_reads_do_not_grow_with_viewers(cfg: config.Config) -> None:
    keyed = config.parse(
        {"target": {"kind": "s3", "bucket": "cam"}, "publish": {"frame_keys": True}}
    )
    e = cost.estimate(keyed, viewers=VIEWERS)
    # Frame keys: 3 images twice plus live.json per frame, and a DeleteObjects a minute.
    assert e.puts_per_frame == 7
    assert e.puts_per_month == 7 * FRAMES + 30 * 24 * 60 == 9_115_200
    reads = {}
    for n in (100, 1000):
        v = cost.viewing(keyed, cost.estimate(keyed, viewers=n), cdn="cloudfront")
        reads[n] = v.origin_reads
    # live.json once a second (max-age=1) and each frame's image once.
    assert reads[100] == reads[1000] == 30 * 86400 + FRAMES == 3_888_000

    v = cost.viewing(keyed, e, cdn="cloudfront")
    cf = cost.cdn_monthly(cost.CDNS["cloudfront"], e, v)
    assert cf.cdn_requests == pytest.approx((POLLS + IMAGES - 10e6) / 1e6 * 1.00)  # $2,582
    billable = EGRESS_GB - 1000  # 1 TB a month free
    assert cf.cdn_egress == pytest.approx(
        10_000 * 0.085 + 40_000 * 0.080 + (billable - 50_000) * 0.060
    )
    # The reads, and the publisher's HEAD of each of the 7 page files a minute.
    assert e.heads_per_month == 302_400
    assert cf.origin_requests == pytest.approx(
        9_115_200 * 5 / 1e6 + (3_888_000 + 302_400) * 0.4 / 1e6
    )

    v = cost.viewing(keyed, e, cdn="cloudflare")
    cl = cost.cdn_monthly(cost.CDNS["cloudflare"], e, v)
    assert cl.cdn_requests == cl.cdn_egress == 0.0
    # R2: (9,115,200 - 1M free) PUTs rounded up to 9M at $4.50; 4.2M reads < 10M free.
    assert cl.origin_requests == pytest.approx(9 * 4.50)
    assert cl.total == pytest.approx(40.50)


def test_recommended_cache_control_per_case() -> None:
    assert cost.recommended_cache_control(None) == "no-cache"
    assert cost.recommended_cache_control("cloudfront") == "public, max-age=1"
    assert cost.recommended_cache_control("cloudflare") == "public, max-age=1"


def test_cost_command_prints_bandwidth_and_the_cdn(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG)
    out = run_cli("cost", "-c", str(path), "--viewers", "1000", "--cdn", "cloudflare")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "egress per month: 94,089.6 GB" in text
    assert "live800x600.jpeg (~72 KB, estimated from its pixels)" in text
    assert re.search(
        r"AWS S3 Standard \(us-east-1\)\s+\$1,062\.84\s+\$7,379\.27\s+\$8,442\.11", text
    )
    assert re.search(r"Backblaze B2\s+\$1,036\.89\s+\$940\.90", text)
    assert "reads reaching the bucket: 3,888,000 a month" in text
    assert "$40.50 a month" in text
    assert "cache_control = 'public, max-age=1', [publish] frame_keys = true" in text
    assert "priced with frame_keys on" in text
    assert re.search(r"prices as published in \d{4}-\d\d", text, re.I)
    measured = run_cli("cost", "-c", str(path), "--viewers", "10", "--image-bytes", "50000")
    assert "(~50 KB, as given by --image-bytes)" in measured.stdout
    bad = run_cli("cost", "-c", str(path), "--cdn", "akamai")
    assert bad.returncode == 2 and "invalid choice: 'akamai'" in bad.stderr
