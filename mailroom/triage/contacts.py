"""Contacts for a triage pass (CardDAV): find the sender's card, create or merge it.

Every write is conditional (``If-Match`` / ``If-None-Match: *``), retried on a 412 by
``carddav.groupbook.retry_on_412``; when the tries run out the sender fails and keeps
its label. The groups are ``carddav.groupbook.GroupBook``'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.carddav.groupbook import retry_on_412
from mailroom.carddav.models import Card
from mailroom.categories import ContactType
from mailroom.errors import CardDavError, PreconditionFailed

# Contacts mailroom creates get a UID derived from the address, so a pass that dies
# between joining the provenance group and creating the card creates the same card
# when it runs again: no duplicate, no lost provenance.
_UID_NAMESPACE = uuid.UUID("6f0b1f43-2d4c-5b7e-9a51-6d61696c726f")


def contact_uid(address: str) -> str:
    return str(uuid.uuid5(_UID_NAMESPACE, address.strip().lower()))


@dataclass(frozen=True, slots=True)
class ExistingContact:
    card: Card
    contact: vcard.Contact

    @property
    def uid(self) -> str:
        # RFC 6352 makes UID mandatory, and groups name members by it.
        if not self.contact.uid:
            raise CardDavError(0, self.card.href, "read (the card has no UID; give it one)")
        return self.contact.uid


def pick_contact(cards: Iterable[Card], address: str) -> ExistingContact | None:
    """The sender's contact among ``cards``: not a group, carrying the address (any
    case); the lowest href when several do."""
    found = []
    for card in sorted(cards, key=lambda c: c.href):
        if vcard.parse_group(card.text) is not None:
            continue
        contact = vcard.parse_contact(card.text)
        if address in (e.strip().lower() for e in contact.emails):
            found.append(ExistingContact(card, contact))
    return found[0] if found else None


def cards_by_address(cards: Iterable[Card]) -> dict[str, list[Card]]:
    """Contact cards (not groups) by each lower-cased address they carry."""
    found: dict[str, list[Card]] = {}
    for card in cards:
        if vcard.parse_group(card.text) is None:
            for email in vcard.parse_contact(card.text).emails:
                found.setdefault(email.strip().lower(), []).append(card)
    return found


def find_contact(carddav: CardDavClient, address: str) -> ExistingContact | None:
    """Look the sender up on its own (one REPORT)."""
    return pick_contact(carddav.find_by_email(address), address)


def upsert_contact(
    carddav: CardDavClient,
    existing: ExistingContact | None,
    *,
    address: str,
    display_name: str | None,
    contact_type: ContactType,
    history_line: str,
) -> str:
    """Create the sender's contact, or merge into the existing one. Returns its UID."""
    if existing is None:
        uid = contact_uid(address)
        text = vcard.new_contact_card(
            uid=uid,
            email=address,
            display_name=display_name or "",
            contact_type=contact_type,
            history_line=history_line,
        )
        try:
            carddav.create(text, uid=uid)
            return uid
        except PreconditionFailed:
            # A card at that href appeared since we looked: merge into it instead.
            book = carddav.addressbook_url().rstrip("/")
            card = carddav.get(f"{book}/{uid}.vcf")
            existing = ExistingContact(card, vcard.parse_contact(card.text))
    _merge(carddav, existing, address, display_name, contact_type, history_line)
    return existing.uid


def _merge(
    carddav: CardDavClient,
    existing: ExistingContact,
    address: str,
    display_name: str | None,
    contact_type: ContactType,
    history_line: str,
) -> None:
    cached = [existing.card]

    def read() -> Card:
        return cached.pop() if cached else carddav.get(existing.card.href)

    def write(card: Card) -> None:
        history = vcard.note_history(vcard.parse_contact(card.text).note)
        if history and history[-1] == history_line:
            return  # this pass already ran up to here once
        text = vcard.merge_contact_card(
            card.text,
            email=address,
            display_name=display_name or "",
            contact_type=contact_type,
            history_line=history_line,
        )
        if text != card.text:
            carddav.update(card, text)

    retry_on_412(existing.card.href, read, write)
