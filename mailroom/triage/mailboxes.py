"""Resolve the mailbox names the config uses to the ids the server uses.

Leaf names are matched (a Screener nested as ``Inbox/Screener`` is found); a name with
``/`` is matched as a full path. Inbox, Trash and Junk are found by role, never by
name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailroom.config import Settings
from mailroom.errors import ConfigError, SetupNeededError
from mailroom.jmap.models import Mailbox


@dataclass(frozen=True, slots=True)
class MailboxIds:
    """Every mailbox a pass touches, by id."""

    screener: str
    inbox: str
    trash: str | None
    junk: str | None
    error: str
    warning: str | None
    labels: Mapping[str, str]  # label mailbox id -> category name
    destinations: Mapping[str, str]  # category name -> destination mailbox id
    # Categories whose destination mailbox does not exist: on hold (triage/onhold.py)
    gone: frozenset[str] = frozenset()

    def chain_ids(self, chain: Sequence[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.destinations[name] for name in chain))

    @property
    def managed_ids(self) -> frozenset[str]:
        return frozenset(self.destinations.values())


def _paths(mailboxes: Sequence[Mailbox]) -> dict[str, str]:
    by_id = {m.id: m for m in mailboxes}

    def path(m: Mailbox) -> str:
        parts = [m.name]
        seen = {m.id}
        while m.parent_id and m.parent_id in by_id and m.parent_id not in seen:
            m = by_id[m.parent_id]
            seen.add(m.id)
            parts.append(m.name)
        return "/".join(reversed(parts))

    return {m.id: path(m) for m in mailboxes}


def find_mailbox(mailboxes: Sequence[Mailbox], name: str) -> str | None:
    """The id of the mailbox called ``name`` (leaf name, or full path when it has a /)."""
    paths = _paths(mailboxes)
    if "/" in name:
        hits = [mid for mid, p in paths.items() if p.casefold() == name.casefold()]
    else:
        hits = [m.id for m in mailboxes if m.name == name]
        if not hits:
            hits = [m.id for m in mailboxes if m.name.casefold() == name.casefold()]
    if len(hits) > 1:
        raise ConfigError(
            [f"more than one mailbox is called {name!r}; name it by its full path (Parent/Child)"]
        )
    return hits[0] if hits else None


def find_role(mailboxes: Sequence[Mailbox], role: str) -> str | None:
    return next((m.id for m in mailboxes if m.role == role), None)


def resolve(settings: Settings, mailboxes: Sequence[Mailbox]) -> MailboxIds:
    """Map the config onto the server's mailboxes; every missing one is named.

    A missing destination mailbox stops its category only (``gone``): its senders
    wait and the other categories go on. Any other missing mailbox stops triage.
    """
    missing: list[str] = []

    def need(name: str) -> str:
        mid = find_mailbox(mailboxes, name)
        if mid is None:
            missing.append(name)
            return ""
        return mid

    screener = need(settings.screener_mailbox)
    error = need(settings.error_label)
    warning = need(settings.warning_label) if settings.warnings_enabled else None
    labels = {need(c.label): c.name for c in settings.categories}
    found = {c.name: find_mailbox(mailboxes, c.destination_mailbox) for c in settings.categories}
    destinations = {name: mid for name, mid in found.items() if mid is not None}
    inbox = find_role(mailboxes, "inbox")
    if inbox is None:
        missing.append("the Inbox (role inbox)")
    if missing:
        raise SetupNeededError("mailbox " + ", ".join(repr(n) for n in dict.fromkeys(missing)))
    return MailboxIds(
        screener=screener,
        inbox=inbox or "",
        trash=find_role(mailboxes, "trash"),
        junk=find_role(mailboxes, "junk"),
        error=error,
        warning=warning,
        labels=labels,
        destinations=destinations,
        gone=frozenset(name for name, mid in found.items() if mid is None),
    )
