"""One triage pass: scan, contacts, groups, filing, labels, summary (triage.md).

The pass works in phases over all labelled senders at once, so a pass over many
senders costs a handful of requests per phase rather than a handful per sender.
Each sender is still isolated: a failure marks that sender failed (its label stays,
the next pass retries it) and the phases go on for the others. The order inside a
sender never changes: contact, then groups (adds before removes), then filing, then
the label, last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import structlog

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.carddav.models import Card
from mailroom.clients import open_clients
from mailroom.config import Settings
from mailroom.errors import MailroomError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import SetResult
from mailroom.triage import contacts, plan
from mailroom.triage.filing import file_senders
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.report import PassReport
from mailroom.triage.scan import Scanner
from mailroom.triage.work import SenderWork, guard, guard_many

log = structlog.get_logger("mailroom.triage")


@dataclass(slots=True)
class PassState:
    writes: list[SetResult] = field(default_factory=list)


class Triager:
    """Runs triage passes; keeps the mailbox ids between passes (refreshed on change)."""

    def __init__(
        self,
        settings: Settings,
        jmap: JmapClient,
        carddav: CardDavClient,
        *,
        today: Callable[[], date] = date.today,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.jmap = jmap
        self.carddav = carddav
        self._today = today
        self._clock = clock
        self._scanner = Scanner(settings, jmap)

    # ------------------------------------------------------------------ pass
    def run_pass(self, trigger: str) -> PassReport:
        started = self._clock()
        bound = log.bind(trigger=trigger)
        ids, emails, email_state = self._scanner.scan()
        scanned = plan.plan_scan(emails, labels=ids.labels, error_id=ids.error)
        state = PassState()
        for email_id in scanned.without_sender:
            bound.warning("email_without_sender", email_id=email_id)
        self._mark_conflicts(scanned.conflicts, ids, state, bound)
        work = self._triage(scanned.senders, ids, state, bound) if scanned.senders else []
        report = PassReport(
            trigger=trigger,
            senders_triaged=sum(1 for w in work if w.ok),
            emails_moved=sum(w.moved for w in work if w.ok),
            conflicts=len(scanned.conflicts),
            failures=sum(1 for w in work if not w.ok),
            duration_s=round(self._clock() - started, 3),
            email_state_scanned=email_state,
            writes=tuple(state.writes),
        )
        bound.info(
            "poll_completed",
            senders_triaged=report.senders_triaged,
            emails_moved=report.emails_moved,
            conflicts=report.conflicts,
            failures=report.failures,
            skipped_error_label=scanned.skipped_error,
            duration_s=report.duration_s,
        )
        return report

    def _mark_conflicts(
        self,
        conflicts: Sequence[plan.Conflict],
        ids: MailboxIds,
        state: PassState,
        bound: Any,
    ) -> None:
        if not conflicts:
            return
        update = {eid: {f"mailboxIds/{ids.error}": True} for c in conflicts for eid in c.email_ids}
        state.writes.extend(self.jmap.update_emails(update))
        for c in conflicts:
            bound.warning(
                "conflict_detected",
                sender=c.email,
                categories=list(c.categories),
                emails=len(c.email_ids),
            )

    def _triage(
        self,
        senders: Sequence[plan.LabelledSender],
        ids: MailboxIds,
        state: PassState,
        bound: Any,
    ) -> list[SenderWork]:
        work = [SenderWork(s) for s in senders]
        managed = tuple(dict.fromkeys(c.contact_group for c in self.settings.categories))
        book = contacts.GroupBook(self.carddav, (*managed, self.settings.provenance_group))
        today = self._today().isoformat()
        cards = self._lookup([w.sender.email for w in work])
        for w in work:
            guard(w, bound, partial(self._classify, w, book, managed, today, cards))
        self._join_provenance(work, book, bound)
        for w in work:
            guard(w, bound, partial(self._upsert, w))
        self._change_groups(work, book, managed, bound)
        file_senders(self.jmap, self.settings, ids, [w for w in work if w.ok], state.writes, bound)
        for w in work:
            if w.ok:
                bound.info(
                    "sender_triaged",
                    sender=w.sender.email,
                    category=w.sender.category,
                    initial=w.initial,
                    emails_moved=w.moved,
                    name_mismatch=w.warn,
                )
        return work

    def _lookup(self, addresses: Sequence[str]) -> dict[str, list[Card]] | None:
        """The cards of every sender, in one REPORT per 50 senders, by address.

        None when that fails or a card in the answer cannot be read: then each sender
        is looked up on its own, so only the sender a bad card belongs to fails.
        """
        try:
            return contacts.cards_by_address(self.carddav.find_by_emails(addresses))
        except MailroomError:
            return None

    def _classify(
        self,
        w: SenderWork,
        book: contacts.GroupBook,
        managed: tuple[str, ...],
        today: str,
        cards: dict[str, list[Card]] | None,
    ) -> None:
        s = w.sender
        chain = self.settings.chain(s.category)
        w.chain_groups = tuple(dict.fromkeys(c.contact_group for c in chain))
        if cards is None:
            w.existing = contacts.find_contact(self.carddav, s.email)
        else:
            w.existing = contacts.pick_contact(cards.get(s.email, []), s.email)
        w.uid = w.existing.uid if w.existing else contacts.contact_uid(s.email)
        history = vcard.note_history(w.existing.contact.note) if w.existing else []
        initial_line = f"Triaged to {s.category} on {today}"
        w.initial = plan.is_initial_triage(
            managed_groups_of_contact=book.groups_of(w.uid, managed),
            chain_groups=w.chain_groups,
            last_history_line=history[-1] if history else None,
            initial_line=initial_line,
        )
        w.history_line = initial_line if w.initial else f"Re-triaged to {s.category} on {today}"
        name = vcard.clean_display_name(s.display_name)
        w.warn = (
            self.settings.warnings_enabled
            and w.existing is not None
            and plan.names_differ(w.existing.contact.fn, name)
        )

    def _join_provenance(
        self, work: Sequence[SenderWork], book: contacts.GroupBook, bound: Any
    ) -> None:
        new = [w for w in work if w.ok and w.existing is None]
        members = book.members(self.settings.provenance_group) if new else frozenset()
        add = {w.uid for w in new if w.uid not in members}
        if add:
            guard_many(new, bound, lambda: book.change(self.settings.provenance_group, add=add))

    def _upsert(self, w: SenderWork) -> None:
        category = next(c for c in self.settings.categories if c.name == w.sender.category)
        contacts.upsert_contact(
            self.carddav,
            w.existing,
            address=w.sender.email,
            display_name=w.sender.display_name,
            contact_type=category.contact_type,
            history_line=w.history_line,
        )

    def _change_groups(
        self,
        work: Sequence[SenderWork],
        book: contacts.GroupBook,
        managed: tuple[str, ...],
        bound: Any,
    ) -> None:
        """Every add first, then every remove: a crash leaves too many groups, never none."""
        for removing in (False, True):
            for name in managed:
                members = book.members(name)
                who = [w for w in work if w.ok and _moves(w, name, members, removing=removing)]
                if not who:
                    continue
                uids = {w.uid for w in who}
                change = {"remove": uids} if removing else {"add": uids}
                guard_many(who, bound, partial(book.change, name, **change))


def _moves(w: SenderWork, group: str, members: frozenset[str], *, removing: bool) -> bool:
    """Whether the sender's contact joins (or, when removing, leaves) ``group``."""
    wanted, member = group in w.chain_groups, w.uid in members
    return member and not wanted if removing else wanted and not member


def poll_main(settings: Settings) -> int:
    """`mailroom poll`: one pass, exit 0 when every labelled sender was handled."""
    with open_clients(settings) as (jmap, carddav):
        report = Triager(settings, jmap, carddav).run_pass("manual")
    return 0 if report.ok else 1
