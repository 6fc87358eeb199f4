"""Pure decisions of a triage pass: who was labelled, who conflicts, what each email needs.

Nothing here does I/O. The engine feeds in what the servers said and applies what
comes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailroom.carddav import vcard
from mailroom.categories import Category, ContactType
from mailroom.jmap.models import Email, EmailPatch
from mailroom.triage.sender import SenderId

if TYPE_CHECKING:
    from mailroom.triage.contacts import ExistingContact


@dataclass(frozen=True, slots=True)
class LabelledSender:
    """One sender with triage labels on some of its emails, and no conflict."""

    id: SenderId
    display_name: str | None  # first non-empty display name seen
    category: str  # the category whose label was applied
    label_id: str  # the label mailbox to remove at the end
    trigger_emails: tuple[Email, ...]

    @property
    def email(self) -> str:
        """The sender's address, trimmed and lower-cased."""
        return self.id.address


@dataclass(frozen=True, slots=True)
class Conflict:
    email: str
    categories: tuple[str, ...]
    email_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScanPlan:
    senders: tuple[LabelledSender, ...]
    conflicts: tuple[Conflict, ...]
    without_sender: tuple[str, ...]  # email ids with a label but no `from`
    skipped_error: int  # labelled emails skipped because they carry the error label


def plan_scan(emails: Iterable[Email], *, labels: Mapping[str, str], error_id: str) -> ScanPlan:
    """Group labelled emails by sender; find conflicts.

    ``labels`` maps each triage-label mailbox id to its category name.
    """
    by_sender: dict[SenderId, list[tuple[Email, str]]] = {}
    without: list[str] = []
    skipped = 0
    for email in emails:
        if error_id in email.mailbox_ids:
            skipped += 1
            continue
        label_ids = sorted(mid for mid in email.mailbox_ids if mid in labels)
        if not label_ids:
            continue
        sender = SenderId.of_email(email)
        if sender is None:
            without.append(email.id)
            continue
        by_sender.setdefault(sender, []).extend((email, lid) for lid in label_ids)
    senders: list[LabelledSender] = []
    conflicts: list[Conflict] = []
    for sender, hits in by_sender.items():
        categories = sorted({labels[lid] for _, lid in hits})
        emails_of_sender = _unique(email for email, _ in hits)
        if len(categories) > 1:
            ids = tuple(e.id for e in emails_of_sender)
            conflicts.append(Conflict(sender.address, tuple(categories), ids))
            continue
        senders.append(
            LabelledSender(
                id=sender,
                display_name=_first_name(emails_of_sender),
                category=categories[0],
                label_id=hits[0][1],
                trigger_emails=emails_of_sender,
            )
        )
    return ScanPlan(tuple(senders), tuple(conflicts), tuple(without), skipped)


def _unique(emails: Iterable[Email]) -> tuple[Email, ...]:
    seen: dict[str, Email] = {}
    for email in emails:
        seen.setdefault(email.id, email)
    return tuple(seen.values())


def _first_name(emails: Sequence[Email]) -> str | None:
    for email in emails:
        if email.sender is not None and email.sender.name and email.sender.name.strip():
            return email.sender.name.strip()
    return None


@dataclass(frozen=True, slots=True)
class Filing:
    """Where a sender's mail goes, as mailbox ids."""

    chain_ids: tuple[str, ...]  # the category's destination, then every ancestor's
    managed_ids: frozenset[str]  # every category's destination
    screener_id: str
    inbox_id: str
    add_to_inbox: bool
    # The destinations of the categories whose groups the contact was in before the pass
    # (its old category and its ancestors): a re-triage lists them whole.
    before: tuple[str, ...] = ()


def filing_patch(email: Email, filing: Filing) -> EmailPatch:
    """The mailbox patch that files one email; empty when it is filed already.

    Screener and managed destinations outside the chain go; the chain's destinations
    come; Inbox is added only for add_to_inbox Screener mail and never removed. The
    chain is never empty, so no email is left without a mailbox.
    """
    have = email.mailbox_ids
    add = set(filing.chain_ids) - have
    if filing.add_to_inbox and filing.screener_id in have and filing.inbox_id not in have:
        add.add(filing.inbox_id)
    stale = (filing.managed_ids - set(filing.chain_ids)) | {filing.screener_id}
    return EmailPatch(add=frozenset(add), remove=frozenset(stale & have))


