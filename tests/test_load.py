"""Load: many concurrent readers through a real nginx while the publisher runs flat out.

Every image read is checked for completeness (SOI/EOI markers and the length nginx
announced) and one in ten is fully decoded; every manifest must parse and name only
images that exist at the stated size. The publisher's frame rate is measured with and
without the readers. The default run is light; `--slow` runs 200 readers.
"""

from __future__ import annotations

import http.client
import io
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .conftest import PUBLISHER, write_config


def _reader_process(port: int, threads: int, seconds: float, out: Any) -> None:
    # The readers stand in for viewers on other machines: they must not take the CPU
    # that nginx and the publisher share on the Pi.
    os.nice(19)
    stats = {"requests": 0, "manifests": 0, "images": 0, "decoded": 0, "bad": []}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local = {"requests": 0, "manifests": 0, "images": 0, "decoded": 0}
        bad: list[str] = []

        def get(path: str) -> tuple[int, bytes, str]:
            nonlocal conn
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                body = r.read()
                local["requests"] += 1
                return r.status, body, r.getheader("Content-Length") or ""
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                return 0, b"", ""

        while time.monotonic() < deadline:
            status, body, _ = get("/live.json")
            if status != 200:
                continue
            try:
                m = json.loads(body)
            except ValueError:
                bad.append("manifest does not parse")
                continue
            local["manifests"] += 1
            if rng.random() < 0.3:
                get("/index.html")
            name, entry = rng.choice(list(m["images"].items()))
            status, data, length = get(f"/{name}?v={entry['seq']}")
            if status != 200:
                bad.append(f"{name}: HTTP {status} for an image the manifest names")
                continue
            local["images"] += 1
            if (
                not (data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9")
                or str(len(data)) != length
            ):
                bad.append(f"{name}: torn ({len(data)} bytes)")
                continue
            if rng.random() < 0.1:
                try:
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
                        if im.size != (entry["width"], entry["height"]):
                            bad.append(f"{name}: {im.size} is not the manifest's size")
                    local["decoded"] += 1
                except Exception as e:
                    bad.append(f"{name}: undecodable: {e}")
        conn.close()
        with lock:
            for k, v in local.items():
                stats[k] += v  # type: ignore[operator]
            stats["bad"].extend(bad[:5])  # type: ignore[union-attr]

    pool = [threading.Thread(target=reader, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(stats)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def frames_in(directory: Path, seconds: float, pid: int) -> tuple[float, float]:
    """Frames per second, and the publisher's CPU milliseconds per frame."""

    def seq() -> int:
        return int(json.loads((directory / "live.json").read_bytes())["seq"])

    start, t0, cpu0 = seq(), time.monotonic(), cpu_seconds(pid)
    time.sleep(seconds)
    frames = seq() - start
    return frames / (time.monotonic() - t0), (cpu_seconds(pid) - cpu0) * 1000 / max(1, frames)


def run_load(
    tmp_path: Path, served_dir: Path, nginx: Any, readers: int, seconds: float
) -> dict[str, Any]:
    base = nginx(served_dir)
    port = int(base.rsplit(":", 1)[1].strip("/"))
    path = write_config(
        tmp_path,
        f"""
        [camera]
        source = "test"
        width = 1280
        height = 720
        interval = 0
        [target]
        kind = "local"
        path = "{served_dir}"
        [publish]
        status_interval = 0
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(PUBLISHER), "run", "-c", str(path)], stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not (served_dir / "live.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        alone, cpu_alone = frames_in(served_dir, 4, proc.pid)
        processes = min(4, readers)
        queue: Any = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(
                target=_reader_process, args=(port, readers // processes, seconds, queue)
            )
            for _ in range(processes)
        ]
        for w in workers:
            w.start()
        time.sleep(1)
        loaded, cpu_loaded = frames_in(served_dir, seconds - 2, proc.pid)
        results = [queue.get(timeout=seconds + 60) for _ in workers]
        for w in workers:
            w.join(30)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    total: dict[str, Any] = {"requests": 0, "manifests": 0, "images": 0, "decoded": 0, "bad": []}
    for r in results:
        for k in ("requests", "manifests", "images", "decoded"):
            total[k] += r[k]
        total["bad"] += r["bad"]
    total.update(
        readers=readers,
        seconds=seconds,
        exit=code,
        fps_alone=round(alone, 1),
        fps_with_readers=round(loaded, 1),
        cpu_ms_per_frame_alone=round(cpu_alone, 1),
        cpu_ms_per_frame_with_readers=round(cpu_loaded, 1),
        requests_per_s=round(total["requests"] / seconds),
    )
    return total


def check(r: dict[str, Any]) -> None:
    assert r["exit"] == 0
    assert r["bad"] == [], r["bad"]
    assert r["images"] > r["readers"] and r["decoded"] > 0, r
    assert r["fps_with_readers"] > 0, r
    print(f"load: {json.dumps(r)}")


def test_readers_through_nginx_never_see_a_torn_frame(
    tmp_path: Path, served_dir: Path, nginx: Any
) -> None:
    check(run_load(tmp_path, served_dir, nginx, readers=40, seconds=8))


@pytest.mark.slow
def test_200_readers_through_nginx(tmp_path: Path, served_dir: Path, nginx: Any) -> None:
    check(run_load(tmp_path, served_dir, nginx, readers=200, seconds=30))
