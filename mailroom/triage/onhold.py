"""Categories on hold: their destination mailbox is gone, so their senders wait.

A category whose destination mailbox was deleted (by the user, in the web UI) stops
alone: its labelled senders, and those of every category below it, keep their label
and wait, with one line naming the category and what to do. The other categories go
on. The mailbox can be gone at the scan (``MailboxIds.gone``) or go between the scan
and a filing write (``MailboxGone`` from the guarded write, triage/guard.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import structlog

from mailroom.config import Settings
from mailroom.jmap.models import EmailPatch
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.outcome import Outcome, holding
from mailroom.triage.plan import Decision, LabelledSender
from mailroom.triage.sender import SenderId

log = structlog.get_logger("mailroom.triage")

FIX = "create the mailbox again (`mailroom setup --apply`) and the senders are triaged"


def hold_gone_categories(
    settings: Settings, ids: MailboxIds, senders: Sequence[LabelledSender]
) -> Outcome:
    """At the scan: the senders of a category whose chain has a gone destination wait."""
    held = Outcome()
    if not ids.gone:
        return held
    waiting: dict[str, list[LabelledSender]] = {}
    for s in senders:
        stopped = [c.name for c in settings.chain(s.category) if c.name in ids.gone]
        if stopped:
            waiting.setdefault(stopped[0], []).append(s)
    for name in sorted(waiting):  # one line a pass for each category that holds senders
        _stopped(settings, name, len(waiting[name]))
        reason = f"the destination mailbox of category {name!r} is gone"
        held |= holding(waiting[name], reason)
    return held


def hold_senders_of(
    settings: Settings,
    ids: MailboxIds,
    gone: Collection[str],
    updates: Mapping[SenderId, Mapping[str, EmailPatch]],
    decisions: Sequence[Decision],
) -> Outcome:
    """Mid-pass: the senders whose write adds mail to a mailbox in ``gone`` wait."""
    names = {mid: name for name, mid in ids.destinations.items()}
    held = [
        d
        for d in decisions
        if any(p.joins & set(gone) for p in updates.get(d.sender.id, {}).values())
    ]
    for mid in sorted(gone) if held else ():
        _stopped(settings, names.get(mid, mid), len(held))
    reason = "a mailbox its write adds mail to was deleted during the pass"
    return holding([d.sender for d in held], reason)


def _stopped(settings: Settings, category: str, senders: int) -> None:
    """The one line: which category stopped, its mailbox, who waits, what to do."""
    mailbox = next(
        (c.destination_mailbox for c in settings.categories if c.name == category), category
    )
    log.error(
        "category_stopped",
        category=category,
        mailbox=mailbox,
        senders_waiting=senders,
        fix=FIX,
    )
