"""The whole loop on a real Cyrus with Sieve: setup installs the rules, mail delivered over
LMTP is routed by them, and lands exactly where triage filed the sender's Screener mail."""

from __future__ import annotations

import pytest

from mailroom.categories import DEFAULT_CATEGORIES
from mailroom_dev.realserver import Account, delivered, lmtp_deliver, sieve_call, sieve_scripts
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real


@pytest.fixture
def box(account: Account) -> Box:
    return Box.create(account)


def arrive(box: Box, from_addr: str, subject: str) -> frozenset[str]:
    """Deliver over LMTP; the mailboxes the new email landed in."""
    lmtp_deliver(box.account, from_addr=from_addr, subject=subject)
    return delivered(box.account, subject).mailboxes


def triage_from_screener(box: Box, address: str, label: str) -> frozenset[str]:
    """A stranger's first email arrives (in the Screener), the user labels it, triage
    runs; where triage filed it."""
    assert arrive(box, address, f"first from {address}") == {"Screener"}
    first = delivered(box.account, f"first from {address}").id
    box.label(first, label)
    box.searchable(address)
    report = box.triage()
    assert report.failures == 0
    return box.where(first)


def test_setup_installs_the_rules_and_activates_them(box: Box) -> None:
    assert sieve_scripts(box.account) == {"mailroom-rules": False, "mailroom": True}


def test_a_strangers_mail_lands_in_the_screener_only(box: Box) -> None:
    assert arrive(box, "stranger@nowhere.example", "who is this") == {"Screener"}


@pytest.mark.parametrize("category", [c.name for c in DEFAULT_CATEGORIES])
def test_a_triaged_senders_next_email_lands_where_triage_filed_the_backlog(
    box: Box, category: str
) -> None:
    address = f"{category.replace(' ', '').lower()}@sender.example"
    label = next(c.label for c in DEFAULT_CATEGORIES if c.name == category)
    filed = triage_from_screener(box, address, label)
    assert arrive(box, address, f"next from {address}") == filed


def test_the_three_shapes_land_as_the_spec_says(box: Box) -> None:
    expected = {
        "person@x.example": ("@ToPerson", {"Person", "Imbox"}),  # child: ancestors, no Inbox
        "imbox@x.example": ("@ToImbox", {"Imbox", "Inbox"}),  # add_to_inbox
        "jail@x.example": ("@ToJail", {"Jail"}),
        "bill@x.example": ("@ToBillboard", {"Billboard", "Paper Trail"}),
    }
    for address, (label, boxes) in expected.items():
        assert triage_from_screener(box, address, label) == boxes
        assert arrive(box, address, f"next from {address}") == boxes


def test_after_a_retriage_the_next_email_lands_in_the_new_category_only(box: Box) -> None:
    address = "bob@corp.example"
    triage_from_screener(box, address, "@ToPerson")
    later = box.deliver("Archive", from_addr=address, subject="later")
    box.label(later, "@ToFeed")
    box.searchable(address)
    assert box.triage().failures == 0
    assert arrive(box, address, "after the re-triage") == {"Feed"}


def test_a_sender_triaged_after_setup_is_routed_without_setup_again(box: Box) -> None:
    def scripts() -> list[tuple[str, str]]:
        listed = sieve_call(box.account, "SieveScript/get", {"ids": None})["list"]
        return sorted((s["name"], s["blobId"]) for s in listed)

    before = scripts()
    triage_from_screener(box, "new@later.example", "@ToFeed")
    assert scripts() == before  # nothing reinstalled: the rules follow the groups
    assert arrive(box, "new@later.example", "routed at once") == {"Feed"}


def test_an_existing_contact_never_triaged_is_not_screened(box: Box) -> None:
    uid = "c0ffee00-0000-4000-8000-000000000001"
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:Old Friend\r\nN:Friend;Old;;;\r\nEMAIL:friend@old.example\r\n"
        "END:VCARD\r\n"
    )
    box.account.put_card(card, uid)
    assert arrive(box, "friend@old.example", "hello again") == {"Inbox"}
