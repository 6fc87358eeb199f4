"""The lookup phase of a pass: every read about the senders' contacts, and nothing else;
and the same read for routing: which managed groups each sender of new mail is in.

One REPORT (per 50 senders) brings the senders' cards and every group card. When it
fails, or a card in it cannot be read, the groups are read on their own and each
sender is looked up on its own, so only the sender a bad card belongs to fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from mailroom.carddav.client import CardDavClient
from mailroom.carddav.groupbook import GroupBook
from mailroom.carddav.models import Card
from mailroom.errors import MailroomError
from mailroom.triage import contacts, plan
from mailroom.triage.halt import stop_if_unanswered
from mailroom.triage.outcome import Outcome, attempt
from mailroom.triage.sender import SenderId

Cards = dict[str, list[Card]]


def lookup(
    carddav: CardDavClient,
    senders: Sequence[plan.LabelledSender],
    managed: Sequence[str],
    provenance: str,
) -> tuple[dict[SenderId, plan.Found], GroupBook, Outcome]:
    """What each sender's contact is now, the group book, and the senders whose lookup
    failed (left out of what was found)."""
    read = _read_cards(carddav, [s.email for s in senders])
    book = GroupBook(carddav, (*managed, provenance), read)
    cards = _by_address(read)
    found: dict[SenderId, plan.Found] = {}
    failed = Outcome()
    for s in senders:
        got, out = attempt([s], partial(_found, carddav, s, cards, book, managed))
        if got is not None:
            found[s.id] = got
        failed |= out
    return found, book, failed


def _read_cards(carddav: CardDavClient, addresses: Sequence[str]) -> list[Card] | None:
    try:
        return carddav.find_by_emails(addresses, with_groups=True)
    except MailroomError as exc:
        stop_if_unanswered(exc)
        return None


def _by_address(read: Sequence[Card] | None) -> Cards | None:
    try:
        return None if read is None else contacts.cards_by_address(read)
    except MailroomError:
        return None


def _found(
    carddav: CardDavClient,
    s: plan.LabelledSender,
    cards: Cards | None,
    book: GroupBook,
    managed: Sequence[str],
) -> plan.Found:
    if cards is None:
        existing = contacts.find_contact(carddav, s.email)
    else:
        existing = contacts.pick_contact(cards.get(s.email, []), s.email)
    uid = existing.uid if existing else contacts.contact_uid(s.email)
    return plan.Found(existing, uid, book.groups_of(uid, managed))


def contact_groups(
    carddav: CardDavClient, senders: Sequence[SenderId], groups: Sequence[str]
) -> dict[SenderId, frozenset[str] | None]:
    """Which of ``groups`` each sender's contact is in; None: the sender is no contact.

    One REPORT for all the senders and every group card (routing judges a batch of
    new mail with it). A contact whose card has no UID is in no group.
    """
    if not senders:
        return {}
    addresses = [s.address for s in senders]
    read = carddav.find_by_emails(addresses, per_query=len(addresses), with_groups=True)
    book = GroupBook(carddav, groups, read)
    cards = contacts.cards_by_address(read)
    found: dict[SenderId, frozenset[str] | None] = {}
    for s in senders:
        existing = contacts.pick_contact(cards.get(s.address, []), s.address)
        uid = existing.contact.uid if existing is not None else None
        found[s] = None if existing is None else book.groups_of(uid or "", groups)
    return found
