"""`mailroom listen`: follow the JMAP EventSource and wake the worker on every change.

A thin loop over pure pieces: ``stream`` reads one connection (``sse`` decodes its
events), ``backoff`` decides what to do after it ends (delay, log level, whether a
catch-up pass is needed), ``listener_status`` shapes listener.json, written through
the same ``StatusFile`` as the worker's. The clock and the wait are injected (tests
step a fake clock). One helper thread, the keeper, refreshes the heartbeat every
``heartbeat_interval`` and, once ``stop`` is set, shuts the stream's socket down so
that a read blocked for up to 90 s returns at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from mailroom.errors import ConfigError, MailroomError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.session import expand_event_source_url
from mailroom.paths import ensure_state_dir
from mailroom.procsettings import ProcessSettings, missing_credentials
from mailroom.run.statefiles import HEARTBEAT_SECONDS, StatusFile, iso, read_status
from mailroom.run.stopping import stop_signals
from mailroom.service.backoff import Backoff, Reconnect, after_error, after_stream, needs_catch_up
from mailroom.service.sse import StateChange
from mailroom.service.stream import EventStream, safe_url
from mailroom.service.wake import Wake, WakeSender
from mailroom.statenames import LISTENER_FILE, WAKE_SOCKET

__all__ = [
    "ListenerOptions",
    "ListenerState",
    "listener_status",
    "main",
    "previous_reconnects",
    "run",
    "safe_url",
    "serve",
]

log = structlog.get_logger("mailroom.listener")

STOP_GRACE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    """Everything the loop needs; tests shorten the timeouts."""

    session_url: str
    token: str = field(repr=False)
    state_dir: Path
    read_timeout: float = 90.0
    connect_timeout: float = 10.0
    heartbeat_interval: float = HEARTBEAT_SECONDS
    backoff: Backoff = field(default_factory=Backoff)
    ping: int = 30
    clock: Callable[[], float] = time.monotonic  # for the stream's liveness deadline
    wall: Callable[[], float] = time.time  # for listener.json
    wait: Callable[[float], object] | None = None  # sleeps between attempts; stop.wait


@dataclass(frozen=True, slots=True)
class ListenerState:
    """What listener.json reports (POSIX timestamps here, ISO 8601 in the file)."""

    status: str = "not_started"
    connected_since: float | None = None
    last_event_at: float | None = None  # any event, pings included: the stream is alive
    reconnect_count: int = 0  # successful connects after the first
    last_error: str | None = None


def listener_status(state: ListenerState, *, now: float, pid: int, dropped: int) -> dict[str, Any]:
    """The listener.json document for ``state`` at ``now``."""
    return {
        "status": state.status,
        "connected_since": None if state.connected_since is None else iso(state.connected_since),
        "last_event_at": None if state.last_event_at is None else iso(state.last_event_at),
        "reconnect_count": state.reconnect_count,
        "last_error": state.last_error,
        "wakes_dropped": dropped,
        "pid": pid,
        "heartbeat": now,
    }


def previous_reconnects(doc: Mapping[str, Any] | None) -> int | None:
    """The reconnect count of a listener that ran before and connected, else None."""
    if not doc or not doc.get("connected_since"):
        return None
    count = doc.get("reconnect_count")
    return count if isinstance(count, int) and count >= 0 else 0


def main(settings: ProcessSettings) -> int:
    """`mailroom listen`: run until SIGTERM or SIGINT, then exit 0. ``settings`` come
    from ``procsettings.load_process_settings`` (checked there: the token is set)."""
    if settings.jmap_token is None:
        raise ConfigError(missing_credentials({}, ("jmap_token",)))
    state_dir = Path(settings.state_dir)
    ensure_state_dir(state_dir)
    token = settings.jmap_token.get_secret_value()
    options = ListenerOptions(settings.jmap_session_url, token, state_dir)
    with stop_signals() as stop:
        return serve(options, stop)


def serve(options: ListenerOptions, stop: threading.Event) -> int:
    """``run`` in a thread: returns within STOP_GRACE_SECONDS of ``stop``, whatever blocks."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(options, stop)), daemon=True)
    thread.start()
    while thread.is_alive() and not stop.wait(0.5):
        pass
    thread.join(STOP_GRACE_SECONDS)
    if result:
        return result[0]
    return 0 if stop.is_set() else 1  # 1: the loop died of an unexpected error


def run(options: ListenerOptions, stop: threading.Event) -> int:
    """The listener loop; returns 0 once ``stop`` is set."""
    listener = _Listener(options, stop)
    keeper = threading.Thread(target=listener.keep, name="listener-keeper", daemon=True)
    keeper.start()
    try:
        listener.loop()
    finally:
        listener.close()
    return 0


