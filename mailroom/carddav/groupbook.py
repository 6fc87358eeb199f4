"""CardDAV read-modify-write: the contact groups of an address book, and the 412 retry.

Every write is conditional (``If-Match``). A 412 means someone else changed the card
between our read and our write: read it again, apply the same change again, up to
``TRIES`` tries; then the error goes to the caller (triage fails the sender, reset the
step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.carddav.models import Card
from mailroom.errors import PreconditionFailed, SetupNeededError

TRIES = 3


def retry_on_412(href: str, read: Callable[[], Card], write: Callable[[Card], object]) -> None:
    """Apply ``write`` to a fresh copy of the card until it lands or tries run out."""
    card = read()
    for attempt in range(TRIES):
        try:
            write(card)
            return
        except PreconditionFailed:
            if attempt == TRIES - 1:
                raise
            card = read()


class GroupBook:
    """The managed groups and the provenance group, read once per pass.

    ``cards`` are cards already read in this pass (the groups among them are used);
    without them the group cards are read here, in one REPORT.
    """

    def __init__(
        self, carddav: CardDavClient, names: Iterable[str], cards: Iterable[Card] | None = None
    ) -> None:
        self._carddav = carddav
        self._cards: dict[str, Card] = {}
        self._groups: dict[str, vcard.Group] = {}
        wanted = set(names)
        for card in carddav.list_groups() if cards is None else cards:
            group = vcard.parse_group(card.text)
            if group is not None and group.name in wanted and group.name not in self._groups:
                self._cards[group.name] = card
                self._groups[group.name] = group
        self._names = wanted

    def _need(self, name: str) -> vcard.Group:
        if name not in self._groups:
            raise SetupNeededError(f"contact group {name!r}")
        return self._groups[name]

    def groups_of(self, uid: str, among: Iterable[str]) -> frozenset[str]:
        return frozenset(
            n for n in among if n in self._groups and uid in self._groups[n].member_uids
        )

    def members(self, name: str) -> frozenset[str]:
        return self._need(name).member_uids

    def change(self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove members of one group in one conditional write."""
        self._need(name)
        add, remove = set(add), set(remove)
        href = self._cards[name].href
        cached = [self._cards[name]]

        def read() -> Card:
            if cached:
                return cached.pop()
            return self._carddav.get(href)

        def write(card: Card) -> None:
            text = vcard.group_with_members(card.text, add=add, remove=remove)
            new = card if text == card.text else self._carddav.update(card, text)
            self._cards[name] = Card(new.href, new.etag, text)
            self._groups[name] = vcard.parse_group(text) or self._groups[name]

        retry_on_412(href, read, write)