def label_patch(email: Email, *, label_id: str, warning_id: str | None, warn: bool) -> EmailPatch:
    """The last write for a triggering email: the label goes, the warning comes or goes."""
    have = email.mailbox_ids
    add = {warning_id} if warning_id is not None and warn else set()
    remove = {label_id} & have
    if warning_id is not None and not warn:
        remove |= {warning_id} & have
    return EmailPatch(add=frozenset(add), remove=frozenset(remove))


def is_initial_triage(
    *,
    managed_groups_of_contact: frozenset[str],
    chain_groups: Sequence[str],
    last_history_line: str | None,
    initial_line: str,
) -> bool:
    """Initial triage = the contact is in no managed group.

    A pass that crashed after putting the contact in the new chain's groups is still
    the initial triage when it runs again: the contact is in the chain's groups only
    and its last history line is today's "Triaged to" line for this category.
    """
    if not managed_groups_of_contact:
        return True
    return managed_groups_of_contact <= set(chain_groups) and last_history_line == initial_line


def names_differ(card_fn: str | None, display_name: str | None) -> bool:
    """A name mismatch: both present and different (trimmed, case-insensitive)."""
    if not card_fn or not display_name:
        return False
    return card_fn.strip().casefold() != display_name.strip().casefold()


@dataclass(frozen=True, slots=True)
class Found:
    """What the lookup phase learnt about one sender's contact."""

    existing: ExistingContact | None
    uid: str  # the existing contact's UID, or the one a new contact gets
    groups: frozenset[str]  # the managed groups the contact is in now


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything a pass will do for one sender, decided before any write: the category's
    chain resolved once (its contact type, groups and mailbox ids), so no later step
    looks it up again."""

    sender: LabelledSender
    category: str
    contact_type: ContactType
    chain_groups: tuple[str, ...]  # the category's group, then every ancestor's
    existing: ExistingContact | None
    uid: str
    initial: bool  # initial triage (sweep the Screener) or re-triage (all mail)
    history_line: str
    warn: bool  # the name on the card differs from the display name
    filing: Filing  # where the sender's mail goes, and where it is listed, as mailbox ids
    # The managed groups the contact was in before the pass: a re-triage lists the
    # mailboxes of their categories, where the sender's old mail is.
    groups_before: frozenset[str] = frozenset()

    @property
    def listed(self) -> tuple[str, ...]:
        """The mailboxes listed whole for the sender, where its mail is found without
        search: the Screener; for a re-triage also its old categories' destinations."""
        screener = self.filing.screener_id
        return (
            (screener,) if self.initial else tuple(dict.fromkeys([screener, *self.filing.before]))
        )


def decide(
    sender: LabelledSender,
    found: Found,
    *,
    chain: Sequence[Category],
    filing: Filing,
    today: str,
    warnings_enabled: bool,
) -> Decision:
    """The decision for one sender, from what the servers said about it. ``chain``: its
    category, then every ancestor; ``filing``: their mailboxes, as ids."""
    chain_groups = tuple(dict.fromkeys(c.contact_group for c in chain))
    existing = found.existing
    history = vcard.note_history(existing.contact.note) if existing else []
    initial_line = f"Triaged to {sender.category} on {today}"
    initial = is_initial_triage(
        managed_groups_of_contact=found.groups,
        chain_groups=chain_groups,
        last_history_line=history[-1] if history else None,
        initial_line=initial_line,
    )
    name = vcard.clean_display_name(sender.display_name)
    return Decision(
        sender=sender,
        category=sender.category,
        contact_type=chain[0].contact_type,
        chain_groups=chain_groups,
        existing=existing,
        uid=found.uid,
        initial=initial,
        history_line=initial_line if initial else f"Re-triaged to {sender.category} on {today}",
        warn=warnings_enabled and existing is not None and names_differ(existing.contact.fn, name),
        filing=filing,
        groups_before=found.groups,
    )
