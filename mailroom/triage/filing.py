"""Filing: find each sender's mail, move it, then take the triage label off (JMAP).

Where a sender's mail is looked for depends on the decision: an initial triage sweeps
the Screener, which is listed once for every sender of the pass (``inMailbox`` needs
no search index) and matched to each sender exactly here; a re-triage searches all
mail but Trash and Junk by ``from``. Every listing and search of the pass goes out
together through ``JmapClient.query_emails_many``, but for the Screener listing when
the engine had it read ahead (``list_screener``, beside the contact lookup). The
label writes wait for ``before_labels`` (the contact side). The writes for all senders go out
together, chunked by the server's ``maxObjectsInSet``; when a batched write fails, the
same writes are redone one sender at a time, so that only the sender at fault keeps
its label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from mailroom.categories import Category
from mailroom.config import Settings
from mailroom.errors import JmapError, MailboxGone, MailroomError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email, EmailPatch, MailboxesSeen, WholeMailboxes
from mailroom.jmap.query import EmailQueryResult
from mailroom.triage import plan
from mailroom.triage.guard import Writer
from mailroom.triage.halt import stop_if_unanswered
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.onhold import hold_senders_of
from mailroom.triage.outcome import Outcome, attempt, failing
from mailroom.triage.plan import Decision
from mailroom.triage.sender import SenderId

Update = dict[str, EmailPatch]
log = structlog.get_logger("mailroom.triage")
UNFILED = (
    "{emails} email(s) lost a mailbox the write gave them (deleted meanwhile): those that "
    "can still be read were put back in the Screener with the error label"
)


def search_filter(ids: MailboxIds, address: str) -> dict[str, Any]:
    """Re-triage: all of the sender's mail but Trash and Junk (the search index)."""
    excluded = [mid for mid in (ids.trash, ids.junk) if mid]
    return {"from": address, "inMailboxOtherThan": excluded} if excluded else {"from": address}


def listing_filter(mailbox_id: str) -> dict[str, Any]:
    """Everything in one mailbox (no search index needed)."""
    return {"inMailbox": mailbox_id}


def screener_filter(ids: MailboxIds) -> dict[str, Any]:
    """Initial triage: everything in the Screener (no search index needed)."""
    return listing_filter(ids.screener)


def by_sender(emails: Iterable[Email]) -> dict[SenderId, list[Email]]:
    found: dict[SenderId, list[Email]] = {}
    for email in emails:
        sender = SenderId.of_email(email)
        if sender is not None:
            found.setdefault(sender, []).append(email)
    return found


def where(
    settings: Settings, ids: MailboxIds, chain: Sequence[Category], groups_before: Iterable[str]
) -> plan.Filing:
    """A sender's mailboxes as ids, resolved once for its decision: its category's chain
    (where its mail goes), and the destinations of the categories whose groups the
    contact was in (its old category and its ancestors): there a re-triaged sender's
    backlog is, whatever the search index makes of it."""
    before = set(groups_before)
    return plan.Filing(
        chain_ids=ids.chain_ids([c.name for c in chain]),
        managed_ids=ids.managed_ids,
        screener_id=ids.screener,
        inbox_id=ids.inbox,
        add_to_inbox=chain[0].add_to_inbox,
        before=tuple(
            ids.destinations[c.name]
            for c in settings.categories
            if c.contact_group in before and c.name in ids.destinations
        ),
    )


@dataclass(frozen=True, slots=True)
class Searched:
    """Each sender's mail, matched exactly; the labelled mail a search missed."""

    mail: Mapping[SenderId, Sequence[Email]]
    misses: int
    state: str | None  # the Email state the mail was read in; None: read piecemeal
    failed: Outcome = field(default_factory=Outcome)  # whose listing or search failed


