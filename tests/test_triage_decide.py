"""plan.decide: the frozen decision for one sender, from values alone (no server)."""

from __future__ import annotations

import dataclasses

import pytest

from mailroom.carddav import vcard
from mailroom.carddav.models import Card
from mailroom.categories import category
from mailroom.jmap.models import Address, Email
from mailroom.triage import plan
from mailroom.triage.contacts import ExistingContact
from mailroom.triage.sender import SenderId

TODAY = "2026-11-30"
CHAIN = ("Person", "Imbox")
CATEGORIES = (category("Person", parent="Imbox", contact_type="person"), category("Imbox"))
FILING = plan.Filing(("M-person", "M-imbox"), frozenset({"M-person", "M-imbox"}), "S", "I", False)


def sender(category: str = "Person", name: str | None = "Bob Builder") -> plan.LabelledSender:
    email = Email("e1", Address("bob@example.com", name), frozenset({"L"}))
    return plan.LabelledSender(SenderId("bob@example.com"), name, category, "L", (email,))


def existing(
    fn: str = "Bob Builder", line: str = "Triaged to Feed on 2026-11-01"
) -> ExistingContact:
    text = vcard.new_contact_card(
        uid="bob-uid",
        email="bob@example.com",
        display_name=fn,
        contact_type="person",
        history_line=line,
    )
    return ExistingContact(Card("/book/bob.vcf", '"1"', text), vcard.parse_contact(text))


def decide(found: plan.Found, *, warnings_enabled: bool = True) -> plan.Decision:
    return plan.decide(
        sender(),
        found,
        chain=CATEGORIES,
        filing=FILING,
        today=TODAY,
        warnings_enabled=warnings_enabled,
    )


def test_a_new_sender_is_an_initial_triage_with_a_triaged_to_line() -> None:
    d = decide(plan.Found(None, "new-uid", frozenset()))
    assert d == plan.Decision(
        sender=sender(),
        category="Person",
        contact_type="person",
        chain_groups=CHAIN,
        existing=None,
        uid="new-uid",
        initial=True,
        history_line=f"Triaged to Person on {TODAY}",
        warn=False,
        filing=FILING,
    )


def test_a_contact_in_a_managed_group_is_re_triaged() -> None:
    d = decide(plan.Found(existing(), "bob-uid", frozenset({"Feed"})))
    assert (d.initial, d.history_line) == (False, f"Re-triaged to Person on {TODAY}")
    assert d.uid == "bob-uid"


def test_a_pass_resumed_after_joining_the_chain_is_still_the_initial_triage() -> None:
    contact = existing(line=f"Triaged to Person on {TODAY}")
    found = plan.Found(contact, "bob-uid", frozenset(CHAIN))
    d = decide(found)
    assert (d.initial, d.history_line) == (True, f"Triaged to Person on {TODAY}")


def test_a_different_name_on_the_card_warns_unless_warnings_are_off() -> None:
    found = plan.Found(existing(fn="Robert Smith"), "bob-uid", frozenset())
    assert decide(found).warn is True
    assert decide(found, warnings_enabled=False).warn is False
    assert decide(plan.Found(existing(fn=" bob builder "), "bob-uid", frozenset())).warn is False


def test_a_decision_is_frozen() -> None:
    d = decide(plan.Found(None, "new-uid", frozenset()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.initial = False  # type: ignore[misc]
