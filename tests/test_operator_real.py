"""What an operator sees of a real `mailroom run` on the real Cyrus: GET /metrics after a
triage, and readiness with a token the server refuses (slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailroom.ops import status
from mailroom.ops.status import NotRunning, programs
from mailroom.version import version
from mailroom_dev.realserver import Account, CyrusServer
from mailroom_dev.servicebox import (
    PROGRAMS,
    READY_TIMEOUT,
    ServiceBox,
    free_port,
    service_env,
    stop_session,
)
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]
TRIAGE_DEADLINE = 60.0  # push arrives within ~1 s; this only bounds a failure on a busy machine
REFUSED_WITHIN = 10.0  # the bound, from the moment health answers


@pytest.fixture
def box(account: Account, cyrus: CyrusServer) -> Box:
    if not cyrus.eventsource:
        pytest.fail("this Cyrus build answers the EventSource with 204; start it with push")
    return Box.create(account)


def scrape(service: ServiceBox) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """GET /metrics read with prometheus-client's parser: {sample name: {labels: value}}."""
    resp = httpx.get(f"http://127.0.0.1:{service.port}/metrics", timeout=10)
    assert resp.status_code == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


@pytest.mark.timeout(300)
def test_metrics_carry_the_counters_after_a_triage(box: Box) -> None:
    address = "ops@metrics.example"
    with ServiceBox.running(box) as service:
        labelled = box.deliver(from_addr=address, subject="one")
        other = box.deliver(from_addr=address, subject="two")
        box.label(labelled, "@ToFeed")
        wait_until(
            lambda: box.where(labelled) == box.where(other) == {"Feed"},
            "the sender triaged",
            TRIAGE_DEADLINE,
        )
        triaged = (("category", "Feed"),)
        m = wait_until(  # the status file is written once the pass has returned
            lambda: (found := scrape(service)).get("mailroom_senders_triaged_total") and found,
            "the triage counted",
            TRIAGE_DEADLINE,
        )
        assert box.groups_of(address) == {"Feed", "Mailroom"}
        passes = service.passes()
    assert m["mailroom_senders_triaged_total"] == {triaged: 1.0}
    assert m["mailroom_emails_moved_total"] == {(): 2.0}
    assert m["mailroom_passes_total"][(("trigger", "startup"),)] == 1.0
    by_trigger = {labels[0][1]: v for labels, v in m["mailroom_passes_total"].items()}
    completed = {t: float(sum(p.get("trigger") == t for p in passes)) for t in by_trigger}
    assert by_trigger == completed  # every poll_completed line of the log, by trigger
    assert m["mailroom_pass_failures_total"] == {(): 0.0}
    assert m["mailroom_parked_senders"] == {(): 0.0}
    assert m["mailroom_ready"] == {(): 1.0}
    assert m["mailroom_build_info"] == {(("version", version()),): 1.0}
    assert m["mailroom_eventsource_state"][(("state", "connected"),)] == 1.0
    assert m["mailroom_eventsource_reconnects_total"] == {(): 0.0}
    assert m["mailroom_last_pass_age_seconds"][()] >= 0


