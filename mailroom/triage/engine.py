"""One triage pass: scan, contacts, groups, filing, labels, summary (triage.md).

The pass works in phases over all labelled senders at once, so a pass over many
senders costs a handful of requests per phase rather than a handful per sender:
scan, lookup (every read about the senders' contacts), decide (pure, ``plan.decide``),
then the writes. Each sender is still isolated: a phase returns, beside its value, the
``Outcome`` naming the senders it failed (their label stays, the next pass retries
them), and the phases go on for the others. The order inside a sender never changes
on each server: contact, then groups (adds before removes) on CardDAV; the mail
listed, then filed, on JMAP; the two run at once (``sides.beside``) and the label
comes off last, once both are done.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

import structlog

from mailroom.carddav.client import CardDavClient
from mailroom.carddav.groupbook import GroupBook
from mailroom.config import Settings
from mailroom.errors import MailroomError, PassDeadline
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import EmailPatch, MailboxesSeen
from mailroom.triage import contacts, filing, lookup, parking, plan, strikes
from mailroom.triage.halt import stop_if_unanswered
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.onhold import hold_gone_categories
from mailroom.triage.outcome import Outcome, attempt
from mailroom.triage.report import PassReport
from mailroom.triage.scan import Scan, Scanner
from mailroom.triage.sender import SenderId
from mailroom.triage.sides import all_at_once, beside

log = structlog.get_logger("mailroom.triage")

# A pass still running after this long is abandoned between two requests (a server
# trickling its answers); the labels that were not yet removed make the next pass
# pick up what is left.
PASS_DEADLINE_S = 300.0
# Contact writes in flight at once in a pass with several senders (a round trip each
# on Fastmail); a small number, for the server's sake.
CONTACT_WRITES = 4


@dataclass(frozen=True, slots=True)
class Triaged:
    """What the triage of a pass's senders came to: the decisions, the search misses, the
    mail moved per sender, and who is out (failed or waiting)."""

    decisions: tuple[plan.Decision, ...] = ()
    misses: int = 0
    moved: Mapping[SenderId, int] = field(default_factory=dict)
    out: Outcome = field(default_factory=Outcome)

    @property
    def done(self) -> list[plan.Decision]:
        """The senders triaged: decided, and neither failed nor waiting."""
        return self.out.standing(self.decisions)


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
        deadline_s: float = PASS_DEADLINE_S,
        strikes_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.jmap = jmap
        self.carddav = carddav
        self._today = today
        self._clock = clock
        self._scanner = Scanner(settings, jmap)
        self._managed = tuple(dict.fromkeys(c.contact_group for c in settings.categories))
        self._deadline_s = deadline_s
        self._strikes_file = strikes_file  # None: the strikes live as long as this object
        self._strikes = strikes.load(strikes_file) if strikes_file else parking.Strikes()
        # Routing sets this to the Email state it last judged: the scan then reads the
        # mail created since, in the same request (``PassReport.arrivals``).
        self.arrivals_since: str | None = None

    # ------------------------------------------------------------------ pass
    def run_pass(self, trigger: str) -> PassReport:
        with structlog.contextvars.bound_contextvars(trigger=trigger), self._deadline():
            return self._run(trigger)

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """Abandon the pass at the first request after ``deadline_s``."""
        started = self._clock()

        def check() -> None:
            if self._clock() - started > self._deadline_s:
                raise PassDeadline(self._deadline_s)

        self.jmap.before_request = self.carddav.before_request = check
        try:
            yield
        except PassDeadline:
            duration = round(self._clock() - started, 3)
            log.error("pass_abandoned", deadline_s=self._deadline_s, duration_s=duration)
            raise
        finally:
            self.jmap.before_request = self.carddav.before_request = None

    def _run(self, trigger: str) -> PassReport:
        started = self._clock()
        self.jmap.take_writes()  # what the client wrote before this pass is not the pass's
        scan = self._scanner.scan(self.arrivals_since)
        scanned = plan.plan_scan(scan.emails, labels=scan.ids.labels, error_id=scan.ids.error)
        for email_id in scanned.without_sender:
            log.warning("email_without_sender", email_id=email_id)
        self._mark_conflicts(scanned.conflicts, scan.ids)
        held = hold_gone_categories(self.settings, scan.ids, scanned.senders)
        triaged = Triaged(out=held)
        if scanned.senders:
            triaged = self._triage(scanned.senders, scan.ids, held, scan.seen)
        parked = self._park(scanned.senders, triaged, scan.ids)
        report = self._report(trigger, started, scan, len(scanned.conflicts), triaged, parked)
        log.info(
            "poll_completed",
            senders_triaged=report.senders_triaged,
            emails_moved=report.emails_moved,
            conflicts=report.conflicts,
            failures=report.failures,
            skipped_error_label=scanned.skipped_error,
            search_misses=report.search_misses,
            parked=len(parked),
            waiting=report.waiting,
            duration_s=report.duration_s,
        )
        return report

    def _report(
        self,
        trigger: str,
        started: float,
        scan: Scan,
        conflicts: int,
        triaged: Triaged,
        parked: tuple[parking.Parked, ...],
    ) -> PassReport:
        done = triaged.done
        return PassReport(
            trigger=trigger,
            senders_triaged=len(done),
            emails_moved=sum(triaged.moved.get(d.sender.id, 0) for d in done),
            conflicts=conflicts,
            failures=len(triaged.out.failed),
            duration_s=round(self._clock() - started, 3),
            email_state_scanned=scan.state_read_first,
            writes=self.jmap.take_writes(),
            search_misses=triaged.misses,
            parked=tuple(f"{p.sender}: {p.reason}" for p in parked),
            arrivals=scan.changed,
            mailboxes_seen=scan.seen,
            triaged=tuple(sorted(Counter(d.category for d in done).items())),
            waiting=len(triaged.out.waiting),
        )

    def _park(
        self, senders: Sequence[plan.LabelledSender], triaged: Triaged, ids: MailboxIds
    ) -> tuple[parking.Parked, ...]:
        """The error label on the senders that failed ``PARK_AFTER`` passes in a row."""
        before = self._strikes
        done = [d.sender.id for d in triaged.done]
        counts, parked = before.after_pass(triaged.out.failed, done)
        self._strikes = counts
        try:
            return self._label_parked(senders, parked, ids)
        finally:
            if self._strikes_file and self._strikes != before:
                strikes.save(self._strikes_file, self._strikes)

    def _label_parked(
        self,
        senders: Sequence[plan.LabelledSender],
        parked: tuple[parking.Parked, ...],
        ids: MailboxIds,
    ) -> tuple[parking.Parked, ...]:
        if not parked:
            return ()
        names = {p.sender for p in parked}
        label = EmailPatch(add=frozenset({ids.error}))
        update = {e.id: label for s in senders if s.id in names for e in s.trigger_emails}
        try:
            self.jmap.update_emails(update)
        except MailroomError as exc:
            stop_if_unanswered(exc)
            self._strikes = self._strikes.unpark(parked)
            log.error("sender_parking_failed", senders=sorted(map(str, names)), error=str(exc))
            return ()
        for p in parked:
            log.error(
                "sender_parked",
                sender=str(p.sender),
                failed_passes=p.passes,
                reason=p.reason,
                label=self.settings.error_label,
            )
        return parked

    def _mark_conflicts(self, conflicts: Sequence[plan.Conflict], ids: MailboxIds) -> None:
        if not conflicts:
            return
        label = EmailPatch(add=frozenset({ids.error}))
        update = {eid: label for c in conflicts for eid in c.email_ids}
        self.jmap.update_emails(update)
        for c in conflicts:
            log.warning(
                "conflict_detected",
                sender=c.email,
                categories=list(c.categories),
                emails=len(c.email_ids),
            )

    def _triage(
        self,
        senders: Sequence[plan.LabelledSender],
        ids: MailboxIds,
        held: Outcome,
        seen: MailboxesSeen | None = None,
    ) -> Triaged:
        """Two sides at once (the critical path in docs/decisions.md): the Screener is
        listed (JMAP) beside the contact lookup (CardDAV); then the contact and group
        writes (CardDAV) run beside the mail listing and filing (JMAP), and the labels
        come off last, for the senders both sides stood by."""
        listing = partial(filing.list_screener, self.jmap, ids)
        ahead = any(ids.screener in e.mailbox_ids for s in senders for e in s.trigger_emails)
        with beside(listing if ahead else lambda: None) as screener:
            found, book, looked = lookup.lookup(
                self.carddav, senders, self._managed, self.settings.provenance_group
            )
            listed = screener.join()
        out = held | looked
        decisions = tuple(self._decide(s, found[s.id], ids) for s in out.standing(senders))
        with beside(partial(self._write_contacts, decisions, book)) as cards:
            filed = filing.file_senders(
                self.jmap,
                self.settings,
                ids,
                decisions,
                screener=listed,
                before_labels=cards.join,
                seen=seen,
            )
        triaged = Triaged(decisions, filed.misses, filed.moved, out | filed.out)
        _log_triaged(triaged)
        return triaged

    def _write_contacts(self, decisions: Sequence[plan.Decision], book: GroupBook) -> Outcome:
        """The CardDAV side: provenance, then the contacts (CONTACT_WRITES at once: each
        card is its own resource), then the groups; who failed there."""
        out = self._join_provenance(decisions, book)
        upserts = [partial(attempt, [d], partial(self._upsert, d)) for d in out.standing(decisions)]
        for _, failed in all_at_once(upserts, CONTACT_WRITES):
            out |= failed
        return out | self._change_groups(out.standing(decisions), book)

    def _decide(self, s: plan.LabelledSender, found: plan.Found, ids: MailboxIds) -> plan.Decision:
        chain = self.settings.chain(s.category)
        return plan.decide(
            s,
            found,
            chain=chain,
            filing=filing.where(self.settings, ids, chain, found.groups),
            today=self._today().isoformat(),
            warnings_enabled=self.settings.warnings_enabled,
        )

    # ---------------------------------------------------------------- writes
    def _join_provenance(self, decisions: Sequence[plan.Decision], book: GroupBook) -> Outcome:
        new = [d for d in decisions if d.existing is None]
        members = book.members(self.settings.provenance_group) if new else frozenset()
        add = {d.uid for d in new if d.uid not in members}
        if not add:
            return Outcome()
        return attempt(new, lambda: book.change(self.settings.provenance_group, add=add))[1]

    def _upsert(self, d: plan.Decision) -> None:
        contacts.upsert_contact(
            self.carddav,
            d.existing,
            address=d.sender.email,
            display_name=d.sender.display_name,
            contact_type=d.contact_type,
            history_line=d.history_line,
        )

    def _change_groups(self, decisions: Sequence[plan.Decision], book: GroupBook) -> Outcome:
        """Every add first, then every remove: a crash leaves too many groups, never none."""
        out = Outcome()
        for removing in (False, True):
            for name in self._managed:
                members = book.members(name)
                who = [
                    d
                    for d in out.standing(decisions)
                    if _moves(d, name, members, removing=removing)
                ]
                if not who:
                    continue
                uids = frozenset(d.uid for d in who)
                add, remove = (frozenset(), uids) if removing else (uids, frozenset())
                out |= attempt(who, partial(book.change, name, add=add, remove=remove))[1]
        return out


def _log_triaged(triaged: Triaged) -> None:
    for d in triaged.done:
        log.info(
            "sender_triaged",
            sender=d.sender.email,
            category=d.category,
            initial=d.initial,
            emails_moved=triaged.moved.get(d.sender.id, 0),
            name_mismatch=d.warn,
        )


def _moves(d: plan.Decision, group: str, members: frozenset[str], *, removing: bool) -> bool:
    """Whether the sender's contact joins (or, when removing, leaves) ``group``."""
    wanted, member = group in d.chain_groups, d.uid in members
    return member and not wanted if removing else wanted and not member
