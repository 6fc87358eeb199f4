"""Reconnect decisions for the EventSource listener. Pure: no clock, no sleep.

``Backoff``: delays double from ``initial`` (1 s, 2 s, 4 s ...) up to ``cap`` (60 s)
while attempts keep failing, and start again from ``initial`` after a successful
connect. A server's ``retry:`` field (milliseconds) or ``Retry-After`` sets the next
delay instead, clamped to ``[SERVER_RETRY_FLOOR, cap]``: a server asking for
``retry: 0`` gets at most one reconnect a second, not hundreds.

``after_stream``: what to do once a connection has ended (``StreamEnd``): the delay,
the log level and event, whether the end is an error to report in listener.json, and
whether it was a routine recycle (the server closed the stream, or a stream that
never pings went quiet) after which a resumed stream needs no catch-up pass. The
process loop logs, waits and reconnects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from mailroom.errors import AuthError, MailroomError, PushError, ServerError
from mailroom.service.status import error_summary

DEFAULT_INITIAL = 1.0
DEFAULT_CAP = 60.0
SERVER_RETRY_FLOOR = 1.0  # seconds: the least a server's retry/Retry-After can ask for


@dataclass(frozen=True, slots=True)
class Backoff:
    """Where the reconnect schedule stands; every method returns a new value."""

    initial: float = DEFAULT_INITIAL
    cap: float = DEFAULT_CAP
    failures: int = 0  # failed attempts since the last successful connect
    server_retry: float | None = None  # seconds, from the server's `retry:` or Retry-After
    floor: float = SERVER_RETRY_FLOOR

    def next_delay(self) -> tuple[float, Backoff]:
        """The delay before the next attempt, and the schedule after that attempt."""
        if self.server_retry is not None:
            delay = self.server_retry
        else:
            delay = self.initial * 2 ** min(self.failures, 30)
        after = replace(self, failures=self.failures + 1, server_retry=None)
        return min(delay, self.cap), after

    def at_cap(self) -> tuple[float, Backoff]:
        """The longest delay: for faults quick retries cannot fix (bad credentials)."""
        return self.cap, replace(self, failures=self.failures + 1, server_retry=None)

    def connected(self) -> Backoff:
        """A connect succeeded: the next failure waits ``initial`` again."""
        return replace(self, failures=0)

    def with_server_retry(self, retry_ms: int) -> Backoff:
        """The server asked (``retry: <ms>``) for this delay before the next attempt."""
        return self.with_server_delay(retry_ms / 1000)

    def with_server_delay(self, seconds: float) -> Backoff:
        """The server asked for ``seconds`` (clamped to the floor and the cap)."""
        return replace(self, server_retry=min(max(seconds, self.floor), self.cap))


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How one connection ended."""

    available: bool = True  # False: the server has no EventSource (HTTP 204)
    connected: bool = False  # the stream opened (200, text/event-stream)
    pinged: bool = False  # a ping arrived: the server keeps quiet streams alive
    timed_out: bool = False  # no data at all within the read timeout
    error: MailroomError | None = None


Level = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The decision after a stream (or a session fetch) ended."""

    delay: float
    level: Level
    reason: str  # for the log line (never a secret)
    last_error: str | None  # for listener.json; None for a routine recycle
    routine: bool  # a clean recycle: a stream resumed after it needs no catch-up pass
    backoff: Backoff


def after_stream(end: StreamEnd, backoff: Backoff) -> Reconnect:
    """What the listener does once the connection ``end`` describes is over."""
    if end.connected and end.error is None:
        return _routine("the server closed the stream", backoff)
    if end.connected and end.timed_out and not end.pinged:
        return _routine("no event within the read timeout; the server does not ping", backoff)
    return after_error(end.error or PushError("the stream ended"), backoff)


def after_error(error: MailroomError, backoff: Backoff) -> Reconnect:
    """A failed attempt: back off (at the cap for bad credentials), report the error."""
    if isinstance(error, ServerError) and error.retry_after is not None:
        backoff = backoff.with_server_delay(error.retry_after)
    if isinstance(error, AuthError):
        delay, backoff = backoff.at_cap()
        return Reconnect(delay, "error", str(error), error_summary(error), False, backoff)
    delay, backoff = backoff.next_delay()
    return Reconnect(delay, "warning", str(error), error_summary(error), False, backoff)


def _routine(reason: str, backoff: Backoff) -> Reconnect:
    delay, backoff = backoff.next_delay()
    return Reconnect(delay, "info", reason, None, True, backoff)


def needs_catch_up(resumed: bool, previous: Reconnect | None) -> bool:
    """Whether a new connection must wake the worker for a catch-up pass.

    Not after a routine recycle in which the listener resent ``Last-Event-ID``: the
    server replays every change after that event on the new stream (WHATWG SSE; Cyrus
    does, tests/test_listener_real.py), so nothing can have been missed. After anything
    else (the first connect, an error, a stream that went dead) events may be lost.
    """
    return not (resumed and previous is not None and previous.routine)
