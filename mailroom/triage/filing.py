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
from dataclasses import dataclass
from functools import partial
from typing import Any

from mailroom.config import Settings
from mailroom.errors import MailroomError, PassDeadline
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email, SetResult
from mailroom.jmap.query import EmailQueryResult
from mailroom.triage import plan
from mailroom.triage.ledger import Ledger
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.plan import Decision
from mailroom.triage.sender import SenderId

Update = dict[str, plan.Patch]


def search_filter(ids: MailboxIds, address: str) -> dict[str, Any]:
    """Re-triage: all of the sender's mail but Trash and Junk (the search index)."""
    excluded = [mid for mid in (ids.trash, ids.junk) if mid]
    return {"from": address, "inMailboxOtherThan": excluded} if excluded else {"from": address}


def screener_filter(ids: MailboxIds) -> dict[str, Any]:
    """Initial triage: everything in the Screener (no search index needed)."""
    return {"inMailbox": ids.screener}


def by_sender(emails: Iterable[Email]) -> dict[SenderId, list[Email]]:
    found: dict[SenderId, list[Email]] = {}
    for email in emails:
        sender = SenderId.of_email(email)
        if sender is not None:
            found.setdefault(sender, []).append(email)
    return found


@dataclass(frozen=True, slots=True)
class Searched:
    """Each sender's mail, matched exactly; the labelled mail a search missed."""

    mail: Mapping[SenderId, Sequence[Email]]
    misses: int
    state: str | None  # the Email state the mail was read in; None: read piecemeal


def find_sender_mail(
    jmap: JmapClient,
    ids: MailboxIds,
    decisions: Sequence[Decision],
    ledger: Ledger,
    screener: EmailQueryResult | None = None,
) -> Searched:
    """Each sender's mail: one batch for every sender; one sender at a time if it fails.

    ``screener``: the Screener already listed in this pass (``list_screener``), if so.
    """
    retriage = [d for d in decisions if not d.initial]
    initial = [d for d in decisions if d.initial]
    listed = bool(initial) and screener is None  # the Screener is listed here
    filters = [search_filter(ids, d.sender.email) for d in retriage]
    if listed:
        filters.append(screener_filter(ids))
    state: str | None = screener.state if screener is not None and initial else None
    results: list[tuple[Email, ...]] = []
    if filters:
        try:
            answered = jmap.query_emails_many(filters)[0]
            results = [r.emails for r in answered]
            # read twice: the whole-set write is guarded only when both reads agree
            state = answered[0].state if state in (None, answered[0].state) else None
        except PassDeadline:
            raise
        except Exception:  # the batch failed: one filter at a time, isolated
            owners = _owners(filters, retriage, initial if listed else [])
            results = [_one(jmap, f, ledger, whose) for f, whose in owners]
            state = None
    if initial and screener is not None:
        results.append(screener.emails)
    mail: dict[SenderId, Sequence[Email]] = {}
    for d, found in zip(retriage, results, strict=False):
        mail[d.sender.id] = [e for e in found if d.sender.id.sent(e)]
    by_screener = by_sender(results[-1]) if initial else {}
    for d in initial:
        mail[d.sender.id] = by_screener.get(d.sender.id, [])
    misses = sum(missed(ids, d, mail[d.sender.id]) for d in decisions if ledger.ok(d))
    return Searched(mail, misses, state)


def list_screener(jmap: JmapClient, ids: MailboxIds) -> EmailQueryResult | None:
    """The Screener listed ahead, beside the contact lookup; None when that failed
    (``find_sender_mail`` lists it again, isolated)."""
    try:
        return jmap.query_emails_many([screener_filter(ids)])[0][0]
    except PassDeadline:
        raise
    except MailroomError:
        return None


def _owners(
    filters: Sequence[Mapping[str, Any]], retriage: Sequence[Decision], initial: Sequence[Decision]
) -> list[tuple[Mapping[str, Any], Sequence[Decision]]]:
    owners: list[Sequence[Decision]] = [[d] for d in retriage] + ([initial] if initial else [])
    return list(zip(filters, owners, strict=True))


def _one(
    jmap: JmapClient, filter: Mapping[str, Any], ledger: Ledger, owners: Sequence[Decision]
) -> tuple[Email, ...]:
    found: list[tuple[Email, ...]] = []
    ledger.guard(owners, lambda: found.append(jmap.query_emails_many([filter])[0][0].emails))
    return found[0] if found else ()


