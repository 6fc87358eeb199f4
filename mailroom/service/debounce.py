"""The worker's decisions, fed values: which wakes are news, and when the next pass is due.

Which wakes are news (``classify``):

- ``connect``: the listener (re)connected and may have missed events. Always news.
- An ``Email`` state the last pass produced itself is an **echo**: the pass's
  ``Email/set`` calls form an unbroken chain (the first ``oldState`` is the state the
  scan read, each next ``oldState`` is the previous ``newState``), so nobody else
  changed mail in between and every ``newState`` of the chain is ours. Usually the
  event carries the last one; Cyrus may also report an intermediate one.
- The ``Email`` state the last pass scanned is **seen**: the scan already read it
  (the event was late).
- Anything else with an ``Email`` state is news. A broken chain makes no state ours.
- No ``Email`` state at all (a Mailbox-only change: a mailbox created, renamed or
  deleted): news. Labels are applied to emails, which changes the ``Email`` state, so
  such a change rarely brings triage work; but a pass is cheap and this keeps the rule
  simple and safe. A ``Mailbox`` state next to an echoed ``Email`` state is ignored:
  moving mail changes mailbox counts on some servers.

When the next pass is due (``Timer``): the first news starts the debounce window;
``debounce_seconds`` later one pass runs (trigger ``push``) and every wake that came
in meanwhile is collapsed into it. Without news, a pass runs ``poll_interval`` after
the previous one (trigger ``fallback``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from mailroom.service.wake import Wake
from mailroom.triage.report import PassReport

Verdict = Literal["news", "echo", "seen"]


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


def classify(wake: Wake, last: PassReport | None) -> Verdict:
    """Whether ``wake`` asks for a pass, given the last pass that completed."""
    if wake.reason == "connect" or last is None:
        return "news"
    state = wake.changed.get("Email")
    if state is None:
        return "news"
    if state in own_states(last):
        return "echo"
    if state == last.email_state_scanned:
        return "seen"
    return "news"


@dataclass(frozen=True, slots=True)
class Timer:
    """When the next pass is due; each method returns a new Timer, ``now`` is an input."""

    poll_interval: float
    debounce_seconds: float
    last_pass_at: float
    pending_since: float | None = None  # the first news of the burst; None when idle
    collapsed: int = 0  # wakes folded into the pending pass

    def deadline(self) -> float:
        """The moment the loop must act next (a push pass or the fallback timer)."""
        if self.pending_since is not None:
            return self.pending_since + self.debounce_seconds
        return self.last_pass_at + self.poll_interval

    def on_wakes(self, verdicts: Iterable[Verdict], now: float) -> Timer:
        """Fold a batch of classified wakes in; news starts the debounce window."""
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

    def after_pass(self, now: float) -> Timer:
        """A pass has just ended (whether it succeeded or raised)."""
        return replace(self, last_pass_at=now, pending_since=None, collapsed=0)