def find_sender_mail(
    jmap: JmapClient,
    ids: MailboxIds,
    decisions: Sequence[Decision],
    screener: EmailQueryResult | None = None,
) -> Searched:
    """Each sender's mail: one batch for every sender; one filter at a time if it fails.

    Every mailbox listed is listed once for the pass and matched to each sender here
    (``SenderId.sent``); a re-triage also searches all mail by ``from``. ``screener``:
    the Screener already listed in this pass (``list_screener``), if so: it is not
    listed again.
    """
    retriage = [d for d in decisions if not d.initial]
    boxes = {d.sender.id: d.listed for d in decisions}
    listed = list(dict.fromkeys(b for d in decisions for b in boxes[d.sender.id]))
    ahead = {b: screener.emails for b in listed if screener is not None and b == ids.screener}
    to_list = [b for b in listed if b not in ahead]
    filters = [search_filter(ids, d.sender.email) for d in retriage]
    filters += [listing_filter(b) for b in to_list]
    owners: list[Sequence[Decision]] = [[d] for d in retriage]
    owners += [[d for d in decisions if b in boxes[d.sender.id]] for b in to_list]
    state = screener.state if screener is not None and ahead else None
    results, state, failed = read_batch(jmap, filters, owners, state)
    searched = dict(zip([d.sender.id for d in retriage], results, strict=False))
    in_box = {
        b: by_sender(found) for b, found in zip(to_list, results[len(retriage) :], strict=True)
    }
    in_box |= {b: by_sender(found) for b, found in ahead.items()}
    mail: dict[SenderId, Sequence[Email]] = {}
    for d in decisions:
        found = [e for e in searched.get(d.sender.id, ()) if d.sender.id.sent(e)]
        for b in boxes[d.sender.id]:
            found += in_box[b].get(d.sender.id, [])
        mail[d.sender.id] = list({e.id: e for e in found}.values())
    misses = count_misses(ids, failed.standing(decisions), mail)
    return Searched(mail, misses, state, failed)


def read_batch(
    jmap: JmapClient,
    filters: Sequence[Mapping[str, Any]],
    owners: Sequence[Sequence[Decision]],
    state: str | None,
) -> tuple[list[tuple[Email, ...]], str | None, Outcome]:
    """Every filter's emails in one batch, and the Email state they were read in (None
    when ``state``, an earlier read's, differs: the whole-set write is guarded only when
    both reads agree). A failed batch is read one filter at a time, each failure its
    owners' own (state None: read piecemeal)."""
    if not filters:
        return [], state, Outcome()
    try:
        answered = jmap.query_emails_many(list(filters))[0]
    except Exception as exc:
        stop_if_unanswered(exc)
        return _one_by_one(jmap, filters, owners)
    now = answered[0].state
    return [r.emails for r in answered], now if state in (None, now) else None, Outcome()


def _one_by_one(
    jmap: JmapClient, filters: Sequence[Mapping[str, Any]], owners: Sequence[Sequence[Decision]]
) -> tuple[list[tuple[Email, ...]], None, Outcome]:
    """Each filter read on its own; a failure is its owners' own."""
    results: list[tuple[Email, ...]] = []
    failed = Outcome()
    for f, whose in zip(filters, owners, strict=True):
        got, out = attempt(whose, partial(_read_one, jmap, f))
        results.append(got or ())
        failed |= out
    return results, None, failed


def _read_one(jmap: JmapClient, filter: Mapping[str, Any]) -> tuple[Email, ...]:
    return jmap.query_emails_many([filter])[0][0].emails


def count_misses(
    ids: MailboxIds,
    decisions: Sequence[Decision],
    mail: Mapping[SenderId, Sequence[Email]],
) -> int:
    """The labelled emails the listings and searches missed, a log line per sender."""
    misses = 0
    for d in decisions:
        missing = missed(ids, d, mail[d.sender.id])
        if missing:
            log.warning(
                "sender_mail_not_found",
                sender=d.sender.email,
                category=d.category,
                labelled_emails_missed=missing,
                initial=d.initial,
            )
        misses += missing
    return misses


def list_screener(jmap: JmapClient, ids: MailboxIds) -> EmailQueryResult | None:
    """The Screener listed ahead, beside the contact lookup; None when that failed
    (``find_sender_mail`` lists it again, isolated). A server that does not answer
    ends the pass (``halt``)."""
    try:
        return jmap.query_emails_many([screener_filter(ids)])[0][0]
    except MailroomError as exc:
        stop_if_unanswered(exc)
        return None


