"""Reconnect decisions for the EventSource listener. Pure: no clock, no sleep.

``Backoff``: delays double from ``initial`` (1 s, 2 s, 4 s ...) up to ``cap`` (60 s)
while attempts keep failing, and start again from ``initial`` after a successful
connect. A server's ``retry:`` field (milliseconds) or ``Retry-After`` sets the next
delay instead, clamped to ``[SERVER_RETRY_FLOOR, cap]``: a server asking for
``retry: 0`` gets at most one reconnect a second, not hundreds.

A stream that opens and then fails (garbage, an over-long line, ``retry: 0``, a close)
before it delivered anything (no state change, no ping) is a failed attempt too:
``failed_streams`` counts them in a row, and from the second one on the delay doubles
from ``initial`` as for failed connects, up to the cap, whatever the server's
``retry:`` asks. Only a stream that delivers (or lived to the read timeout on a
server that does not ping) ends the run. Within a run only the first failed stream is
logged at its level; the rest are debug lines (the listener logs the recovery).

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
from mailroom.run.statefiles import error_summary

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
    failed_streams: int = 0  # streams in a row that opened but delivered nothing

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
        """A connect succeeded: the next failed connect waits ``initial`` again."""
        return replace(self, failures=0)

    def delivered(self) -> Backoff:
        """A stream delivered an event or a ping: a run of failed streams is over."""
        return replace(self, failed_streams=0)

    def stream_failed(self, delay: float) -> tuple[float, Backoff]:
        """One more failed stream in a row: ``delay`` (what the end alone asks for), grown
        from the second failed stream on as failed connects grow, up to the cap."""
        streak = self.failed_streams + 1
        if streak >= 2:
            delay = max(delay, min(self.initial * 2 ** min(streak - 1, 30), self.cap))
        return delay, replace(self, failed_streams=streak)

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
    delivered: bool = False  # a state change or a ping arrived: the stream worked


Level = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The decision after a stream (or a session fetch) ended."""

    delay: float
    level: Level
    reason: str  # for the log line (never a secret)
    last_error: str | None  # for listener.json; None for a routine recycle
    routine: bool  # a clean recycle: a stream resumed after it needs no catch-up pass
    backoff: Backoff
    failed_streams: int = 0  # the failed streams in a row this one ends (0: not one)


def after_stream(end: StreamEnd, backoff: Backoff) -> Reconnect:
    """What the listener does once the connection ``end`` describes is over."""
    if end.connected and end.timed_out and not end.pinged:
        # a quiet stream on a server that does not ping: it lived the whole read timeout
        quiet = "no event within the read timeout; the server does not ping"
        return _routine(quiet, backoff.delivered())
    if end.delivered:
        backoff = backoff.delivered()
    if end.connected and end.error is None:
        decision = _routine("the server closed the stream", backoff)
    else:
        decision = after_error(end.error or PushError("the stream ended"), backoff)
    return decision if end.delivered or not end.connected else _failed_stream(decision)


def _failed_stream(decision: Reconnect) -> Reconnect:
    """A stream that opened and delivered nothing: grow the delay; log the first one only."""
    delay, backoff = decision.backoff.stream_failed(decision.delay)
    level: Level = decision.level if backoff.failed_streams == 1 else "debug"
    streak = backoff.failed_streams
    return replace(decision, delay=delay, level=level, backoff=backoff, failed_streams=streak)


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
