"""The listener against the real Cyrus EventSource (push-capable build)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom.jmap.client import JmapClient
from mailroom.jmap.session import expand_event_source_url
from mailroom.run.statefiles import read_status
from mailroom.service.listener import ListenerOptions, run
from mailroom.service.sse import StateChange
from mailroom.service.stream import EventStream
from mailroom.service.wake import Wake, WakeReceiver
from mailroom_dev.realserver import Account, CyrusServer
from mailroom_dev.wait import wait_until

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


class Recorder:
    """A StreamHandler that keeps what one connection reported."""

    def __init__(self) -> None:
        self.opened_resumed: list[bool] = []
        self.changes: list[StateChange] = []

    def opened(self, url: str, resumed: bool) -> None:
        self.opened_resumed.append(resumed)

    def server_retry(self, retry_ms: int) -> None:
        pass

    def state_changed(self, change: StateChange) -> None:
        self.changes.append(change)

    def event_seen(self) -> None:
        pass


def test_a_stream_resumed_with_last_event_id_replays_the_change_made_in_the_gap(
    account: Account, cyrus: CyrusServer
) -> None:
    """What lets the listener skip the catch-up pass after a routine recycle: Cyrus
    replays, on the resumed stream, a change made while no stream was open."""
    if not cyrus.eventsource:
        pytest.fail("this Cyrus build answers the EventSource with 204; start it with push")
    with JmapClient(account.session_url, account.token) as client:
        session = client.session
    url = expand_event_source_url(session, closeafter="state", ping=30)
    assert url is not None
    stream = EventStream(
        account.token, connect_timeout=10, read_timeout=DEADLINE, stop=threading.Event()
    )
    try:
        first = Recorder()
        reader = threading.Thread(target=stream.read, args=(url, session.account_id, first))
        reader.start()
        # the stream's 200 is an outside effect: poll for it
        wait_until(lambda: first.opened_resumed, "the stream to open", DEADLINE, every=0.02)
        email_id = account.deliver("Screener", subject="before the gap")
        reader.join(DEADLINE)  # closeafter=state: the server ends the stream after one event
        assert not reader.is_alive(), "no state event for the delivery"
        seen_id = stream.last_event_id
        assert seen_id is not None
        assert first.changes

        # the gap: no stream is open while the email moves
        inbox = account.role_ids()["inbox"]
        screener = account.mailbox_ids()["Screener"]
        moved = account.call(
            "Email/set",
            {"update": {email_id: {f"mailboxIds/{screener}": None, f"mailboxIds/{inbox}": True}}},
        )

        second = Recorder()
        end = stream.read(url, session.account_id, second)
    finally:
        stream.close()
    assert end.connected
    assert end.error is None
    assert second.opened_resumed == [True]  # it sent Last-Event-ID
    assert [c.changed.get("Email") for c in second.changes] == [moved["newState"]]
