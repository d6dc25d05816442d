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
