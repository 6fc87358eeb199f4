"""CardDavClient and the vCard logic against the real Cyrus CardDAV server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.errors import AuthError, PreconditionFailed
from mailroom_dev.realserver import Account

pytestmark = pytest.mark.real

HISTORY = "Triaged to Feed on 2025-01-31"


@pytest.fixture
def dav(account: Account) -> Iterator[CardDavClient]:
    with CardDavClient(account.carddav_url, account.username, account.password) as client:
        yield client


def new_uid() -> str:
    return str(uuid.uuid4())


def company(email: str, name: str | None = None) -> tuple[str, str]:
    uid = new_uid()
    text = vcard.new_contact_card(
        uid=uid, email=email, display_name=name, contact_type="company", history_line=HISTORY
    )
    return uid, text


def test_discovery_from_the_server_root_finds_the_default_address_book(
    account: Account,
) -> None:
    with CardDavClient(account.base_url + "/", account.username, account.password) as client:
        assert client.addressbook_url() == account.carddav_url


def test_an_address_book_url_is_used_with_one_request(account: Account, dav: CardDavClient) -> None:
    assert dav.addressbook_url() == account.carddav_url
    assert dav.requests_made == 1


def test_a_wrong_password_is_an_auth_error(account: Account) -> None:
    with (
        CardDavClient(account.carddav_url, account.username, "wrong") as client,
        pytest.raises(AuthError, match="MAILROOM_CARDDAV_PASSWORD"),
    ):
        client.addressbook_url()


def test_create_then_find_by_email_ignores_case(account: Account, dav: CardDavClient) -> None:
    uid, text = company("bob@example.com", "Bob's Shop")
    created = dav.create(text, uid=uid)

    (found,) = dav.find_by_email("BOB@Example.com")
    assert (found.href, found.etag) == (created.href, created.etag)
    assert vcard.parse_contact(found.text).uid == uid
    assert dav.find_by_email("bob@example.com.evil.net") == []
    assert dav.find_by_email("ob@example.com") == []
    assert vcard.parse_contact(account.card(uid) or "").fn == "Bob's Shop"


def test_find_by_emails_finds_each_address_in_one_request(
    account: Account, dav: CardDavClient
) -> None:
    for addr in ("ann@one.example", "Ben@Two.example", "cy@three.example"):
        uid, text = company(addr, addr)
        dav.create(text, uid=uid)
    before = dav.requests_made

    found = dav.find_by_emails(["ANN@one.example", "ben@two.example", "nobody@four.example"])

    assert dav.requests_made == before + 1
    emails = sorted(e.lower() for c in found for e in vcard.parse_contact(c.text).emails)
    assert emails == ["ann@one.example", "ben@two.example"]


def test_find_by_emails_with_groups_reads_contacts_and_every_group_in_one_request(
    account: Account, dav: CardDavClient
) -> None:
    for addr in ("dee@one.example", "eve@two.example"):
        uid, text = company(addr, addr)
        dav.create(text, uid=uid)
    group = vcard.new_group_card(uid="g-1", name="Friends")
    dav.create(group, uid="g-1")
    before = dav.requests_made

    found = dav.find_by_emails(["DEE@one.example"], with_groups=True)

    assert dav.requests_made == before + 1
    groups = [g.name for c in found if (g := vcard.parse_group(c.text)) is not None]
    emails = [e for c in found for e in vcard.parse_contact(c.text).emails]
    assert groups == ["Friends"]
    assert [e.lower() for e in emails] == ["dee@one.example"]
    assert dav.find_by_emails([]) == []


def test_creating_an_existing_card_is_precondition_failed(dav: CardDavClient) -> None:
    uid, text = company("dup@example.com")
    dav.create(text, uid=uid)
    with pytest.raises(PreconditionFailed):
        dav.create(text, uid=uid)


def test_update_with_a_stale_etag_is_precondition_failed(dav: CardDavClient) -> None:
    uid, text = company("carol@example.com", "Carol")
    first = dav.create(text, uid=uid)
    merged = vcard.merge_contact_card(
        text,
        email="carol@example.com",
        display_name="Carol",
        contact_type="company",
        history_line="Re-triaged to Imbox on 2025-02-01",
    )
    second = dav.update(first, merged)
    assert second.etag != first.etag

    with pytest.raises(PreconditionFailed):
        dav.update(first, text)
    assert dav.get(second.href).text.replace("\r\n", "\n") == merged.replace("\r\n", "\n")


def test_group_create_and_add_member(account: Account, dav: CardDavClient) -> None:
    member_uid, member = company("dave@example.com", "Dave")
    dav.create(member, uid=member_uid)
    group_uid = new_uid()
    group = dav.create(vcard.new_group_card(uid=group_uid, name="Paper Trail"), uid=group_uid)

    dav.update(group, vcard.group_with_members(group.text, add=[member_uid], remove=[]))

    assert account.groups() == {"Paper Trail": {member_uid}}
    (listed,) = dav.list_groups()
    parsed = vcard.parse_group(listed.text)
    assert parsed is not None
    assert (parsed.uid, parsed.name, parsed.member_uids) == (
        group_uid,
        "Paper Trail",
        frozenset({member_uid}),
    )


def test_delete_needs_the_current_etag(account: Account, dav: CardDavClient) -> None:
    uid, text = company("erin@example.com")
    first = dav.create(text, uid=uid)
    second = dav.update(first, text.replace("FN:erin", "FN:Erin"))

    with pytest.raises(PreconditionFailed):
        dav.delete(first)
    dav.delete(second)
    assert account.card(uid) is None
    assert dav.find_by_email("erin@example.com") == []


def test_list_all_returns_contacts_and_groups(dav: CardDavClient) -> None:
    uids = set()
    for address in ("f1@example.com", "f2@example.com"):
        uid, text = company(address)
        dav.create(text, uid=uid)
        uids.add(uid)
    group_uid = new_uid()
    dav.create(vcard.new_group_card(uid=group_uid, name="Feed"), uid=group_uid)

    cards = dav.list_all()

    assert {vcard.parse_contact(card.text).uid for card in cards} == uids | {group_uid}
    assert all(card.etag for card in cards)
    assert [vcard.parse_group(c.text) is not None for c in dav.list_groups()] == [True]


def test_a_hostile_display_name_is_stored_and_read_back_intact(dav: CardDavClient) -> None:
    name = 'Evil, Inc.; "Ltd" \\ back\r\nEND:VCARD\r\nFN:x 李'
    uid, text = company("evil@example.com", name)
    created = dav.create(text, uid=uid)

    contact = vcard.parse_contact(dav.get(created.href).text)
    assert contact.fn == 'Evil, Inc.; "Ltd" \\ back END:VCARD FN:x 李'
    assert contact.props == {"VERSION", "PRODID", "UID", "FN", "N", "ORG", "EMAIL", "NOTE"}
