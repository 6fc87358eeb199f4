"""What one triage pass did: the `poll_completed` line and the worker's echo rule read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailroom.jmap.models import MailboxesSeen, SetResult
from mailroom.jmap.query import ChangedEmails


@dataclass(frozen=True, slots=True)
class PassReport:
    trigger: str  # "push" | "fallback" | "startup" | "manual"
    senders_triaged: int = 0
    emails_moved: int = 0
    conflicts: int = 0
    failures: int = 0  # senders that failed and keep their label for the next pass
    duration_s: float = 0.0
    # The Email state the scan read, and every Email/set of the pass in order:
    # together they say which state-change events were caused by the pass itself.
    email_state_scanned: str | None = None
    writes: tuple[SetResult, ...] = field(default_factory=tuple)
    # Labelled emails a sender's search should have found and did not (the search
    # index misses some senders: quoted local parts, very long addresses).
    search_misses: int = 0
    # Senders given the error label this pass after failing pass after pass:
    # "address: reason", for the log, worker.json and /healthz.
    parked: tuple[str, ...] = ()
    # The new mail the scan read along (routing asked for it), and what routing made
    # of the arrivals for worker.json (its "routing" section); None when not asked.
    arrivals: ChangedEmails | None = None
    routing: Mapping[str, Any] | None = None
    # (category, senders triaged into it) this pass, by category name: /metrics
    triaged: tuple[tuple[str, int], ...] = ()
    # Senders on hold: a mailbox their category files into is gone (triage/onhold.py).
    # They keep their label, are not failures and get no strike.
    waiting: int = 0
    # The mailboxes the scan read and their Mailbox state: routing's move guard starts there.
    mailboxes_seen: MailboxesSeen | None = None

    @property
    def ok(self) -> bool:
        return self.failures == 0
