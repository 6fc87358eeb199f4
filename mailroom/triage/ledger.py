"""What a pass did per sender: who failed (and why) and how much mail each moved.

Per-sender isolation lives here: a step that raises fails the senders it was for,
and the phases go on for the others. The decisions are frozen values; this record is
the one thing a pass changes as it goes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import structlog

from mailroom.errors import MailroomError
from mailroom.triage.halt import stop_if_unanswered
from mailroom.triage.plan import Decision, LabelledSender
from mailroom.triage.sender import SenderId

log = structlog.get_logger("mailroom.triage")

D = TypeVar("D", Decision, LabelledSender)


def sender_of(item: Decision | LabelledSender) -> LabelledSender:
    return item.sender if isinstance(item, Decision) else item


class Ledger:
    """Shared by the two sides of a pass (``sides.beside``): a failure is recorded under
    a lock; ``moved`` is written by the JMAP side only."""

    def __init__(self) -> None:
        self.failed: dict[SenderId, str] = {}
        self.moved: dict[SenderId, int] = {}
        # Senders on hold: a mailbox their category files into is gone. They keep their
        # label and wait, with no strike: nothing is wrong with them.
        self.waiting: dict[SenderId, str] = {}
        self._lock = threading.Lock()

    def ok(self, item: Decision | LabelledSender) -> bool:
        sender = sender_of(item).id
        return sender not in self.failed and sender not in self.waiting

    def standing(self, items: Iterable[D]) -> list[D]:
        """The items whose sender has not failed."""
        return [item for item in items if self.ok(item)]

    def guard(self, items: Sequence[Decision | LabelledSender], step: Callable[[], object]) -> bool:
        """Run one step shared by ``items``; a failure fails each of them. True if it ran."""
        try:
            step()
        except Exception as exc:  # isolation: the other senders go on
            stop_if_unanswered(exc)  # ... unless the server is not answering: the pass stops
            for item in items:
                self.fail(sender_of(item), exc)
            return False
        return True

    def wait(self, sender: LabelledSender, reason: str) -> None:
        """Put ``sender`` on hold for this pass (its label stays; no strike)."""
        if sender.id in self.failed or sender.id in self.waiting:
            return
        self.waiting[sender.id] = reason
        log.info("sender_waiting", sender=sender.email, category=sender.category, reason=reason)

    def fail(self, sender: LabelledSender, exc: BaseException) -> None:
        with self._lock:
            if sender.id in self.failed:
                return
            self.failed[sender.id] = f"{type(exc).__name__}: {exc}"
        log.error(
            "sender_failed",
            sender=sender.email,
            category=sender.category,
            error=self.failed[sender.id],
            exc_info=not isinstance(exc, MailroomError),
        )
