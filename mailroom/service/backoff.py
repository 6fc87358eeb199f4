"""Reconnect delays for the EventSource listener. Pure: no clock, no sleep.

Delays double from ``initial`` (1 s, 2 s, 4 s ...) up to ``cap`` (60 s) while
attempts keep failing, and start again from ``initial`` after a successful
connect. A server's ``retry:`` field (milliseconds) sets the next delay instead;
``cap`` still bounds it. The process loop asks for a delay and does the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

DEFAULT_INITIAL = 1.0
DEFAULT_CAP = 60.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Where the reconnect schedule stands; every method returns a new value."""

    initial: float = DEFAULT_INITIAL
    cap: float = DEFAULT_CAP
    failures: int = 0  # failed attempts since the last successful connect
    server_retry: float | None = None  # seconds, from the server's `retry:` field

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
        return replace(self, server_retry=max(retry_ms, 0) / 1000)
