"""The routing model: where a sender's future mail goes, derived from the categories (pure).

Triage puts a sender triaged to category C into C's contact group and every
ancestor's, and files their Screener mail into C's destination and every ancestor's,
adding the Inbox only when C itself has ``add_to_inbox``. Server-side rules keyed on
contact groups must land the sender's next email in exactly those mailboxes, so:

- one ``Route`` per contact group, most specific first (deepest category first); the
  first route whose group holds the sender applies and no other does. A sender of a
  child category is also in every ancestor's group, so the child's route must win.
- the route's mailboxes are the category's destination and every ancestor's; it keeps
  the Inbox only for ``add_to_inbox``.
- last, the catch-all: a sender who is no contact at all goes to the Screener only.

A sender who is a contact but in none of these groups (an existing contact mailroom
never triaged) matches nothing and stays in the Inbox: contacts are not screened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailroom.categories import Category, ancestry, chain


@dataclass(frozen=True, slots=True)
class Route:
    """Mail from a member of ``group`` goes to ``mailboxes`` (and the Inbox if kept)."""

    group: str
    category: str
    mailboxes: tuple[str, ...]  # configured names: the category's destination, then ancestors'
    keep_in_inbox: bool


@dataclass(frozen=True, slots=True)
class Routing:
    """Routes in the order they are tried (the first match wins), then the Screener."""

    routes: tuple[Route, ...]
    screener: str

    @property
    def mailboxes(self) -> tuple[str, ...]:
        """Every mailbox a rule files into, each once, Screener last."""
        names = [name for r in self.routes for name in r.mailboxes]
        return tuple(dict.fromkeys([*names, self.screener]))

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(r.group for r in self.routes)


def route_categories(categories: Sequence[Category]) -> list[Category]:
    """One category per contact group, deepest first, config order among equals.

    Validation lets a group be shared only along a parent chain; its members cannot
    be told apart, so the group routes as the shallowest category that uses it.
    """
    walker = ancestry(categories)

    def depth(c: Category) -> int:
        return walker.depth(c.name) or 0

    chosen: dict[str, Category] = {}
    for c in categories:
        held = chosen.get(c.contact_group)
        if held is None or depth(c) < depth(held):
            chosen[c.contact_group] = c
    return sorted(chosen.values(), key=lambda c: -depth(c))


def routing(categories: Sequence[Category], *, screener_mailbox: str) -> Routing:
    """The routing model of a (valid) category list."""
    routes = tuple(
        Route(
            group=c.contact_group,
            category=c.name,
            mailboxes=_mailboxes(categories, c.name),
            keep_in_inbox=c.add_to_inbox,
        )
        for c in route_categories(categories)
    )
    return Routing(routes=routes, screener=screener_mailbox)


def _mailboxes(categories: Sequence[Category], name: str) -> tuple[str, ...]:
    """The destination of ``name`` and every ancestor's, each once."""
    return tuple(dict.fromkeys(c.destination_mailbox for c in chain(categories, name)))