def missed(ids: MailboxIds, d: Decision, found: Sequence[Email]) -> int:
    """The sender's labelled emails its listing or search should have found, and did not."""
    if d.initial:
        expected = [e for e in d.sender.trigger_emails if ids.screener in e.mailbox_ids]
    else:
        skipped = {mid for mid in (ids.trash, ids.junk) if mid}
        expected = [e for e in d.sender.trigger_emails if not e.mailbox_ids & skipped]
    seen = {e.id for e in found}
    return sum(1 for e in expected if e.id not in seen)


def filing_updates(ids: MailboxIds, d: Decision, searched: Sequence[Email]) -> Update:
    """The sender's filing patches: its searched mail (exact address only) and its triggers."""
    triggers = {e.id for e in d.sender.trigger_emails}
    emails = {e.id: e for e in d.sender.trigger_emails}
    emails.update((e.id, e) for e in searched if d.sender.id.sent(e))
    update: Update = {}
    for email in emails.values():
        patch = plan.filing_patch(email, d.filing)
        if ids.warning and email.id not in triggers and ids.warning in email.mailbox_ids:
            patch = patch.then(EmailPatch(remove=frozenset({ids.warning})))  # old warnings go
        if patch:
            update[email.id] = patch
    return update


def label_updates(ids: MailboxIds, d: Decision) -> Update:
    update: Update = {}
    for email in d.sender.trigger_emails:
        patch = plan.label_patch(
            email, label_id=d.sender.label_id, warning_id=ids.warning, warn=d.warn
        )
        if patch:
            update[email.id] = patch
    return update


@dataclass(frozen=True, slots=True)
class Filer:
    """What every filing write of a pass needs: the guarded writer and what a hold names."""

    writer: Writer
    settings: Settings
    ids: MailboxIds


def apply_per_sender(
    filer: Filer, updates: Mapping[SenderId, Update], decisions: Sequence[Decision]
) -> Outcome:
    """All senders' writes in one batch; on any failure, again one sender at a time.

    A mailbox gone meanwhile puts the senders whose writes add mail to it on hold
    (nothing of theirs was written), and the batch goes again without them.
    """
    out = Outcome()
    while True:
        merged = _merged(updates, out.standing(decisions))
        if not merged:
            return out
        try:
            filer.writer.update(merged)
            return out
        except MailboxGone as exc:
            held = _hold(filer, exc, updates, out.standing(decisions))
            if not held.waiting:
                break  # no sender's write added mail to it: redone per sender below
            out |= held
        except Exception as exc:  # redone per sender below, where it is attributed
            stop_if_unanswered(exc)
            break
    for d in out.standing(decisions):
        if updates.get(d.sender.id):
            written, failed = attempt([d], partial(_write, filer, d, updates))
            out |= failed | (written or Outcome())
    return out


def _merged(updates: Mapping[SenderId, Update], standing: Sequence[Decision]) -> Update:
    return {eid: patch for d in standing for eid, patch in updates.get(d.sender.id, {}).items()}


def _write(filer: Filer, d: Decision, updates: Mapping[SenderId, Update]) -> Outcome:
    """One sender's write; the sender on hold when a mailbox it adds mail to is gone."""
    try:
        filer.writer.update(updates[d.sender.id])
    except MailboxGone as exc:
        held = _hold(filer, exc, updates, [d])
        if not held.waiting:
            raise
        return held
    return Outcome()


def _hold(
    filer: Filer,
    exc: MailboxGone,
    updates: Mapping[SenderId, Update],
    decisions: Sequence[Decision],
) -> Outcome:
    """The senders whose writes add mail to a gone mailbox, on hold."""
    gone = exc.mailbox_ids
    return hold_senders_of(filer.settings, filer.ids, gone, updates, decisions)


@dataclass(frozen=True, slots=True)
class Filed:
    """What the filing did: the search misses, the mail moved per sender, who is out."""

    misses: int
    moved: Mapping[SenderId, int]
    out: Outcome


