"""`mailroom demo --once` as a new user runs it: a server, mail, the service, one triage,
the rules routing new mail, and `check` naming a missing rule."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)  # supervisord children append
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
