"""The pure part of `mailroom reset`: what must change, derived from what the server holds.

Every decision is re-derived from the server's current state, so a reset that was
interrupted anywhere plans exactly what is left, and a finished one plans nothing:

- mail: every email in a managed mailbox (a category's destination or a triage
  label) gets ONE patch that adds the Screener and removes the managed mailboxes,
  the error label and the warning label. A JMAP update is applied atomically to each
  record (RFC 8620 §5.3), so the Screener is in place before the managed labels go
  and an email never has zero mailboxes, for half the requests of two passes. Mail
  in Trash or Junk loses its managed mailboxes but is not brought back to the
  Screener (it keeps Trash or Junk). The Inbox is never removed: mail that triage
  also put in the Inbox (``add_to_inbox``) keeps it, as triage never removes the
  Inbox either. Mail carrying only the error label loses it (reset never adds it).
  The warning label goes only with a managed mailbox, so the warning label reset
  itself puts on the mail of kept contacts (in the Screener, no managed mailbox) is
  never taken off by a later run.
- contacts: "created by mailroom" = a member of the provenance group. Created and
  edited since (``was_edited_by_user``) -> kept, their mail flagged, mailroom's note
  section stripped. Created and never edited -> deleted. Not created but carrying
  mailroom's note section -> adopted: only that section is stripped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mailroom.carddav import vcard
from mailroom.carddav.models import Card
from mailroom.config import Settings
from mailroom.errors import VCardError
from mailroom.jmap.models import Email, EmailPatch, Mailbox
from mailroom.triage.mailboxes import find_mailbox, find_role

Action = Literal["delete", "keep", "adopted"]


# -- mailboxes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResetMailboxes:
    """The mailboxes reset reads and writes; a missing one is None (nothing to undo there)."""

    screener: str | None
    managed: Mapping[str, str]  # id -> name: every destination and every triage label
    error: str | None
    warning: str | None
    keep_out: frozenset[str]  # Trash and Junk: mail there is not brought back

    @property
    def searched(self) -> tuple[str, ...]:
        """The mailboxes whose mail reset changes: managed ones and the error label."""
        extra = (self.error,) if self.error else ()
        return tuple(dict.fromkeys((*self.managed, *extra)))


def reset_mailboxes(settings: Settings, mailboxes: Sequence[Mailbox]) -> ResetMailboxes:
    """Map the config onto the mailboxes that exist (ConfigError for an ambiguous name)."""
    screener = find_mailbox(mailboxes, settings.screener_mailbox)
    inbox = find_role(mailboxes, "inbox")
    managed: dict[str, str] = {}
    for c in settings.categories:
        for name in (c.destination_mailbox, c.label):
            found = find_mailbox(mailboxes, name)
            if found is not None and found not in (screener, inbox):
                managed.setdefault(found, name)
    keep_out = {find_role(mailboxes, "trash"), find_role(mailboxes, "junk")}
    return ResetMailboxes(
        screener=screener,
        managed=managed,
        error=find_mailbox(mailboxes, settings.error_label),
        warning=find_mailbox(mailboxes, settings.warning_label),
        keep_out=frozenset(m for m in keep_out if m),
    )


def mail_filter(boxes: ResetMailboxes) -> dict[str, Any] | None:
    """The Email/query filter for every email reset must change; None when none can be."""
    if not boxes.searched:
        return None
    return {"operator": "OR", "conditions": [{"inMailbox": m} for m in boxes.searched]}


def email_patch(email: Email, boxes: ResetMailboxes) -> EmailPatch:
    """The one atomic patch that puts ``email`` back; empty when it needs none."""
    held = email.mailbox_ids
    managed = held & boxes.managed.keys()
    drop = set(managed)
    if boxes.error is not None and boxes.error in held:
        drop.add(boxes.error)
    if managed and boxes.warning is not None and boxes.warning in held:
        drop.add(boxes.warning)
    if not drop:
        return EmailPatch()
    bring_back = managed and not held & boxes.keep_out
    if boxes.screener and boxes.screener not in held and (bring_back or not held - drop):
        return EmailPatch(add=frozenset({boxes.screener}), remove=frozenset(drop))
    return EmailPatch(remove=frozenset(drop))


@dataclass(frozen=True, slots=True)
class MailPlan:
    patches: Mapping[str, EmailPatch]  # email id -> patch
    screened: Mapping[str, str]  # email id -> sender (lower case), in the Screener after
    from_mailbox: tuple[tuple[str, int], ...] = ()  # (managed mailbox name, emails)
    labels: tuple[tuple[str, int], ...] = ()  # (label name, emails losing it)
    to_screener: int = 0
    left_out: int = 0  # in Trash or Junk: managed mailboxes removed, left there

    @property
    def total(self) -> int:
        return len(self.patches)


def plan_mail(emails: Iterable[Email], boxes: ResetMailboxes, settings: Settings) -> MailPlan:
    patches: dict[str, EmailPatch] = {}
    screened: dict[str, str] = {}
    froms: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    to_screener = left_out = 0
    for email in emails:
        patch = email_patch(email, boxes)
        if not patch:
            continue
        patches[email.id] = patch
        managed = email.mailbox_ids & boxes.managed.keys()
        froms.update(boxes.managed[m] for m in managed)
        for mailbox, label in (
            (boxes.error, settings.error_label),
            (boxes.warning, settings.warning_label),
        ):
            if mailbox and mailbox in patch.remove:
                labels[label] += 1
        in_screener = boxes.screener is not None and boxes.screener in patch.add
        to_screener += in_screener
        left_out += bool(managed) and not in_screener
        if (in_screener or boxes.screener in email.mailbox_ids) and email.sender:
            screened[email.id] = email.sender.email.lower()
    return MailPlan(
        patches=patches,
        screened=screened,
        from_mailbox=tuple(sorted(froms.items())),
        labels=tuple(sorted(labels.items())),
        to_screener=to_screener,
        left_out=left_out,
    )


# -- contacts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactStep:
    card: Card
    action: Action
    uid: str | None
    name: str
    emails: tuple[str, ...]
    reason: str

    @property
    def label(self) -> str:
        who = self.name or "(no name)"
        return f"{who} <{self.emails[0]}>" if self.emails else who


@dataclass(frozen=True, slots=True)
class GroupStep:
    name: str
    members: frozenset[str]


@dataclass(frozen=True, slots=True)
class ContactPlan:
    groups: tuple[GroupStep, ...] = ()  # managed groups with members, provenance excluded
    provenance: GroupStep | None = None  # emptied last
    contacts: tuple[ContactStep, ...] = ()
    unreadable: tuple[str, ...] = ()  # hrefs of cards that cannot be parsed: left alone
    dangling: frozenset[str] = field(default_factory=frozenset)  # provenance uids, no card

    def of(self, action: Action) -> tuple[ContactStep, ...]:
        return tuple(s for s in self.contacts if s.action == action)


def edit_reason(contact: vcard.Contact) -> str:
    if contact.has_rev:
        return "created by mailroom, edited since: REV present"
    extra = sorted(contact.props - vcard.MAILROOM_PROPERTIES - {"REV"})
    if extra:
        return f"created by mailroom, edited since: {', '.join(extra)} added"
    return "created by mailroom, edited since: note text added"


def classify(card: Card, provenance: frozenset[str]) -> ContactStep | None:
    """What reset does to one contact card; None when it leaves the card alone."""
    contact = vcard.parse_contact(card.text)
    has_section = vcard.strip_mailroom_section(card.text) != card.text
    if contact.uid in provenance:
        if vcard.was_edited_by_user(card.text):
            action: Action = "keep"
            reason = edit_reason(contact)
        else:
            action, reason = "delete", "created by mailroom, never edited"
    elif has_section:
        action, reason = "adopted", "adopted: only mailroom's note section is removed"
    else:
        return None
    return ContactStep(card, action, contact.uid, contact.fn, contact.emails, reason)


def plan_contacts(
    cards: Iterable[Card],
    groups: Mapping[str, frozenset[str]],
    provenance_name: str,
) -> ContactPlan:
    """``groups``: the managed groups and the provenance group that exist, by name."""
    provenance = groups.get(provenance_name, frozenset())
    steps: list[ContactStep] = []
    unreadable: list[str] = []
    seen: set[str] = set()
    for card in cards:
        try:
            if vcard.parse_group(card.text) is not None:
                continue
            seen.add(vcard.parse_contact(card.text).uid or "")
            step = classify(card, provenance)
        except VCardError:
            unreadable.append(card.href)
            continue
        if step is not None:
            steps.append(step)
    files = {href.rsplit("/", 1)[-1] for href in unreadable}
    dangling = frozenset(u for u in provenance - seen if f"{u}.vcf" not in files)
    managed = [GroupStep(n, m) for n, m in groups.items() if n != provenance_name and m]
    return ContactPlan(
        groups=tuple(managed),
        provenance=GroupStep(provenance_name, provenance) if provenance else None,
        contacts=tuple(sorted(steps, key=lambda s: (s.action, s.label.casefold()))),
        unreadable=tuple(unreadable),
        dangling=dangling,
    )


@dataclass(frozen=True, slots=True)
class ResetPlan:
    mail: MailPlan
    contacts: ContactPlan

    @property
    def empty(self) -> bool:
        c = self.contacts
        return not (self.mail.patches or c.groups or c.provenance or c.contacts)
