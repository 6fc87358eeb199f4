"""Per-sender isolation as values: who is out of a pass, and why.

A step that raises fails the senders it was for and the phases go on for the others:
``attempt`` runs one step and returns its value, or the ``Outcome`` naming the senders
it failed. Each phase returns its ``Outcome``; the engine joins them (``|``). A sender
on hold (``holding``: a mailbox its category files into is gone) keeps its label and
waits, with no strike: nothing is wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from mailroom.errors import MailroomError
from mailroom.triage.halt import stop_if_unanswered
from mailroom.triage.plan import Decision, LabelledSender
from mailroom.triage.sender import SenderId

log = structlog.get_logger("mailroom.triage")

D = TypeVar("D", Decision, LabelledSender)
T = TypeVar("T")


def sender_of(item: Decision | LabelledSender) -> LabelledSender:
    return item.sender if isinstance(item, Decision) else item


@dataclass(frozen=True, slots=True)
class Outcome:
    """The senders a step failed (they get a strike) or put on hold, each with its reason."""

    failed: Mapping[SenderId, str] = field(default_factory=dict)
    waiting: Mapping[SenderId, str] = field(default_factory=dict)

    def ok(self, item: Decision | LabelledSender) -> bool:
        sender = sender_of(item).id
        return sender not in self.failed and sender not in self.waiting

    def standing(self, items: Iterable[D]) -> list[D]:
        """The items whose sender has neither failed nor waits."""
        return [item for item in items if self.ok(item)]

    def __or__(self, later: Outcome) -> Outcome:
        """Both outcomes; a sender's first reason stands."""
        return Outcome({**later.failed, **self.failed}, {**later.waiting, **self.waiting})


def failing(items: Sequence[Decision | LabelledSender], exc: BaseException) -> Outcome:
    """``items``' senders failed with ``exc``: one ``sender_failed`` line each."""
    reason = f"{type(exc).__name__}: {exc}"
    for item in items:
        sender = sender_of(item)
        log.error(
            "sender_failed",
            sender=sender.email,
            category=sender.category,
            error=reason,
            exc_info=False if isinstance(exc, MailroomError) else exc,
        )
    return Outcome(failed={sender_of(item).id: reason for item in items})


def holding(senders: Sequence[LabelledSender], reason: str) -> Outcome:
    """``senders`` wait for this pass (their label stays; no strike)."""
    for s in senders:
        log.info("sender_waiting", sender=s.email, category=s.category, reason=reason)
    return Outcome(waiting={s.id: reason for s in senders})


def attempt(
    items: Sequence[Decision | LabelledSender], step: Callable[[], T]
) -> tuple[T | None, Outcome]:
    """Run one step shared by ``items``: its value, or None and the outcome failing each
    of them. A server that does not answer ends the pass instead (``halt``)."""
    try:
        return step(), Outcome()
    except Exception as exc:  # isolation: the other senders go on
        stop_if_unanswered(exc)
        return None, failing(items, exc)
