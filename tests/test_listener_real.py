"""The listener against the real Cyrus EventSource (push-capable build)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from realserver import Account, CyrusServer

from mailroom.service.listener import ListenerOptions, run
from mailroom.service.status import read_status
from mailroom.service.wake import Wake, WakeReceiver

pytestmark = [pytest.mark.real, pytest.mark.push]

DEADLINE = 15.0  # Cyrus pushes within ~1 s (jmap_pushpoll: 1); this only bounds a failure


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mrr", dir="/tmp"))  # a Unix socket path is short
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def wakes(state_dir: Path) -> Iterator[WakeReceiver]:
    receiver = WakeReceiver(state_dir / "wake.sock")
    yield receiver
    receiver.close()


@pytest.fixture
def listening(account: Account, state_dir: Path, cyrus: CyrusServer) -> Iterator[None]:
    if not cyrus.eventsource:
        pytest.fail("this Cyrus build answers the EventSource with 204; start it with push")
    stop = threading.Event()
    options = ListenerOptions(account.session_url, account.token, state_dir)
    thread = threading.Thread(target=run, args=(options, stop))
    thread.start()
    yield
    stop.set()
    thread.join(5)
    assert not thread.is_alive(), "the listener did not stop"


def next_wake(receiver: WakeReceiver, reason: str, seen: list[Wake]) -> Wake:
    """The first wake with ``reason`` after those in ``seen`` (which it extends)."""
    deadline = time.monotonic() + DEADLINE
    start = len(seen)
    while time.monotonic() < deadline:
        seen.extend(receiver.wait(0.1))
        for w in seen[start:]:
            if w.reason == reason:
                return w
    raise AssertionError(f"no {reason!r} wake within {DEADLINE} s; got {seen[start:]}")


@pytest.mark.usefixtures("listening")
def test_connect_wake_then_email_state_wakes_on_delivery_and_move(
    account: Account, wakes: WakeReceiver, state_dir: Path
) -> None:
    seen: list[Wake] = []
    connect = next_wake(wakes, "connect", seen)
    assert connect == Wake(changed={}, reason="connect")
    assert seen[0] == connect  # the catch-up wake comes first

    email_id = account.deliver("Screener", subject="push me")
    delivered = next_wake(wakes, "state", seen)
    assert "Email" in delivered.changed

    inbox = account.role_ids()["inbox"]
    screener = account.mailbox_ids()["Screener"]
    account.call(
        "Email/set",
        {"update": {email_id: {f"mailboxIds/{screener}": None, f"mailboxIds/{inbox}": True}}},
    )
    moved = next_wake(wakes, "state", seen)
    assert moved.changed["Email"] != delivered.changed["Email"]

    status = read_status(state_dir / "listener.json")
    assert status is not None
    assert status["status"] == "connected"
    assert status["last_event_at"] is not None
    assert account.token not in (state_dir / "listener.json").read_text()
