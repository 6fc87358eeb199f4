"""The service benchmarks run end to end with tiny sizes against the real Cyrus, so they
cannot rot. Their figures are printed, never asserted as timings; what is asserted is
what they count (passes, requests) and that latency.py leaves the account clean."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from mailroom_dev.realserver import Account, CyrusServer, vcard_props
from mailroom_dev.triagebox import Box

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_script(script: str, env: Mapping[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def on_test_cyrus(cyrus: CyrusServer) -> dict[str, str]:
    """The caller's environment pointing the scripts at the session's Cyrus (reused)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(
        MAILROOM_TEST_CYRUS_DIR=str(cyrus.dir),
        MAILROOM_TEST_CYRUS_HTTP_PORT=str(cyrus.http_port),
        MAILROOM_TEST_CYRUS_IMAP_PORT=str(cyrus.imap_port),
        MAILROOM_TEST_CYRUS_LMTP_PORT=str(cyrus.lmtp_port),
    )
    return env


def rows(output: str, first: str) -> list[list[str]]:
    return [line.split("  ") for line in output.splitlines() if line.startswith(first)]


@pytest.mark.timeout(900)
def test_latency_on_an_account_from_the_environment_counts_one_pass_and_cleans_up(
    account: Account,
) -> None:
    box = Box.create(account)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(account.env())
    modes = ("--modes", "default,burst,off", "--bursts", "1")
    args = ("--trials", "1", "--fallback-interval", "2", *modes)
    out = run_script("latency.py", env, *args)
    assert "passes per single label (must be 1): met" in out
    assert "push passes per burst of labels within 1 s (at most 3)" in out
    assert len(rows(out, "defaults: push")) == len(rows(out, "push off")) == 1
    assert "cleaned up: 12 emails, 12 contacts" in out  # 1 + 10 (the burst) + 1 trials
    bench_mail = [e for e in account.emails() if "mailroom-bench" in (e.from_email or "")]
    assert bench_mail == []
    assert not any(
        "mailroom-bench" in email
        for text in account.cards()
        for email in vcard_props(text).get("EMAIL", [])
    )
    assert all(members == set() for members in account.groups().values())
    assert box.settings.screener_mailbox in account.mailbox_ids()


def test_latency_refuses_a_server_off_loopback_without_i_understand() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(
        MAILROOM_JMAP_TOKEN="not-used",
        MAILROOM_JMAP_SESSION_URL="https://jmap.example.invalid/jmap/session",
    )
    proc = subprocess.run(
        [sys.executable, str(BENCH / "latency.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "not on loopback" in proc.stderr
    assert "--i-understand" in proc.stderr


@pytest.mark.timeout(600)
def test_idle_hour_counts_the_idle_passes_at_the_server(cyrus: CyrusServer) -> None:
    out = run_script("idle_hour.py", on_test_cyrus(cyrus), "--window", "7", "--poll-interval", "2")
    (api,) = rows(out, "POST /jmap/")
    posts = int([c for c in api if c.strip()][1])
    assert posts >= 2  # a fallback pass every 2 s, one request each
    assert "JMAP requests besides the stream:" in out
    assert "fallback" in out


@pytest.mark.timeout(600)
def test_service_memory_reads_every_process_mailroom_run_starts(cyrus: CyrusServer) -> None:
    out = run_script("service_memory.py", on_test_cyrus(cyrus), "--samples", "2", "--every", "0.2")
    processes = ("mailroom run = supervisord", "health", "listener", "worker")
    for process in (*processes, "all "):
        (row,) = rows(out, process)
        rss = [c for c in row if c.strip()][-2]
        assert float(rss.split()[0]) > 0
    assert rows(out, "event listener") == []  # the FATAL watch runs inside supervisord


@pytest.mark.timeout(600)
def test_startup_times_the_first_pass_and_the_waiting_label(cyrus: CyrusServer) -> None:
    out = run_script("startup.py", on_test_cyrus(cyrus), "--runs", "1")
    for event in ("health up", "worker up", "first pass start", "first pass done", "label triaged"):
        (row,) = rows(out, event)
        assert float([c for c in row if c.strip()][-1].split()[0]) > 0


def cells(row: list[str]) -> list[str]:
    return [c.strip() for c in row if c.strip()]


@pytest.mark.timeout(600)
def test_screening_prints_label_to_triaged_and_the_passes_of_each_round(
    cyrus: CyrusServer,
) -> None:
    args = ("--rounds", "1", "--senders", "3", "--pace", "1.5")
    out = run_script("screening.py", on_test_cyrus(cyrus), *args)
    assert "A person screening: a label every 1.5 s, 3 senders a round" in out
    (row,) = rows(out, "defaults (debounce_seconds 0.5)")
    assert cells(row)[1] == "1 x 3"
    assert 1 <= int(cells(row)[-2]) <= 3  # triaging passes: at most one a label
    assert len(rows(out, "debounce_seconds 3 (the old window)")) == 1
    assert "cleaned up: 6 emails, 6 contacts" in out


@pytest.mark.timeout(600)
def test_critical_path_counts_fewer_round_trips_than_requests(cyrus: CyrusServer) -> None:
    out = run_script("critical_path.py", on_test_cyrus(cyrus), "--passes", "1", "--trials", "1")
    assert "One pass through a proxy adding 40 ms each way" in out
    (line,) = [s for s in out.splitlines() if s.startswith("critical path: ")]
    # scan, Screener listing, REPORT, provenance, contact, group, 2 x Email/set (the
    # guard starts from the scan's Mailbox/get: no read of its own); the listing goes
    # beside the REPORT, the first filing write beside the CardDAV writes
    assert line == "critical path: 6 round trips, 8 requests"
    assert "(* on the critical path)" in out
    assert "`mailroom run` through the proxy (40 ms each way), label -> triaged" in out
