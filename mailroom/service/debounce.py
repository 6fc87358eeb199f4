"""The worker's decisions, fed values: which wakes are news, and when the next pass is due.

Which wakes are news (``classify``):

- ``connect``: the listener (re)connected and may have missed events. Always news.
- An ``Email`` state the last pass produced itself is an **echo**: the pass's
  ``Email/set`` calls form an unbroken chain (the first ``oldState`` is the state the
  scan read, each next ``oldState`` is the previous ``newState``), so nobody else
  changed mail in between and every ``newState`` of the chain is ours. Usually the
  event carries the last one; Cyrus may also report an intermediate one.
- While one large ``Email/set`` runs, Cyrus also reports states *inside* it (a move of
  thousands of emails bumps the state once per email), which no ``newState`` names. A
  wake that arrived **during** the last pass (it was already queued when the pass's
  last write returned) is an echo too, when that pass wrote with an unbroken chain:
  nobody else changed mail between its scan and its last write.
- The ``Email`` state the last pass scanned is **seen**: the scan already read it
  (the event was late).
- Anything else with an ``Email`` state is news. A broken chain makes no state ours.
- No ``Email`` state at all (a Mailbox-only change: a mailbox created, renamed or
  deleted): news. Labels are applied to emails, which changes the ``Email`` state, so
  such a change rarely brings triage work; but a pass is cheap and this keeps the rule
  simple and safe. A ``Mailbox`` state next to an echoed ``Email`` state is ignored:
  moving mail changes mailbox counts on some servers.

When the next pass is due (``Timer``): coalesce, don't delay. At most one pass runs at
a time (the worker is one loop). News after a quiet spell starts a pass at once
(trigger ``push``). News that arrives while a pass runs (drained as the pass returns,
after the echo rule above) makes exactly one more pass, which starts as soon as the
running one has ended, all of that news collapsed into it. The one brake is a minimum
spacing between the starts of two passes, ``debounce_seconds`` (0.5 s by default): news
within it of the last pass's start waits for the rest of it. With a spacing of at least
half a second, any burst of news within one second costs at most three passes (starts
at t, >= t + 0.5, >= t + 1), whatever the server's push delay. Without news, a pass
runs ``poll_interval`` after the previous one ended (trigger ``fallback``).

A pass that failed because the server said to come back later (``Retry-After`` on a
429 or 503, ``retry_after``) holds every pass, push or fallback, until then: at least
``SERVER_RETRY_FLOOR`` and at most ``RETRY_AFTER_CAP`` seconds after it ended, as the
listener clamps the same header (service/backoff.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from mailroom.errors import PassStopped, ServerError
from mailroom.service.backoff import SERVER_RETRY_FLOOR
from mailroom.service.wake import Wake
from mailroom.triage.report import PassReport

Verdict = Literal["news", "echo", "seen"]
RETRY_AFTER_CAP = 900.0  # seconds: the longest a server's Retry-After holds the worker


def retry_after(exc: BaseException) -> float | None:
    """The server's ``Retry-After`` behind a failed pass, in seconds, clamped; else None."""
    asked = exc.retry_after if isinstance(exc, (ServerError, PassStopped)) else None
    return None if asked is None else min(max(asked, SERVER_RETRY_FLOOR), RETRY_AFTER_CAP)


def own_states(report: PassReport) -> frozenset[str]:
    """Every Email state the pass's own writes produced; empty when the chain is broken."""
    expected = report.email_state_scanned
    produced: set[str] = set()
    for write in report.writes:
        if expected is None or write.old_state != expected or write.new_state is None:
            return frozenset()
        produced.add(write.new_state)
        expected = write.new_state
    return frozenset(produced)


def classify(wake: Wake, last: PassReport | None, *, during_last: bool = False) -> Verdict:
    """Whether ``wake`` asks for a pass, given the last pass that completed.

    ``during_last``: the wake was already queued when that pass's last write returned.
    """
    if wake.reason == "connect" or last is None:
        return "news"
    state = wake.changed.get("Email")
    if state is None:
        return "news"
    ours = own_states(last)
    if state in ours or (during_last and ours):
        return "echo"
    if state == last.email_state_scanned:
        return "seen"
    return "news"


@dataclass(frozen=True, slots=True)
class Timer:
    """When the next pass is due; each method returns a new Timer, ``now`` is an input."""

    poll_interval: float
    debounce_seconds: float  # the minimum spacing between two passes' starts
    last_pass_at: float  # when the last pass ended: the fallback counts from here
    last_started_at: float | None = None  # when it started: the spacing counts from here
    pending_since: float | None = None  # the first news not yet passed on; None when idle
    collapsed: int = 0  # wakes folded into the pending pass
    not_before: float | None = None  # the server's Retry-After: no pass before this

    def window_end(self) -> float | None:
        """Until when news must wait (the last pass's start + the spacing), if ever."""
        if self.last_started_at is None:
            return None
        return self.last_started_at + self.debounce_seconds

    def deadline(self) -> float:
        """The moment the loop must act next (a push pass or the fallback timer)."""
        if self.pending_since is not None:
            end = self.window_end()
            due = self.pending_since if end is None else max(self.pending_since, end)
        else:
            due = self.last_pass_at + self.poll_interval
        return due if self.not_before is None else max(due, self.not_before)

    def held(self) -> bool:
        """Pending news is waiting for the spacing to end (it did not start a pass at once)."""
        end = self.window_end()
        return self.pending_since is not None and end is not None and self.pending_since < end

    def on_wakes(self, verdicts: Iterable[Verdict], now: float) -> Timer:
        """Fold a batch of classified wakes in; echoes and seen states change nothing."""
        news = sum(1 for v in verdicts if v == "news")
        if news == 0:
            return self
        since = self.pending_since if self.pending_since is not None else now
        return replace(self, pending_since=since, collapsed=self.collapsed + news)

    def due(self, now: float) -> Literal["push", "fallback"] | None:
        """The trigger of the pass to run now, or None when nothing is due."""
        if now < self.deadline():
            return None
        return "push" if self.pending_since is not None else "fallback"

    def after_pass(self, started: float, ended: float, *, wait: float | None = None) -> Timer:
        """A pass that started at ``started`` has just ended (succeeded or raised); ``wait``:
        the server asked for no request before ``ended + wait`` (``retry_after``)."""
        return replace(
            self,
            last_pass_at=ended,
            last_started_at=started,
            pending_since=None,
            collapsed=0,
            not_before=None if wait is None else ended + wait,
        )
