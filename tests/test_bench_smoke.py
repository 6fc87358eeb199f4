"""Each bench script runs end to end with tiny sizes against the real Cyrus, so the
benchmarks cannot rot. Their figures are printed, never asserted as timings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom_dev.realserver import CyrusServer

pytestmark = pytest.mark.real

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_bench(cyrus: CyrusServer, script: str, *args: str) -> str:
    """Run a bench script on the session's Cyrus (reused, never stopped by the script)."""
    env = {
        **os.environ,
        "MAILROOM_TEST_CYRUS_DIR": str(cyrus.dir),
        "MAILROOM_TEST_CYRUS_HTTP_PORT": str(cyrus.http_port),
        "MAILROOM_TEST_CYRUS_IMAP_PORT": str(cyrus.imap_port),
        "MAILROOM_TEST_CYRUS_LMTP_PORT": str(cyrus.lmtp_port),
    }
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


@pytest.mark.timeout(600)
def test_every_bench_script_runs_with_tiny_sizes(cyrus: CyrusServer) -> None:
    idle = run_bench(cyrus, "idle_pass.py", "--runs", "2", "--screener", "3")
    assert "idle pass" in idle
    assert "contract (an idle pass after start-up: 1 JMAP, 0 CardDAV): met" in idle

    backlog = run_bench(
        cyrus, "sender_backlog.py", "--sizes", "3,20", "--runs", "1", "--forced-limit", "8"
    )
    rows = [line.split() for line in backlog.splitlines() if line.startswith("forced 8")]
    assert [r[2] for r in rows] == ["3", "20"]  # N of each row
    assert int(rows[1][3]) > int(rows[0][3])  # more pages and chunks: more JMAP requests

    judged = run_bench(cyrus, "routing_check.py", "--emails", "4", "--senders", "2", "--runs", "1")
    assert "check's routing judgment: 4 emails from 2 strangers" in judged
    (row,) = [line.split() for line in judged.splitlines() if line.startswith("4 ")]
    assert row[:5] == ["4", "4", "1", "2", "1"]  # read, judged, problems, JMAP, CardDAV
    routed = run_bench(cyrus, "routing.py", "--trials", "2")
    assert "rules installed (routed to Feed)" in routed
    assert sum(line.rstrip().endswith("yes") for line in routed.splitlines()) == 2

    many = run_bench(cyrus, "many_senders.py", "--senders", "3", "--per-sender", "2", "--runs", "1")
    assert "Many senders" in many
    assert "JMAP/sender" in many
