"""JmapClient against the real Cyrus server; the end state is checked with raw JMAP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailroom.errors import AuthError, JmapMethodError, JmapSetError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Address, EmailPatch
from mailroom.jmap.session import expand_event_source_url
from mailroom_dev.realserver import Account, build_message

pytestmark = pytest.mark.real


@pytest.fixture
def client(account: Account) -> Iterator[JmapClient]:
    with JmapClient(account.session_url, account.token) as c:
        yield c


def message(account: Account, from_addr: str, from_name: str | None = None) -> bytes:
    return build_message(from_addr, from_name, f"{account.username}@localhost", "hi")


def test_session_resolves_cyrus_relative_urls(account: Account, client: JmapClient):
    session = client.session

    assert session.api_url == f"{account.base_url}/jmap/"
    assert session.account_id == account.username
    assert session.max_objects_in_get >= 500
    assert session.max_objects_in_set >= 500
    assert expand_event_source_url(session) == (
        f"{account.base_url}/jmap/eventsource/?types=Email,Mailbox&closeafter=no&ping=30"
    )
    assert client.requests_made == 1


def test_session_through_the_well_known_redirect(account: Account):
    with JmapClient(f"{account.base_url}/.well-known/jmap", account.token) as client:
        session = client.session

    assert session.api_url == f"{account.base_url}/jmap/"
    assert client.requests_made == 2  # the 301 and the session


def test_created_mailbox_is_listed(account: Account, client: JmapClient):
    inbox = account.role_ids()["inbox"]

    top = client.create_mailbox("Screener")
    nested = client.create_mailbox("Paper Trail", parent_id=inbox)

    mailboxes, state = client.get_mailboxes()
    by_id = {box.id: box for box in mailboxes}
    assert (by_id[top].name, by_id[top].parent_id, by_id[top].role) == ("Screener", None, None)
    assert (by_id[nested].name, by_id[nested].parent_id) == ("Paper Trail", inbox)
    assert by_id[inbox].role == "inbox"
    assert state
    assert account.mailbox_ids()["Screener"] == top


def test_imported_emails_are_found_by_mailbox(account: Account, client: JmapClient):
    screener = client.create_mailbox("Screener")
    alice = client.import_email(message(account, "alice@example.com", "Alice"), [screener])
    bob = client.import_email(message(account, "bob@example.org"), [screener])
    account.deliver("Inbox", from_addr="elsewhere@example.net")

    emails, state = client.query_emails({"inMailbox": screener})

    senders = {e.id: e.sender for e in emails}
    assert senders == {
        alice: Address("alice@example.com", "Alice"),
        bob: Address("bob@example.org", None),
    }
    assert all(e.mailbox_ids == frozenset({screener}) for e in emails)
    assert state
    assert {r.id for r in account.emails("Screener")} == {alice, bob}


def test_keywords_are_set_on_import(account: Account, client: JmapClient):
    inbox = account.role_ids()["inbox"]

    email_id = client.import_email(
        message(account, "a@example.com"), [inbox], keywords={"$seen": True}
    )

    (record,) = account.emails("Inbox")
    assert (record.id, record.keywords) == (email_id, frozenset({"$seen"}))


def test_paging_with_a_tiny_page_size_finds_everything(account: Account):
    screener = account.create_mailbox("Screener")
    delivered = {account.deliver("Screener", from_addr=f"s{i}@example.com") for i in range(3)}

    with JmapClient(account.session_url, account.token, page_size=1) as client:
        ids = client.query_ids({"inMailbox": screener})
        assert client.requests_made == 1 + 4  # session, then pages of 1, 1, 1 and 0
        emails, _state = client.query_emails({"inMailbox": screener})
        assert client.requests_made == 1 + 4 + 4
        got = client.get_emails(ids)
        assert client.requests_made == 1 + 4 + 4 + 3

    assert len(ids) == 3
    assert set(ids) == delivered
    assert {e.id for e in emails} == delivered
    assert [e.id for e in got] == ids


def test_update_moves_an_email_between_mailboxes(account: Account, client: JmapClient):
    email_id = account.deliver("Screener", from_addr="alice@example.com")
    ids = account.mailbox_ids()
    feed = account.create_mailbox("Feed")
    patch = EmailPatch(add=frozenset({feed}), remove=frozenset({ids["Screener"]}))

    _, scanned = client.query_emails({"inMailbox": ids["Screener"]})

    (result,) = client.update_emails({email_id: patch})

    assert result.old_state == scanned  # what the worker's echo rule relies on
    assert result.new_state
    assert result.new_state != result.old_state
    assert result.created == {}
    ((record_id, mailboxes),) = [(r.id, r.mailboxes) for r in account.emails()]
    assert (record_id, mailboxes) == (email_id, frozenset({"Feed"}))


def test_updating_an_unknown_id_raises_set_error(account: Account, client: JmapClient):
    inbox = account.role_ids()["inbox"]

    with pytest.raises(JmapSetError) as info:
        client.update_emails({"Mdoesnotexist0000000000000": EmailPatch(add=frozenset({inbox}))})

    assert info.value.failures["Mdoesnotexist0000000000000"]["type"] == "notFound"


def test_a_bad_filter_raises_method_error(client: JmapClient):
    with pytest.raises(JmapMethodError) as info:
        client.query_emails({"inMailbox": "no-such-mailbox"})

    assert (info.value.method, info.value.error_type) == ("Email/query", "invalidArguments")


def test_a_wrong_token_raises_auth_error(account: Account):
    wrong = account.token[:-4] + ("AAAA" if not account.token.endswith("AAAA") else "BBBB")

    with JmapClient(account.session_url, wrong) as client, pytest.raises(AuthError) as info:
        _ = client.session

    assert info.value.status == 401
    assert wrong not in str(info.value)
    assert "MAILROOM_JMAP_TOKEN" in str(info.value)
