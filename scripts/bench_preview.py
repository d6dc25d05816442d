#!/usr/bin/env python3
"""What the live view costs: the `run` process's CPU per preview frame with 1 and with
8 viewers (one encode serves all, so the two should match), and its CPU per second
with nobody watching.

    .venv/bin/python scripts/bench_preview.py                 # the table in docs/preview.md
    .venv/bin/python scripts/bench_preview.py --seconds 2     # CI: checks that it runs

A real `publisher.py run` (test camera, local target, publishing once a minute so
that the preview's own cost stands out) with `[preview]` at `--fps`; the viewers read
/stream.mjpg on loopback from this process. CPU counts every thread of the publisher
(/proc/PID/stat); frames are the `encoded` counter of /status.json. Each viewer count
runs `--turns` times, interleaved; the figures are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench import cpu_seconds  # noqa: E402

ROOT = HERE.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(directory: str, port: int, size: tuple[int, int], fps: float) -> str:
    return (
        f'[camera]\nsource = "test"\nwidth = {size[0]}\nheight = {size[1]}\ninterval = 60\n'
        f'[target]\nkind = "local"\npath = "{directory}/live"\n'
        f"[preview]\nenabled = true\nport = {port}\nfps = {fps}\n"
    )


class Viewer:
    """A client of /stream.mjpg that reads everything and counts the bytes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        self.bytes = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while chunk := self.sock.recv(1 << 16):
                self.bytes += len(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=10) as r:
        return dict(json.loads(r.read()))


def measure(pid: int, port: int, viewers: int, seconds: float) -> dict[str, float]:
    """CPU ms per preview frame (or per second with no viewer) over `seconds`."""
    clients = [Viewer(port) for _ in range(viewers)]
    try:
        time.sleep(1.0)  # the producer wakes and settles
        s0, cpu0, t0 = status(port), cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        s1, cpu1, t1 = status(port), cpu_seconds(pid), time.monotonic()
    finally:
        for c in clients:
            c.close()
    frames = s1["encoded"] - s0["encoded"]
    cpu_ms = (cpu1 - cpu0) * 1000
    return {
        "frames": frames,
        "fps": frames / (t1 - t0),
        "cpu_ms_per_frame": cpu_ms / frames if frames else 0.0,
        "cpu_ms_per_s": cpu_ms / (t1 - t0),
        "sent_per_frame": (s1["sent"] - s0["sent"]) / frames if frames else 0.0,
    }


def encode_ms(size: tuple[int, int], runs: int = 30) -> float:
    """CPU ms of one preview encode, measured here as the preview makes it (from the test
    camera's lores copy): what a server that encodes per viewer pays per extra viewer."""
    from livecam.camera.picam import lores_size
    from livecam.camera.testpattern import TestPatternCamera
    from livecam.config import PreviewConfig
    from livecam.preview.frames import preview_variant, small_copy
    from livecam.render import Renderer

    variant = preview_variant(PreviewConfig())
    camera = TestPatternCamera(*size, lores=lores_size(size, [variant]))
    renderer = Renderer((variant,))
    with camera.capture() as frame:
        small = small_copy(frame, variant)
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        renderer.render(small)
        times.append((time.process_time() - t0) * 1000)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--turns", type=int, default=3, help="runs of each viewer count")
    parser.add_argument("--fps", type=float, default=10.0, help="preview.fps")
    parser.add_argument("--size", default="2028x1520", help="capture size (default 2028x1520)")
    args = parser.parse_args(argv)
    w, h = (int(x) for x in args.size.lower().split("x"))
    directory = tempfile.mkdtemp(prefix="livecam-bench-preview-")
    port = free_port()
    path = Path(directory, "config.toml")
    path.write_text(config(directory, port, (w, h), args.fps))
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "publisher.py"), "run", "-c", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    results: dict[int, list[dict[str, float]]] = {0: [], 1: [], 8: []}
    try:
        deadline = time.monotonic() + 60
        while not Path(directory, "live", "live.json").exists():
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit("publisher.py run did not start")
            time.sleep(0.1)
        for _ in range(args.turns):
            for viewers in results:
                results[viewers].append(measure(child.pid, port, viewers, args.seconds))
    finally:
        child.terminate()
        child.wait(timeout=30)
        subprocess.run(["rm", "-rf", directory], check=False)
    summary: dict[str, Any] = {"size": args.size, "fps": args.fps, "cpus": os.cpu_count()}
    summary["load_average"] = round(os.getloadavg()[0], 1)
    for viewers, runs in results.items():
        summary[f"{viewers} viewers"] = {
            key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]
        }
    summary["one encode cpu_ms"] = round(encode_ms((w, h)), 2)
    one, eight = summary["1 viewers"], summary["8 viewers"]
    if one["cpu_ms_per_frame"]:
        summary["8 over 1"] = round(eight["cpu_ms_per_frame"] / one["cpu_ms_per_frame"], 2)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
