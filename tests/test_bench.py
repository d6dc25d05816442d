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


def test_bench_quick_runs_and_prints_its_figures() -> None:
    report = bench("--quick", timeout=180)
    for size in report["sizes"].values():
        for config in ("default", "4 variants"):
            row = size[config]
            assert row["bound"]["cpu_per_bound"] == 1.0
            for job in ("new", "new, no lores", "pillow"):
                median, low, high = row[job]["cpu_ms"]
                assert 0 < low <= median <= high and row[job]["cpu_per_bound"] > 0
            assert row["psnr_margin_db"] >= -1
    process = report["process"]
    assert process["frames"] >= 10 and process["bound_ms"] > 0
    median, low, high = process["new"]["cpu_ms_per_frame"]  # a few clock ticks: maybe 0
    assert 0 <= low <= median <= high
    ratio, low, high = process["new"]["ratio"]
    assert 0 <= low <= ratio <= high
    threads = report["threads"]["cpu_ms_per_frame"]
    assert {"loop", "camera"} <= set(threads) and threads["all"] > 0
    assert report["soak"]["frames"] == 20


def test_bench_times_another_checkouts_renderer() -> None:
    """--old with a checkout whose frames are planes (this one, here)."""
    report = bench("--sizes", "320x240", "--runs", "2", "--old", str(ROOT), timeout=180)
    for config in ("default", "4 variants"):
        row = report["sizes"]["320x240"][config]
        for job in ("old", "old, no lores"):
            median, low, high = row[job]["cpu_ms"]
            assert 0 < low <= median <= high


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
