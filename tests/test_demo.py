"""`mailroom demo --once` as a new user runs it: a server, mail, the service, one triage,
the rules routing new mail, and `check` naming a missing rule."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(600)
def test_demo_shows_the_whole_loop_and_stops_everything(tmp_path: Path) -> None:
    demo_dir = Path("/tmp") / f"mr-demo-{os.getpid()}"  # short: Unix socket paths are limited
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")},
        "MAILROOM_DEMO_DIR": str(demo_dir),
        "MAILROOM_HEALTH_PORT": str(free_port()),
        "CYRUS_PEER_HTTP_PORT": str(free_port()),
        "CYRUS_PEER_IMAP_PORT": str(free_port()),
        "CYRUS_PEER_LMTP_PORT": str(free_port()),
    }
    log = tmp_path / "demo.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # `> demo.log`: whole lines too
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mailroom", "demo", "--once"],
            env=env,
            stdout=fd,
            stderr=subprocess.STDOUT,
            timeout=540,
            check=False,
        )
        server_left_running = (demo_dir / "cyrus" / "master.pid").exists()
    finally:
        os.close(fd)
        subprocess.run(
            ["bash", "dev/cyrus/stop.sh", str(demo_dir / "cyrus"), "--purge"], check=False
        )
        shutil.rmtree(demo_dir, ignore_errors=True)
    out = log.read_text()
    assert done.returncode == 0, out
    assert "filled the Screener: 11 emails from 5 senders" in out
    assert "the email is now in ['Feed']" in out
    # the loop: the server's rules route the triaged sender's next email, and a stranger's
    assert out.count("the server's rules put it in ['Feed']") == 1
    assert out.count("the server's rules put it in ['Screener']") == 1
    # check catches a missing rule: the sender's next email left in the Inbox past the rules
    (routing,) = [line for line in out.splitlines() if line.startswith("problem: routing:")]
    assert routing.startswith(
        "problem: routing: the newest email from contact group Feed (news@paperboy.example, "
    )
    assert "is in Inbox, not Feed: the rule for contact group Feed seems missing;" in routing
    assert "trigger=push" in out
    assert "senders_triaged=1" in out
    assert not server_left_running  # the demo stops the server it started


def left_in_session(sid: int) -> list[str]:
    """The command lines of the processes still in session ``sid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session
            found.append(cmdline)
    return found


def port_free(port: int) -> bool:
    """Nothing listens on it (connections in TIME_WAIT from the demo do not count, as
    for any server that sets SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(600)
def test_ctrl_c_on_a_demo_piped_into_tee_leaves_nothing_running(tmp_path: Path) -> None:
    """`make run 2>&1 | tee demo.log`, then Ctrl-C: the terminal sends SIGINT to the whole
    foreground group, tee dies at once, and the demo must still stop what it started."""
    demo_dir = Path("/tmp") / f"mr-demo-{os.getpid()}-c"
    ports = {
        "MAILROOM_HEALTH_PORT": free_port(),
        "CYRUS_PEER_HTTP_PORT": free_port(),
        "CYRUS_PEER_IMAP_PORT": free_port(),
        "CYRUS_PEER_LMTP_PORT": free_port(),
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")},
        "MAILROOM_DEMO_DIR": str(demo_dir),
        **{k: str(v) for k, v in ports.items()},
    }
    log = tmp_path / "demo.log"
    shell = f"{sys.executable} -m mailroom demo 2>&1 | tee {log} >/dev/null"
    group = subprocess.Popen(["bash", "-c", shell], env=env, start_new_session=True)
    try:
        wait_until(
            lambda: log.exists() and "Press Ctrl-C" in log.read_text(),
            "the demo's instructions",
            480,
        )
        os.killpg(group.pid, signal.SIGINT)  # as the terminal does
        group.wait(timeout=10)  # tee is gone, the pipe is broken: the demo goes on stopping
        wait_until(lambda: not left_in_session(group.pid), "every process of the demo", 120)
        assert left_in_session(group.pid) == []
        assert not (demo_dir / "cyrus" / "master.pid").exists()  # the server was stopped
        assert [p for p, n in ports.items() if not port_free(n)] == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group.pid, signal.SIGKILL)
        subprocess.run(
            ["bash", "dev/cyrus/stop.sh", str(demo_dir / "cyrus"), "--purge"], check=False
        )
        shutil.rmtree(demo_dir, ignore_errors=True)
    out = log.read_text()
    assert "password secret)" in out  # the demo's own throwaway password, as the README says
    assert "2-3 minutes, once" not in out  # the build is there: the tests built it
    assert '{"timestamp"' not in out  # one log format: the service's and setup's alike
    assert " CRIT " not in out
    assert " INFO " not in out  # supervisord's chatter (its format is the third one)
