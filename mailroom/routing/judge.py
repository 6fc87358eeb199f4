"""Where a new email should be, by the routing model, and whether it is there (pure).

The routing model (``model.py``) says where a sender's future mail goes. Here it is
applied to one arrival, with the mailboxes resolved to ids (``Placement``):

- a stranger (no contact) -> the Screener only;
- a contact in a managed group -> the first route (routing order, deepest first)
  whose group holds it: its mailboxes, plus the Inbox only when the route keeps it.

An arrival is *routed* when it landed exactly there, *misrouted* otherwise, or *not
screened* (never touched): a contact in none of mailroom's groups, mail in a mailbox
outside the managed set (a rule of the user's filed it there), mail in Junk, Trash,
Sent or Drafts (by role), mail in a triage label (triage handles it), mail from one of
the account's own identities, mail without a usable From.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mailroom.errors import SetupNeededError
from mailroom.jmap.models import EmailPatch, Mailbox
from mailroom.routing.model import Routing
from mailroom.triage.mailboxes import find_mailbox, find_role
from mailroom.triage.sender import SenderId

Verdict = Literal["routed", "misrouted", "not_screened"]
# Why an arrival is not screened; the first that applies, in this order.
Reason = Literal[
    "no_from",
    "own_identity",
    "special_mailbox",
    "triage_label",
    "filed_by_user_rule",
    "contact_outside_groups",
]
SPECIAL_ROLES = ("junk", "trash", "sent", "drafts")


@dataclass(frozen=True, slots=True)
class Arrival:
    """A new email as the judge needs it; ``sender`` is None when the From is unusable."""

    email_id: str
    sender: SenderId | None
    mailbox_ids: frozenset[str]
    received_at: str


@dataclass(frozen=True, slots=True)
class RouteIds:
    """A route of the model with its mailboxes resolved: destination first, then ancestors'."""

    group: str
    mailbox_ids: tuple[str, ...]
    keep_in_inbox: bool


@dataclass(frozen=True, slots=True)
class Placement:
    """The routing model on one account: every mailbox the judge needs, by id."""

    routes: tuple[RouteIds, ...]  # routing order: the first route whose group holds a sender
    screener: str
    inbox: str
    special: frozenset[str]  # Junk, Trash, Sent, Drafts (by role), those the account has
    labels: frozenset[str]  # the triage label mailboxes
    identities: frozenset[SenderId]  # the account's own addresses
    names: Mapping[str, str]  # mailbox id -> name, for logs

    @property
    def managed(self) -> frozenset[str]:
        """Inbox, Screener and every route mailbox: where routing puts new mail."""
        return frozenset(
            {self.inbox, self.screener, *(m for r in self.routes for m in r.mailbox_ids)}
        )

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(r.group for r in self.routes)

    def named(self, ids: Iterable[str]) -> list[str]:
        """The mailboxes' names (ids the account no longer has: the id), sorted."""
        return sorted(self.names.get(i, i) for i in ids)


def placement(
    model: Routing,
    mailboxes: Sequence[Mailbox],
    *,
    labels: Collection[str] = (),
    identities: Iterable[str] = (),
) -> Placement:
    """The model resolved on the account's mailboxes; every missing one is named.

    ``labels`` are the names of the triage label mailboxes, ``identities`` the account's
    own addresses as written.
    """
    found, inbox = _resolved(model, mailboxes)
    routes = tuple(
        RouteIds(r.group, tuple(found[name] for name in r.mailboxes), r.keep_in_inbox)
        for r in model.routes
    )
    special = (find_role(mailboxes, role) for role in SPECIAL_ROLES)
    label_ids = (find_mailbox(mailboxes, name) for name in labels)
    return Placement(
        routes=routes,
        screener=found[model.screener],
        inbox=inbox,
        special=frozenset(i for i in special if i),
        labels=frozenset(i for i in label_ids if i),
        identities=frozenset(s for s in map(SenderId.of, identities) if s is not None),
        names={m.id: m.name for m in mailboxes},
    )


