"""One worker per account, whatever the spelling: real `mailroom work` processes on a
real Cyrus account, the second one with another XDG_RUNTIME_DIR, another HOME and
another state dir, and the session URL as written or without its trailing slash."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom.jmap.client import JmapClient
from mailroom.run import accountlock
from mailroom.run.statefiles import read_status
from mailroom.service.wake import Wake, WakeSender
from mailroom_dev.realserver import Account
from mailroom_dev.servicebox import stop_session
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]


@pytest.fixture
def place() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mral", dir="/tmp") as d:  # short: AF_UNIX
        yield Path(d)


def worker_env(account: Account, place: Path, name: str, session_url: str) -> dict[str, str]:
    """A worker's environment of its own: state dir, HOME and XDG_RUNTIME_DIR."""
    for sub in ("state", "home", "runtime"):
        (place / name / sub).mkdir(mode=0o700, parents=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "XDG_"))}
    return {
        **base,
        **account.env(),
        "MAILROOM_JMAP_SESSION_URL": session_url,
        "MAILROOM_STATE_DIR": str(place / name / "state"),
        "HOME": str(place / name / "home"),
        "XDG_RUNTIME_DIR": str(place / name / "runtime"),
        "MAILROOM_POLL_INTERVAL": "600",
        "MAILROOM_LOG_FORMAT": "json",
    }


def lock_file(account: Account) -> Path:
    with JmapClient(account.session_url, account.token) as client:
        session = client.session
    return accountlock.lock_dir(os.getuid()) / accountlock.account_key(session)


@pytest.mark.parametrize("spelling", ["the same URL", "no trailing slash"])
def test_a_second_worker_on_the_same_account_spelled_differently_is_refused(
    account: Account, place: Path, spelling: str
) -> None:
    box = Box.create(account)
    url = account.session_url  # http://127.0.0.1:<port>/jmap/
    other = url.rstrip("/") if spelling == "no trailing slash" else url
    first_env = worker_env(account, place, "first", url)
    log = (place / "first.log").open("wb")
    first = subprocess.Popen(
        [sys.executable, "-m", "mailroom", "work"],
        env=first_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        status_file = place / "first" / "state" / "worker.json"
        wait_until(
            lambda: (read_status(status_file) or {}).get("last_successful_poll"),
            "the first worker's first pass (the account lock taken)",
            60,
        )
        assert lock_file(account).exists()

        second = subprocess.run(
            [sys.executable, "-m", "mailroom", "work"],
            env=worker_env(account, place, "second", other),
            capture_output=True,
            text=True,
            timeout=120,
        )

        assert second.returncode == 78
        assert (
            f"config error: another mailroom worker (pid {first.pid}, state dir "
            f"{place / 'first' / 'state'}) already triages this account; two workers would "
            "race: stop that one, or point this one at another account"
        ) in second.stderr.splitlines()
        assert '"poll_completed"' not in second.stdout + second.stderr  # it never triaged
        assert first.poll() is None  # the first one goes on, and triages
        mail = box.deliver(from_addr="only@one.example", subject="one worker")
        box.label(mail, "@ToFeed")
        sender = WakeSender(place / "first" / "state" / "wake.sock")
        try:
            assert sender.send(Wake(changed={}, reason="connect"))
        finally:
            sender.close()
        wait_until(lambda: box.where(mail) == {"Feed"}, "the first worker's pass", 60, every=1)
    finally:
        stop_session(first)
        log.close()
        print((place / "first.log").read_text(errors="replace")[-4000:])
    assert first.returncode == 0
    assert not lock_file(account).exists()  # removed by the worker that held it
