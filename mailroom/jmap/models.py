"""Values parsed from JMAP answers. Raw dicts never travel past the client."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Session:
    """The parts of a JMAP session resource mailroom uses; every URL is absolute."""

    session_url: str
    api_url: str
    event_source_url: str | None
    upload_url: str | None
    account_id: str
    max_objects_in_get: int
    max_objects_in_set: int
    max_calls_in_request: int
    capabilities: frozenset[str] = frozenset()  # the session's capability URIs
    download_url: str | None = None  # a template: {accountId} {blobId} {type} {name}
    username: str = ""  # the session's `username`: the account as the server names it


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: str
    name: str
    parent_id: str | None
    role: str | None


@dataclass(frozen=True, slots=True)
class MailboxesSeen:
    """Every mailbox of the account that existed at the Mailbox ``state``: one full
    Mailbox/get. A guard checking ``state`` proves they all still exist (triage/guard.py)."""

    state: str
    ids: frozenset[str]

    @classmethod
    def of(cls, mailboxes: Sequence[Mailbox], state: str) -> MailboxesSeen:
        return cls(state, frozenset(b.id for b in mailboxes))


@dataclass(frozen=True, slots=True)
class Address:
    email: str
    name: str | None


@dataclass(frozen=True, slots=True)
class Email:
    """An email as triage sees it: who sent it and which mailboxes hold it."""

    id: str
    sender: Address | None  # the first `from` address, None when there is none
    mailbox_ids: frozenset[str]
    received_at: str | None = None  # only when asked for (ARRIVAL_PROPERTIES)


@dataclass(frozen=True, slots=True)
class SetResult:
    """What one Email/set (or Mailbox/set) changed, for the worker's echo rule."""

    old_state: str | None
    new_state: str | None
    created: dict[str, str]  # creation id -> server id


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One Email/query answer: the ids of this page and where the server put it."""

    ids: tuple[str, ...]
    position: int
    limit: int | None  # present when the server clamped the limit asked for (RFC 8620 §5.5)
    total: int | None  # only when asked for, and never trusted for paging
    query_state: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    """One Email/changes answer: the ids created since ``old_state`` (RFC 8620 §5.2).

    Updates and destructions are not kept: only new mail is judged.
    """

    old_state: str
    new_state: str
    has_more: bool
    created: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GuardedSet:
    """One guarded Email/set request: the guard, the write, the mailboxes after it.

    ``result`` is None when the guard refused the write (a mailbox changed since the
    state it checked): nothing was written. ``present`` are the guarded mailboxes that
    exist after the write, ``mailbox_state`` the Mailbox state they were read in (what
    the next write's guard checks).
    """

    result: SetResult | None
    present: frozenset[str]
    mailbox_state: str


@dataclass(frozen=True, slots=True)
class EmailPatch:
    """A change to one email, as values: the mailboxes it joins and leaves, the keywords
    set and unset. Only ``jmap.methods.email_set`` writes it in the wire's form
    (``mailboxIds/<id>: true | null``, ``keywords/<k>: true | null``)."""

    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()
    set_keywords: frozenset[str] = frozenset()
    unset_keywords: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        """An empty patch changes nothing (and is not written)."""
        return bool(self.add or self.remove or self.set_keywords or self.unset_keywords)

    @property
    def joins(self) -> frozenset[str]:
        """The mailboxes the write puts the email in."""
        return self.add

    def then(self, later: EmailPatch) -> EmailPatch:
        """This patch, then ``later``, as one patch (what ``later`` says wins)."""
        return EmailPatch(
            (self.add - later.remove) | later.add,
            (self.remove - later.add) | later.remove,
            (self.set_keywords - later.unset_keywords) | later.set_keywords,
            (self.unset_keywords - later.set_keywords) | later.unset_keywords,
        )

    def applied(self, mailbox_ids: Collection[str]) -> WholeMailboxes:
        """The email's every mailbox once this patch is applied to ``mailbox_ids``."""
        return WholeMailboxes((frozenset(mailbox_ids) - self.remove) | self.add)


@dataclass(frozen=True, slots=True)
class WholeMailboxes:
    """An email's every mailbox, written whole (``mailboxIds``) instead of as a patch."""

    ids: frozenset[str]

    @property
    def joins(self) -> frozenset[str]:
        """The mailboxes the write puts the email in."""
        return self.ids


# What an Email/set writes for one email: a typed change, or (operator tools, benches)
# the wire's own patch object.
EmailChange = EmailPatch | WholeMailboxes
EmailUpdate = Mapping[str, EmailChange]
