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

from mailroom.errors import MailroomError, PassDeadline
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
        self._lock = threading.Lock()

    def ok(self, item: Decision | LabelledSender) -> bool:
        return sender_of(item).id not in self.failed

    def standing(self, items: Iterable[D]) -> list[D]:
        """The items whose sender has not failed."""
        return [item for item in items if self.ok(item)]

    def guard(self, items: Sequence[Decision | LabelledSender], step: Callable[[], object]) -> bool:
        """Run one step shared by ``items``; a failure fails each of them. True if it ran."""
        try:
            step()
        except PassDeadline:
            raise  # the whole pass stops
        except Exception as exc:  # isolation: the other senders go on
            for item in items:
                self.fail(sender_of(item), exc)
            return False
        return True

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