def _resolved(model: Routing, mailboxes: Sequence[Mailbox]) -> tuple[dict[str, str], str]:
    """Each mailbox the model names -> its id, and the Inbox's id; every missing one is
    named in one SetupNeededError."""
    names = [*(name for r in model.routes for name in r.mailboxes), model.screener]
    found = {name: find_mailbox(mailboxes, name) for name in dict.fromkeys(names)}
    missing = [name for name, mid in found.items() if mid is None]
    inbox = find_role(mailboxes, "inbox")
    if inbox is None:
        missing.append("the Inbox (role inbox)")
    if missing:
        raise SetupNeededError("mailbox " + ", ".join(repr(n) for n in missing))
    return {name: mid or "" for name, mid in found.items()}, inbox or ""


@dataclass(frozen=True, slots=True)
class Judgment:
    """The verdict on one arrival; ``want`` is empty when it is not screened."""

    email_id: str
    sender: SenderId | None
    verdict: Verdict
    want: frozenset[str]
    landed: frozenset[str]
    group: str | None  # the route's group; None for a stranger (the Screener catch-all)
    reason: Reason | None = None  # why it is not screened

    @property
    def screened(self) -> bool:
        return self.verdict != "not_screened"


def judge(arrival: Arrival, sender_groups: frozenset[str] | None, view: Placement) -> Judgment:
    """Judge one arrival. ``sender_groups``: None when the sender is no contact (a
    stranger), else the names of the contact groups the sender's contact is in."""
    reason = _unscreened(arrival, sender_groups, view)
    if reason is not None:
        return Judgment(
            arrival.email_id,
            arrival.sender,
            "not_screened",
            frozenset(),
            arrival.mailbox_ids,
            None,
            reason,
        )
    group, want = _wanted(sender_groups, view)
    verdict: Verdict = "routed" if arrival.mailbox_ids == want else "misrouted"
    return Judgment(arrival.email_id, arrival.sender, verdict, want, arrival.mailbox_ids, group)


def _unscreened(
    arrival: Arrival, sender_groups: frozenset[str] | None, view: Placement
) -> Reason | None:
    reason = unscreened_by_mail(arrival, view)
    if reason is not None:
        return reason
    if sender_groups is not None and not sender_groups & set(view.groups):
        return "contact_outside_groups"
    return None


def unscreened_by_mail(arrival: Arrival, view: Placement) -> Reason | None:
    """Why the arrival is not screened whoever its sender's contact is; None: its
    sender must be looked up to judge it."""
    boxes = arrival.mailbox_ids
    if arrival.sender is None:
        return "no_from"
    if arrival.sender in view.identities:
        return "own_identity"
    if boxes & view.special:
        return "special_mailbox"
    if boxes & view.labels:
        return "triage_label"
    if not boxes or not boxes <= view.managed:
        return "filed_by_user_rule"
    return None


def _wanted(
    sender_groups: frozenset[str] | None, view: Placement
) -> tuple[str | None, frozenset[str]]:
    if sender_groups is None:
        return None, frozenset({view.screener})
    route = next(r for r in view.routes if r.group in sender_groups)
    inbox = {view.inbox} if route.keep_in_inbox else set()
    return route.group, frozenset({*route.mailbox_ids, *inbox})


def move_patch(judgment: Judgment) -> EmailPatch:
    """The mailbox patch that puts a misrouted arrival exactly in ``want``.

    Adds what is wanted and removes the rest of where it landed (which, for a screened
    arrival, is only managed mailboxes, the Inbox among them). Never an email without
    a mailbox: a judgment that wants none raises.
    """
    if judgment.verdict != "misrouted":
        raise ValueError(f"only a misrouted arrival is moved, not a {judgment.verdict} one")
    if not judgment.want:
        raise ValueError("a move must leave the email in at least one mailbox")
    return EmailPatch(add=judgment.want - judgment.landed, remove=judgment.landed - judgment.want)