class _Listener:
    def __init__(self, options: ListenerOptions, stop: threading.Event) -> None:
        self.options = options
        self.stop = stop
        self.wait = options.wait or stop.wait
        self.sender = WakeSender(options.state_dir / WAKE_SOCKET)
        # A listener restarted after a crash goes on counting where the last one stopped,
        # and its first connect is a reconnect: the crash shows in reconnect_count.
        path = options.state_dir / LISTENER_FILE
        earlier = previous_reconnects(read_status(path))
        self.state = ListenerState(reconnect_count=earlier or 0)
        self.backoff = options.backoff
        self.last: Reconnect | None = None  # how the previous connection ended
        self.account_id = ""
        self.connects = 0 if earlier is None else earlier + 1
        self.closed = False
        self._lock = threading.Lock()
        self.status = StatusFile(path, self._document(), options.wall)
        self.events = EventStream(
            options.token,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            stop=stop,
            clock=options.clock,
        )
        self.update()

    def _document(self) -> dict[str, Any]:
        now = self.options.wall()
        return listener_status(self.state, now=now, pid=os.getpid(), dropped=self.sender.dropped)

    def update(self, **changes: Any) -> None:
        """Apply ``changes`` to the state and rewrite listener.json."""
        with self._lock:
            self.state = replace(self.state, **changes)
            if not self.status.update(**self._document()):
                # health will see a stale heartbeat; push goes on
                log.warning("listener_status_not_written", path=str(self.status.path))

    def keep(self) -> None:
        """Heartbeat until stopped, then cut the stream in progress."""
        while not self.stop.wait(self.options.heartbeat_interval) and not self.closed:
            self.update()
        self.events.abort()

    def close(self) -> None:
        # A stopped listener says so at once: health must not show push connected
        # until the heartbeat goes stale.
        self.update(status="disconnected", connected_since=None)
        self.closed = True
        self.events.close()
        self.sender.close()

    def loop(self) -> None:
        url = self.event_source_url()
        if url is None:
            self.idle()
            return
        log.info("eventsource_listener_started", url=safe_url(url))
        while not self.stop.is_set():
            self.update(status="connecting")
            if not self.attempt(url):
                self.idle()
                return

    def event_source_url(self) -> str | None:
        """The expanded eventSourceUrl; None when the server has none (or we stop)."""
        while not self.stop.is_set():
            self.update(status="connecting")
            try:
                with JmapClient(self.options.session_url, self.options.token) as client:
                    session = client.session
            except MailroomError as exc:
                self.pause("eventsource_session_failed", after_error(exc, self.backoff))
                continue
            self.account_id = session.account_id
            return expand_event_source_url(session, closeafter="no", ping=self.options.ping)
        return None

    def idle(self) -> None:
        if self.stop.is_set():
            return
        log.warning("eventsource_not_available", hint="no push; the worker's timer polls instead")
        self.update(status="not_available", connected_since=None)
        self.stop.wait()

    def attempt(self, url: str) -> bool:
        """One connection, to its end; False when the server has no EventSource (204)."""
        end = self.events.read(url, self.account_id, self)
        if not end.available:
            return False
        if not self.stop.is_set():
            self.pause("eventsource_disconnected", after_stream(end, self.backoff))
        return True

    def pause(self, event: str, decision: Reconnect) -> None:
        """Log how the attempt ended, report it in listener.json, wait the delay."""
        self.backoff, self.last = decision.backoff, decision
        fields: dict[str, Any] = {"next_delay": decision.delay, "error": decision.reason}
        if decision.routine:
            fields["routine"] = True
        if decision.failed_streams:
            fields["failed_streams"] = decision.failed_streams
        getattr(log, decision.level)(event, **fields)
        changes: dict[str, Any] = {"status": "disconnected", "connected_since": None}
        if decision.last_error is not None:
            changes["last_error"] = decision.last_error
        self.update(**changes)
        self.wait(decision.delay)

    # -- what the stream reports (mailroom.service.stream.StreamHandler)
    def opened(self, url: str, resumed: bool) -> None:
        self.connects += 1
        self.backoff = self.backoff.connected()
        catch_up = needs_catch_up(resumed, self.last)
        if self.connects == 1:
            log.info("eventsource_connected", url=safe_url(url))
        else:
            # within a run of failed streams, one line per run (backoff.py), not per connect
            level = "debug" if self.backoff.failed_streams > 1 else "info"
            getattr(log, level)(
                "eventsource_reconnected", reconnect_count=self.connects - 1, catch_up=catch_up
            )
        if catch_up:
            self.sender.send(Wake(changed={}, reason="connect"))
        self.update(
            status="connected",
            connected_since=self.options.wall(),
            reconnect_count=self.connects - 1,
        )

    def server_retry(self, retry_ms: int) -> None:
        self.backoff = self.backoff.with_server_retry(retry_ms)

    def state_changed(self, change: StateChange) -> None:
        log.debug("eventsource_state", changed=dict(change.changed))
        self.sender.send(Wake(changed=change.changed, reason="state"))

    def event_seen(self) -> None:
        if self.events.delivered and self.backoff.failed_streams:
            log.info("eventsource_streams_recovered", failed_streams=self.backoff.failed_streams)
            self.backoff = self.backoff.delivered()
        self.update(last_event_at=self.options.wall())
