#!/usr/bin/env python3
"""Publish latency to an S3 endpoint: sequential vs parallel uploads, fresh vs reused client.

Starts moto's S3 server (a real HTTP endpoint) on loopback in its own process, renders
four variants once, then publishes N frames (4 images + live.json) each way and prints
frames/s, the median publish latency, and the ratios, measured in the same run. With
--latency MS a loopback proxy delays every request by MS, like a WAN round trip.

    .venv/bin/python scripts/bench_s3.py            # loopback and 40 ms
    .venv/bin/python scripts/bench_s3.py --quick    # CI: just check it runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livecam import config, manifest  # noqa: E402
from livecam.camera.base import Frame  # noqa: E402
from livecam.config import VariantConfig  # noqa: E402
from livecam.render import Renderer  # noqa: E402
from livecam.targets.s3 import S3Target  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402
from tests.faultproxy import Fault, FaultProxy  # noqa: E402

VARIANTS = (
    VariantConfig("live.jpeg"),
    VariantConfig("live1280x720.jpeg", 1280, 720),
    VariantConfig("live800x600.jpeg", 800, 600),
    VariantConfig("live320x240.jpeg", 320, 240),
)


def measure(endpoint: str, workers: int, reuse: bool, frames: int, images: list) -> list[float]:  # type: ignore[type-arg]
    cfg = config.parse(
        {
            "target": {
                "kind": "s3",
                "bucket": "bench",
                "endpoint_url": endpoint,
                "region": "us-east-1",
                "workers": workers,
            }
        }
    )
    target = S3Target(cfg.target)
    target.publish(images, b"{}")  # warm: the client, its connections, the threads
    latencies = []
    for seq in range(frames):
        if not reuse:
            target.close()
            target = S3Target(cfg.target)
        body = manifest.build(seq, datetime.now(UTC), 1.0, {})
        t0 = time.perf_counter()
        target.publish(images, body)
        latencies.append(time.perf_counter() - t0)
    target.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument(
        "--latency",
        type=float,
        action="append",
        help="ms added per request (repeatable; default 0 and 40)",
    )
    parser.add_argument("--quick", action="store_true", help="a few frames, loopback only")
    args = parser.parse_args()
    latencies_ms = args.latency or ([0.0] if args.quick else [0.0, 40.0])
    frames = 3 if args.quick else args.frames

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="bench")
        from livecam.testimage import photo_like

        renderer = Renderer(VARIANTS)
        images = renderer.render(Frame(photo_like(2028, 1520), datetime.now(UTC)))
        sizes = ", ".join(f"{r.name} {len(r.data) // 1024} KiB" for r in images)
        print(f"{frames} frames of 4 images + live.json ({sizes}); moto server on loopback")
        results = {}
        for ms in latencies_ms:
            proxy = FaultProxy(port, (lambda m, p, d=ms / 1000: Fault(stall=d) if d else None))  # type: ignore[misc]
            try:
                ways = {
                    "sequential, fresh client": (1, False),
                    "sequential, reused client": (1, True),
                    "parallel (4), fresh client": (4, False),
                    "parallel (4), reused client": (4, True),
                }
                rows = {}
                for name, (workers, reuse) in ways.items():
                    lat = measure(
                        proxy.url if ms else f"http://127.0.0.1:{port}",
                        workers,
                        reuse,
                        frames,
                        images,
                    )
                    rows[name] = (statistics.median(lat), frames / sum(lat))
            finally:
                proxy.close()
            print(f"\nadded latency per request: {ms:g} ms")
            print(f"{'way':<30}{'median ms':>10}{'frames/s':>10}")
            for name, (med, fps) in rows.items():
                print(f"{name:<30}{med * 1000:>10.1f}{fps:>10.2f}")
            base = rows["sequential, fresh client"][0]
            ours = rows["parallel (4), reused client"][0]
            results[f"{ms:g}ms"] = {
                "parallel_vs_sequential": rows["sequential, reused client"][0] / ours,
                "reused_vs_fresh": rows["parallel (4), fresh client"][0] / ours,
                "ours_vs_naive": base / ours,
                "ours_median_ms": ours * 1000,
            }
        print("\n" + json.dumps({"bench": "s3", "frames": frames, "speedup": results}))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
