"""A sender on its way through the phases of a pass, and per-sender isolation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.errors import MailroomError
from mailroom.triage import plan
from mailroom.triage.contacts import ExistingContact


@dataclass(slots=True)
class SenderWork:
    """Mutable on purpose: each phase fills in what it learnt, or marks it failed."""

    sender: plan.LabelledSender
    chain_groups: tuple[str, ...] = ()
    existing: ExistingContact | None = None
    uid: str = ""
    initial: bool = True
    history_line: str = ""
    warn: bool = False
    moved: int = 0
    failed: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


def guard(w: SenderWork, log: Any, step: Callable[[], object]) -> None:
    """Run one step for one sender still standing; a failure fails that sender only."""
    if w.ok:
        guard_many([w], log, step)


def guard_many(work: Sequence[SenderWork], log: Any, step: Callable[[], object]) -> None:
    """Run one step shared by several senders; a failure fails each of them."""
    try:
        step()
    except Exception as exc:  # isolation: the other senders go on
        for w in work:
            fail(w, exc, log)


def fail(w: SenderWork, exc: BaseException, log: Any) -> None:
    if not w.ok:
        return
    w.failed = f"{type(exc).__name__}: {exc}"
    log.error(
        "sender_failed",
        sender=w.sender.email,
        category=w.sender.category,
        error=w.failed,
        exc_info=not isinstance(exc, MailroomError),
    )