def missed(ids: MailboxIds, d: Decision, found: Sequence[Email]) -> int:
    """The sender's labelled emails its listing or search should have found, and did not."""
    if d.initial:
        expected = [e for e in d.sender.trigger_emails if ids.screener in e.mailbox_ids]
    else:
        skipped = {mid for mid in (ids.trash, ids.junk) if mid}
        expected = [e for e in d.sender.trigger_emails if not e.mailbox_ids & skipped]
    seen = {e.id for e in found}
    return sum(1 for e in expected if e.id not in seen)


def filing_updates(
    settings: Settings, ids: MailboxIds, d: Decision, searched: Sequence[Email]
) -> Update:
    """The sender's filing patches: its searched mail (exact address only) and its triggers."""
    category = next(c for c in settings.categories if c.name == d.category)
    filing = plan.Filing(
        chain_ids=ids.chain_ids([c.name for c in settings.chain(category.name)]),
        managed_ids=ids.managed_ids,
        screener_id=ids.screener,
        inbox_id=ids.inbox,
        add_to_inbox=category.add_to_inbox,
    )
    triggers = {e.id for e in d.sender.trigger_emails}
    emails = {e.id: e for e in d.sender.trigger_emails}
    emails.update((e.id, e) for e in searched if d.sender.id.sent(e))
    update: Update = {}
    for email in emails.values():
        patch = plan.filing_patch(email, filing)
        if ids.warning and email.id not in triggers and ids.warning in email.mailbox_ids:
            patch[f"mailboxIds/{ids.warning}"] = None  # old warnings go when re-processed
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


def apply_per_sender(
    jmap: JmapClient,
    updates: Mapping[SenderId, Update],
    decisions: Sequence[Decision],
    writes: list[SetResult],
    ledger: Ledger,
) -> None:
    """All senders' writes in one batch; on any failure, again one sender at a time."""
    merged = {eid: patch for u in updates.values() for eid, patch in u.items()}
    if not merged:
        return
    try:
        writes.extend(jmap.update_emails(merged))
        return
    except PassDeadline:
        raise
    except Exception:  # noqa: S110 -- redone per sender below, where it is attributed
        pass
    for d in ledger.standing(decisions):
        if updates.get(d.sender.id):
            ledger.guard([d], partial(_write, jmap, updates[d.sender.id], writes))


def _write(jmap: JmapClient, update: Update, writes: list[SetResult]) -> None:
    writes.extend(jmap.update_emails(update))


def file_senders(
    jmap: JmapClient,
    settings: Settings,
    ids: MailboxIds,
    decisions: Sequence[Decision],
    writes: list[SetResult],
    ledger: Ledger,
    *,
    screener: EmailQueryResult | None = None,
    before_labels: Callable[[], object] = lambda: None,
) -> int:
    """Steps 6 and 7 of triage.md for every sender still standing; the search misses.

    ``before_labels`` is called between the first write and the last one (the labels):
    it waits for the pass's other side (the contact and group writes, run beside this)
    so that a label comes off only once everything it stands for is done.
    """
    if not decisions:
        before_labels()
        return 0
    searched = find_sender_mail(jmap, ids, decisions, ledger, screener)
    filing: dict[SenderId, Update] = {}
    for d in ledger.standing(decisions):
        filing[d.sender.id] = filing_updates(settings, ids, d, searched.mail[d.sender.id])
        ledger.moved[d.sender.id] = len(filing[d.sender.id])
    first = {sid: other_mail(update, decisions) for sid, update in filing.items()}
    if not write_whole(jmap, first, searched, writes):
        apply_per_sender(jmap, first, decisions, writes, ledger)
    before_labels()
    last = {
        d.sender.id: last_write(ids, d, filing[d.sender.id]) for d in ledger.standing(decisions)
    }
    apply_per_sender(jmap, last, decisions, writes, ledger)
    return searched.misses


def write_whole(
    jmap: JmapClient, first: Mapping[SenderId, Update], searched: Searched, writes: list[SetResult]
) -> bool:
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
        writes.extend(jmap.update_emails(merged, if_in_state=searched.state))
    except PassDeadline:
        raise
    except MailroomError:
        return False
    return True


def whole(email: Email, patch: plan.Patch) -> dict[str, Any]:
    """The email's new ``mailboxIds``: the patch applied to what was read."""
    boxes = set(email.mailbox_ids)
    for key, present in patch.items():
        mailbox = key.removeprefix("mailboxIds/")
        if present:
            boxes.add(mailbox)
        else:
            boxes.discard(mailbox)
    return {"mailboxIds": dict.fromkeys(sorted(boxes), True)}


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
        patch = {**filing.get(email.id, {}), **labels.get(email.id, {})}
        if patch:
            update[email.id] = patch
    return update
