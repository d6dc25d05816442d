"""The benchmark scripts run (CI checks only that; their figures are in docs/); the
render soak shows no RSS growth (--slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "scripts" / "bench.py"


def bench(*args: str, timeout: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def test_bench_quick_runs_and_prints_its_ratios() -> None:
    report = bench("--quick", timeout=120)
    assert set(report["goals"]) >= {"wall", "cpu", "naive", "quality"}  # may grow
    try:
        import cv2  # noqa: F401
    except ImportError:
        path = "pillow"
    else:
        path = "opencv"  # CI measures the fast path (the test extras include OpenCV)
    for size in report["sizes"].values():
        assert size["path"] == path
        assert size["bound_ms"] > 0
        assert size["wall_ratio"] > 0 and size["cpu_ratio"] > 0 and size["naive_speedup"] > 0
        assert size["psnr_min_db"] >= 30 or size["chroma_420"]  # see bench.py
        assert size["psnr_margin_db"] >= -1
        if path == "opencv":  # and the Pillow path beside it, against its own bound
            assert size["pillow_wall_ratio"] > 0 and size["pillow_psnr_margin_db"] > -1
    assert report["throughput"]["fps"] > 0
    assert report["soak"]["frames"] == 20


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_2000_frames_at_12_mp_keeps_memory_flat() -> None:
    """The real `run` loop (test camera, local target) for 2,000 frames at 4056x3040:
    peak RSS under 3 frames' worth of pixels above the baseline, no growth."""
    soak = bench("--soak", "2000", "--size", "4056x3040", timeout=1150)["soak"]
    assert soak["frames"] == 2000
    assert soak["peak_frames"] < 3, soak
    assert soak["growth_mib"] < 8, soak


def test_bench_s3_quick() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_s3.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["bench"] == "s3"
    assert out["speedup"]["0ms"]["ours_median_ms"] > 0


def _bench_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("livecam_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_timing_counts_each_core_alike() -> None:
    """Eight runs on a slow core and two on a fast one weigh as much as each other."""
    b = _bench_module()
    t = b.Timing()
    for s in [0.010] * 8:
        t.wall.setdefault(1, []).append(s)
    for s in [0.006, 0.006]:
        t.wall.setdefault(0, []).append(s)
    assert t.ms == pytest.approx(8.0)
    assert t.core_ms() == {0: pytest.approx(6.0), 1: pytest.approx(10.0)}


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="Linux only")
def test_on_core_pins_the_calling_thread_only_and_lets_go() -> None:
    import os
    import threading

    b = _bench_module()
    cores = sorted(os.sched_getaffinity(0))
    seen: dict[str, set[int]] = {}
    with b.on_core(1) as core:
        # A thread started while pinned inherits the pin; on_core frees it afterwards.
        started = threading.Event()
        done = threading.Event()
        worker = threading.Thread(target=lambda: (started.set(), done.wait(5)))
        worker.start()
        started.wait(5)
        seen["pinned"] = os.sched_getaffinity(0)
    seen["after"] = os.sched_getaffinity(0)
    assert worker.native_id is not None
    seen["worker"] = os.sched_getaffinity(worker.native_id)
    done.set()
    worker.join()
    if len(cores) < 2:
        assert core == -1
        return
    assert core == cores[1] and seen["pinned"] == {core}
    assert seen["after"] == set(cores) and seen["worker"] == set(cores)
