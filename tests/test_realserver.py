"""The real-server fixtures do what the other tests rely on."""

from __future__ import annotations

import httpx
import pytest

from mailroom_dev.realserver import (
    Account,
    CyrusServer,
    cyrus_settings,
    new_account,
    parse_exports,
    vcard_props,
)


@pytest.mark.real
def test_new_account_has_inbox_trash_and_junk_roles(account: Account) -> None:
    roles = account.role_ids()

    assert {"inbox", "trash", "junk"} <= set(roles)
    assert account.mailbox_ids()["Trash"] == roles["trash"]


@pytest.mark.real
def test_accounts_are_isolated_from_each_other(account: Account, cyrus: CyrusServer) -> None:
    account.deliver("Screener", from_addr="alice@example.com")

    other = new_account(cyrus)
    try:
        assert other.username != account.username
        assert other.emails() == []
        assert "Screener" not in other.mailbox_ids()
    finally:
        other.close()


@pytest.mark.real
def test_bearer_token_opens_the_jmap_session(account: Account) -> None:
    response = httpx.get(account.session_url, headers={"Authorization": f"Bearer {account.token}"})

    assert response.status_code == 200
    assert response.json()["username"] == account.username


@pytest.mark.real
def test_env_names_the_credentials_of_the_account(account: Account) -> None:
    env = account.env()

    assert env["MAILROOM_JMAP_TOKEN"] == account.token
    assert env["MAILROOM_CARDDAV_USERNAME"] == account.username
    assert env["MAILROOM_CARDDAV_URL"].endswith(f"/user/{account.username}/Default/")


@pytest.mark.real
def test_deliver_creates_the_mailbox_and_the_email_shows_in_it(account: Account) -> None:
    email_id = account.deliver(
        "Screener", from_addr="alice@example.com", from_name="Alice", extra_mailboxes=["@ToFeed"]
    )

    (email,) = account.emails()
    assert email.id == email_id
    assert (email.from_email, email.from_name) == ("alice@example.com", "Alice")
    assert email.mailboxes == frozenset({"Screener", "@ToFeed"})
    assert [e.id for e in account.emails("Screener")] == [email_id]


@pytest.mark.real
def test_wait_searchable_returns_once_the_from_search_finds_the_mail(account: Account) -> None:
    email_id = account.deliver(from_addr="bob@example.org")

    account.wait_searchable("bob@example.org")

    found = account.call("Email/query", {"filter": {"from": "bob@example.org"}})
    assert found["ids"] == [email_id]


@pytest.mark.real
def test_put_card_then_cards_and_groups_show_it(account: Account) -> None:
    contact = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Alice\r\nN:;Alice;;;\r\n"
        "EMAIL:Alice@Example.com\r\nEND:VCARD\r\n"
    )
    group = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:g1\r\nFN:Imbox\r\nN:Imbox;;;;\r\n"
        "X-ADDRESSBOOKSERVER-KIND:group\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:c1\r\nEND:VCARD\r\n"
    )
    account.put_card(contact, "c1")
    account.put_card(group, "g1")

    assert sorted(vcard_props(c)["UID"][0] for c in account.cards()) == ["c1", "g1"]
    assert account.groups() == {"Imbox": {"c1"}}
    assert account.card("c1") == contact
    assert account.card("missing") is None
    assert [vcard_props(c)["FN"] for c in account.contacts_with_email("alice@example.com")] == [
        ["Alice"]
    ]


@pytest.mark.real
def test_server_runs_the_push_capable_build(cyrus: CyrusServer) -> None:
    assert cyrus.eventsource


def test_parse_exports_reads_bash_quoted_values() -> None:
    out = "export A=plain\nexport B=with\\ space\nnoise\nexport C=''\n"

    assert parse_exports(out) == {"A": "plain", "B": "with space", "C": ""}


def test_each_xdist_worker_gets_a_server_of_its_own() -> None:
    environ = {"MAILROOM_TEST_CYRUS_DIR": "/tmp/c"}
    alone = cyrus_settings(environ)
    workers = [cyrus_settings(environ, worker=f"gw{n}") for n in range(8)]

    assert alone["CYRUS_PEER_DIR"] == "/tmp/c"
    assert workers[0]["CYRUS_PEER_DIR"] == "/tmp/c-gw0"
    assert workers[1]["CYRUS_PEER_HTTP_PORT"] == "18028"
    ports = [s[k] for s in [alone, *workers] for k in s if k.endswith("_PORT")]
    assert len(set(ports)) == len(ports) == 27
    assert len({s["CYRUS_PEER_DIR"] for s in [alone, *workers]}) == 9
