"""The benchmark scripts run (their figures are recorded in docs/, not asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT


def run_script(name: str, *args: str) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    return json.loads(last)  # type: ignore[no-any-return]


def test_bench_s3_quick() -> None:
    out = run_script("bench_s3.py", "--quick")
    assert out["bench"] == "s3"
    assert out["speedup"]["0ms"]["ours_median_ms"] > 0