def file_senders(
    jmap: JmapClient,
    settings: Settings,
    ids: MailboxIds,
    decisions: Sequence[Decision],
    *,
    screener: EmailQueryResult | None = None,
    before_labels: Callable[[], Outcome] = Outcome,
    seen: MailboxesSeen | None = None,
) -> Filed:
    """Steps 6 and 7 of triage.md for every sender; the search misses.

    ``before_labels`` is called between the first write and the last one (the labels):
    it waits for the pass's other side (the contact and group writes, run beside this)
    and says who failed there, so that a label comes off only once everything it
    stands for is done. ``seen``: the mailboxes the scan read and their state, where
    the writes' guard starts.
    """
    if not decisions:
        return Filed(0, {}, before_labels())
    searched = find_sender_mail(jmap, ids, decisions, screener)
    out = searched.failed
    filing = {
        d.sender.id: filing_updates(ids, d, searched.mail[d.sender.id])
        for d in out.standing(decisions)
    }
    writer = Writer(jmap, screener=ids.screener, error=ids.error, seen=seen)
    filer = Filer(writer, settings, ids)
    first = {sid: other_mail(update, decisions) for sid, update in filing.items()}
    if not write_whole(writer, first, searched):
        out |= apply_per_sender(filer, first, out.standing(decisions))
    out |= settle(writer, first, out.standing(decisions))
    out |= before_labels()
    last = {d.sender.id: last_write(ids, d, filing[d.sender.id]) for d in out.standing(decisions)}
    out |= apply_per_sender(filer, last, out.standing(decisions))
    out |= settle(writer, last, out.standing(decisions))
    return Filed(searched.misses, {sid: len(u) for sid, u in filing.items()}, out)


def settle(
    writer: Writer, updates: Mapping[SenderId, Update], decisions: Sequence[Decision]
) -> Outcome:
    """A sender with mail the read-back found unfiled or lost fails: its label stays."""
    out = Outcome()
    for d in decisions:
        bad = set(updates.get(d.sender.id, {})) & (writer.unfiled | writer.lost)
        if bad:
            out |= failing([d], JmapError(UNFILED.format(emails=len(bad))))
    return out


def write_whole(writer: Writer, first: Mapping[SenderId, Update], searched: Searched) -> bool:
    """The first write as whole ``mailboxIds`` values, guarded by ``ifInState``.

    Cyrus moves mail about a quarter faster given the whole set than given a patch.
    A whole set would undo a change someone made since the mail was read, so the
    server is told to refuse it if the Email state moved on; then (False) the same
    filing is written again as patches, which is always safe.
    """
    read = {e.id: e for emails in searched.mail.values() for e in emails}
    if any(eid not in read for u in first.values() for eid in u):
        return False
    merged = {eid: whole(read[eid], p) for u in first.values() for eid, p in u.items()}
    if not merged:
        return True
    if searched.state is None:
        return False
    try:
        writer.update(merged, if_in_state=searched.state)
    except MailroomError as exc:  # a gone mailbox or a state change: redone as patches
        stop_if_unanswered(exc)
        return False
    return True


def whole(email: Email, patch: EmailPatch) -> WholeMailboxes:
    """The email's new ``mailboxIds``: the patch applied to what was read."""
    return patch.applied(email.mailbox_ids)


def other_mail(update: Update, decisions: Sequence[Decision]) -> Update:
    """The filing of every email but the labelled ones: the first write."""
    triggers = {e.id for d in decisions for e in d.sender.trigger_emails}
    return {eid: patch for eid, patch in update.items() if eid not in triggers}


def last_write(ids: MailboxIds, d: Decision, filing: Update) -> Update:
    """The labelled emails: filed and unlabelled in one patch each, after the rest.

    A patch applies whole or not at all, so a labelled email never loses its label
    without being filed; and it is written only once the sender's other mail is filed.
    """
    labels = label_updates(ids, d)
    update: Update = {}
    for email in d.sender.trigger_emails:
        patch = filing.get(email.id, EmailPatch()).then(labels.get(email.id, EmailPatch()))
        if patch:
            update[email.id] = patch
    return update