@pytest.mark.timeout(300)
def test_a_refused_token_is_503_with_the_reason_and_status_exits_non_zero(box: Box) -> None:
    with ServiceBox.running(box, ready=False, MAILROOM_JMAP_TOKEN="wrong-token-0123") as service:
        wait_until(lambda: service.healthz()[0], "health to answer", READY_TIMEOUT)

        def refused() -> dict[str, Any] | None:
            code, body = service.healthz()  # 503 "no worker status" until the worker writes
            reason = str(body.get("reason"))
            return body if code == 503 and reason.startswith("authentication failed") else None

        body = wait_until(refused, "/healthz 503 for the refused token", REFUSED_WITHIN)
        done = subprocess.run(
            [sys.executable, "-m", "mailroom", "status"],
            env=service.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert body["status"] == "failing"
    assert body["reason"].startswith("authentication failed: the JMAP server rejected")
    assert "wrong-token-0123" not in str(body)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "/healthz: 503 failing" in done.stdout
    assert "  reason: authentication failed: the JMAP server rejected" in done.stdout


# -- `mailroom status` finds what runs -----------------------------------------------------------


def status_of(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailroom", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(300)
def test_status_finds_a_running_demo(box: Box, tmp_path: Path) -> None:
    demo_dir = Path(tempfile.mkdtemp(prefix="mrdemo", dir="/tmp"))  # short: sockets live here
    state_dir = demo_dir / "state"  # where `mailroom demo` runs `mailroom run`
    port = free_port()
    env = service_env(box, state_dir, port, {"MAILROOM_POLL_INTERVAL": "600"})
    demo = ServiceBox(box, state_dir, env, port, demo_dir / "demo.out")
    state_dir.mkdir(mode=0o700)
    try:
        demo.start()
        demo.wait_ready()
        supervisord = demo.supervisord_pid()
        elsewhere = {  # the user's own configuration: another state dir, nothing runs there
            **env,
            "MAILROOM_STATE_DIR": str(tmp_path / "mine"),
            "MAILROOM_DEMO_DIR": str(demo_dir),
        }
        done = status_of(elsewhere)
    finally:
        demo.stop()
        print(demo.output_text()[-6000:])
        shutil.rmtree(demo_dir, ignore_errors=True)
    lines = done.stdout.splitlines()
    assert lines[0] == f"mailroom demo on {state_dir}: supervisord pid {supervisord}"
    assert [line.split()[:2] for line in lines[1:4]] == [
        [program, "RUNNING"] for program in PROGRAMS
    ]
    assert lines[4].startswith("/healthz: 200 ok; last pass ")
    assert done.returncode == 0, done.stdout + done.stderr


GROUP_CONF = """\
; a system supervisord with the deploy snippet's group (deploy/supervisor/mailroom.conf)
[unix_http_server]
file={d}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}/log

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:other]
command=/bin/sleep 1000

[group:mailroom]
programs=mailroom-listener,mailroom-worker,mailroom-health
{programs}
"""
PROGRAM = """
[program:mailroom-{name}]
command=mailroom-lifeline {command}
startsecs=0
stopasgroup=true
killasgroup=true
redirect_stderr=true
"""


@pytest.mark.timeout(300)
def test_status_finds_the_group_under_a_system_supervisord(
    box: Box, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    system_dir = Path(tempfile.mkdtemp(prefix="mrsys", dir="/tmp"))  # short: sockets live here
    (system_dir / "log").mkdir()
    state_dir = system_dir / "state"
    programs_text = "".join(
        PROGRAM.format(name=name, command=command)
        for name, command in (("listener", "listen"), ("worker", "work"), ("health", "health"))
    )
    conf = system_dir / "supervisord.conf"
    conf.write_text(GROUP_CONF.format(d=system_dir, programs=programs_text))
    port = free_port()
    env = service_env(box, state_dir, port, {"MAILROOM_POLL_INTERVAL": "600"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
    socket = system_dir / "supervisor.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def ready() -> bool:
            try:
                _, progs = programs(socket)
                body = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
            except (NotRunning, httpx.TransportError, ValueError):
                return False
            return (
                all(p.state == "RUNNING" for p in progs)
                and body.get("status") == "ok"
                and body.get("last_poll_trigger") is not None
            )

        wait_until(ready, "the group RUNNING, /healthz ok after the startup pass", READY_TIMEOUT)
        supervisord = programs(socket)[0]
        done = status_of(env, "--supervisor-socket", str(socket))
        # without the option: found on a well-known socket (here, the test's own)
        monkeypatch.setattr(status, "WELL_KNOWN_SOCKETS", (tmp_path / "none.sock", socket))
        found, _ = status.look(status.places(state_dir, tmp_path / "demo", None))
    finally:
        stop_session(proc)
        shutil.rmtree(system_dir, ignore_errors=True)
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"mailroom (mailroom:*) under the supervisord on {socket}: pid {supervisord}; "
        f"status files in {state_dir}"
    )
    # the group's programs only: `other` is not mailroom's
    assert [line.split()[:2] for line in lines[1:4]] == [
        [f"mailroom:mailroom-{program}", "RUNNING"] for program in PROGRAMS
    ]
    assert lines[4].startswith("/healthz: 200 ok; last pass ")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(f.place.kind, f.place.socket, f.state_dir) for f in found] == [
        ("system", socket, state_dir)
    ]
    assert [p.name for p in found[0].programs] == [f"mailroom:mailroom-{p}" for p in PROGRAMS]
