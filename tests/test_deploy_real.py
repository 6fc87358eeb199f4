"""Deployment against the real Cyrus: the supervisor snippet under a system-style
supervisord, and one triaging worker per account whatever the state dir (slow)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailroom_dev.realserver import Account
from mailroom_dev.servicebox import ServiceBox, free_port, json_objects, program_states, service_env
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
SNIPPET = REPO / "deploy" / "supervisor" / "mailroom.conf"
SNIPPET_STATE_DIR = "/var/lib/mailroom"

SYSTEM_CONF = """\
; a system supervisord as Debian ships it, in miniature: its own socket and logs,
; another program, and conf.d included
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

[supervisorctl]
serverurl=unix://{d}/supervisor.sock

[program:other]
command=/bin/sleep 1000

[include]
files={d}/conf.d/*.conf
"""


def healthz(port: int) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json())
    except (httpx.TransportError, ValueError):
        return {}


@pytest.fixture
def system_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mrsys", dir="/tmp"))  # short: sockets live here
    (path / "log").mkdir()
    (path / "conf.d").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(240)
def test_the_snippet_under_a_system_supervisord_triages_a_label(
    account: Account, system_dir: Path
) -> None:
    box = Box.create(account)
    state_dir = system_dir / "state"
    text = SNIPPET.read_text()
    assert text.count(f'MAILROOM_STATE_DIR="{SNIPPET_STATE_DIR}"') == 3
    assert text.count("\ndirectory=/etc/mailroom\n") == 3
    assert text.count("\nuser=mailroom\n") == 3
    # the operator's setup, in miniature: the credentials in the one .env (0600) of the
    # programs' directory, the state dir; the dedicated user is us (no useradd in a test)
    etc = system_dir / "etc"
    etc.mkdir()
    port = free_port()
    full = service_env(box, state_dir, port, {"MAILROOM_POLL_INTERVAL": "600"})
    credentials = {k: v for k, v in full.items() if k.startswith("MAILROOM_")}
    del credentials["MAILROOM_STATE_DIR"]  # the snippet sets it
    (etc / ".env").write_text("".join(f"{k}={v}\n" for k, v in credentials.items()))
    (etc / ".env").chmod(0o600)
    me = pwd.getpwuid(os.getuid()).pw_name
    (system_dir / "conf.d" / "mailroom.conf").write_text(
        text.replace(SNIPPET_STATE_DIR, str(state_dir))
        .replace("/etc/mailroom", str(etc))
        .replace("\nuser=mailroom\n", f"\nuser={me}\n")
    )
    (system_dir / "supervisord.conf").write_text(SYSTEM_CONF.format(d=system_dir))
    env = {k: v for k, v in full.items() if not k.startswith("MAILROOM_")}  # none given
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"
    conf = system_dir / "supervisord.conf"
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: (
                healthz(port).get("eventsource", {}).get("status") == "connected"
                and healthz(port).get("last_poll_trigger") is not None
            ),
            "the snippet's programs up: push connected, the startup pass done",
            120,
        )
        expected = {
            "other": "RUNNING",
            "mailroom:mailroom-health": "RUNNING",
            "mailroom:mailroom-listener": "RUNNING",
            "mailroom:mailroom-worker": "RUNNING",
        }

        def states() -> dict[str, str]:
            return {name: state for name, (state, _) in program_states(system_dir).items()}

        # `other` (supervisord's default startsecs=1) may still be STARTING: wait, then check
        wait_until(lambda: states() == expected, "every program RUNNING", 30)
        assert states() == expected
        mail = box.deliver(from_addr="sys@supervisor.example", subject="from conf.d")
        box.label(mail, "@ToFeed")
        wait_until(lambda: box.where(mail) == {"Feed"}, "the label acted on", 120)
        assert box.groups_of("sys@supervisor.example") == {"Feed", "Mailroom"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        for log in sorted((system_dir / "log").glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
    assert proc.returncode == 0


@pytest.mark.timeout(300)
def test_two_state_dirs_on_one_account_give_one_triaging_worker(account: Account) -> None:
    box = Box.create(account)
    with ServiceBox.running(box) as first:
        second_dir = Path(tempfile.mkdtemp(prefix="mrtw", dir="/tmp"))
        try:
            env = service_env(box, second_dir, free_port(), {"MAILROOM_POLL_INTERVAL": "600"})
            second = subprocess.run(
                [sys.executable, "-m", "mailroom", "run"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=second_dir,
            )
        finally:
            shutil.rmtree(second_dir, ignore_errors=True)
        assert second.returncode == 78
        out = second.stdout + second.stderr
        assert (
            "mailroom run: worker exited with status 78 (a configuration error, its message "
            "is above); everything was stopped"
        ) in out.splitlines()
        worker_pid = first.worker_status()["pid"]
        assert (
            f"config error: another mailroom worker (pid {worker_pid}, state dir "
            f"{first.state_dir}) already triages this account"
        ) in out
        second_events = [e for line in out.splitlines() for e in json_objects(line)]
        assert not [e for e in second_events if e.get("event") == "poll_completed"]

        mail = box.deliver(from_addr="one@worker.example", subject="only one")
        box.label(mail, "@ToFeed")
        wait_until(lambda: box.where(mail) == {"Feed"}, "the first service to act on the label")
        assert first.all_running()
        assert first.worker_status()["pid"] == worker_pid  # never disturbed
