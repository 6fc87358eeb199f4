"""The size cap against the real Cyrus: an answer over it is ResponseTooLarge (whatever
framing and compression Cyrus uses), nothing is written, and within it all is read."""

from __future__ import annotations

import uuid

import pytest

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.errors import ResponseTooLarge
from mailroom.httpbounds import HttpLimits
from mailroom.jmap.client import JmapClient
from mailroom_dev.realserver import Account

pytestmark = pytest.mark.real

TINY = HttpLimits(max_body=512)


def test_a_jmap_session_over_the_cap_is_refused_and_within_it_read(account: Account) -> None:
    capped = JmapClient(account.session_url, account.token, limits=TINY)
    with capped, pytest.raises(ResponseTooLarge) as caught:
        capped.refresh_session()
    assert caught.value.limit == 512
    assert account.token not in str(caught.value)
    with JmapClient(account.session_url, account.token) as client:
        assert client.session.account_id == account.username


def test_a_carddav_listing_over_the_cap_is_refused_and_the_book_is_untouched(
    account: Account,
) -> None:
    for n in range(20):
        uid = str(uuid.uuid4())
        text = vcard.new_contact_card(
            uid=uid,
            email=f"sender{n}@bounds.example",
            display_name=f"Sender {n}",
            contact_type="company",
            history_line="Triaged to Feed on 2025-01-31",
        )
        account.put_card(text, uid)
    before = sorted(account.cards())
    small = HttpLimits(max_body=4096)
    with CardDavClient(account.carddav_url, account.username, account.password) as dav:
        book = dav.addressbook_url()
        capped = CardDavClient(book, account.username, account.password, limits=small)
        with capped, pytest.raises(ResponseTooLarge):
            capped.list_all()
        assert len(dav.list_all()) == 20
    assert sorted(account.cards()) == before
