"""Check that the presign benchmark script runs on a tiny input and prints its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys

from tests import secret_scan
from tests.conftest import REPO_ROOT

#: Upper bound of the tiny run, in seconds, so a hang fails the test instead of blocking the suite.
SMOKE_TIMEOUT = 300

TINY_RUN = [
    "--paths",
    "60",
    "--calls",
    "2",
    "--window",
    "0.2",
    "--batch-size",
    "10",
    "--overhead-calls",
    "4",
    "--memory-small",
    "20",
    "--memory-large",
    "50",
    "--json",
]

NUMBER_KEYS = (
    "throughput_ratio",
    "overhead_ratio",
    "peak_rss_mb_10k",
    "peak_rss_mb_1m",
    "rss_growth_mb",
    "paths_per_second",
    "ceiling_paths_per_second",
)
INTEGER_KEYS = ("token_calls", "rate_limit_errors", "cpu_count", "presigned_paths")
TEXT_KEYS = ("python_version", "airflow_version", "date")


class TestBenchmarkSmoke:
    def test_tiny_run_reports(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.presign", *TINY_RUN],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=SMOKE_TIMEOUT,
            check=False,
        )
        secret_scan.add_text(result.stdout + result.stderr)
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        for key in NUMBER_KEYS:
            assert isinstance(report[key], float), key
        for key in INTEGER_KEYS:
            assert type(report[key]) is int, key
        for key in TEXT_KEYS:
            assert isinstance(report[key], str), key
        assert report["presigned_paths"] == 60
        assert report["memory_output_verified"] is True
        assert "Signature=" not in result.stdout + result.stderr
