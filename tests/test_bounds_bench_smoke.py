"""bench/bounds.py runs (tiny sizes) and prints its three figures, so it cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(120)
def test_the_bounds_bench_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "bench/bounds.py", "--runs", "3", "--probes", "20", "--warnings", "500"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert [line.split(" |")[0] for line in lines[2:4]] == ["| 1 KB", "| 1 MiB"]
    assert "health: 20 of 20 concurrent probes answered" in done.stdout
    assert "logs: 500 identical warnings -> 1 line(s)" in done.stdout
