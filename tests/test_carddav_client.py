"""CardDavClient against a fake server at the transport (pytest-httpx)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pytest_httpx import HTTPXMock

from mailroom.carddav import xml
from mailroom.carddav.client import CardDavClient
from mailroom.carddav.models import Card
from mailroom.errors import (
    AuthError,
    CardDavError,
    PreconditionFailed,
    ServerError,
    TransportError,
)

ROOT = "https://dav.example.com/"
BOOK = "https://dav.example.com/dav/addressbooks/user/u/Default/"
BOOK_PATH = "/dav/addressbooks/user/u/Default/"
PASSWORD = "s3cret-app-password"
CARD_TEXT = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Bob\r\nEND:VCARD\r\n"


def multistatus(*responses: str) -> bytes:
    inner = "".join(f"<d:response>{r}</d:response>" for r in responses)
    return (
        '<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" '
        f'xmlns:c="urn:ietf:params:xml:ns:carddav">{inner}</d:multistatus>'
    ).encode()


def propstat(href: str, prop: str) -> str:
    return (
        f"<d:href>{href}</d:href><d:propstat><d:prop>{prop}</d:prop>"
        "<d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    )


BOOK_TYPE = "<d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>"
COLLECTION = "<d:resourcetype><d:collection/></d:resourcetype>"


def add_book_answer(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="PROPFIND",
        url=BOOK,
        status_code=207,
        content=multistatus(propstat(BOOK_PATH, BOOK_TYPE)),
    )


@pytest.fixture
def client() -> Iterator[CardDavClient]:
    with CardDavClient(BOOK, "u@example.com", PASSWORD) as dav:
        yield dav


@pytest.fixture
def book(httpx_mock: HTTPXMock, client: CardDavClient) -> CardDavClient:
    """A client whose address book URL is already known (one PROPFIND)."""
    add_book_answer(httpx_mock)
    assert client.addressbook_url() == BOOK
    return client


# -- discovery -------------------------------------------------------------------------


def test_a_url_that_is_an_address_book_is_used_directly(
    httpx_mock: HTTPXMock, client: CardDavClient
) -> None:
    add_book_answer(httpx_mock)
    assert client.addressbook_url() == BOOK
    assert client.addressbook_url() == BOOK
    assert client.requests_made == 1
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Depth"] == "0"
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.content == xml.propfind("d:resourcetype", "d:current-user-principal")


def test_discovery_from_the_root_follows_well_known_principal_and_home(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(
        method="PROPFIND", url=ROOT, status_code=207, content=multistatus(propstat("/", COLLECTION))
    )
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + ".well-known/carddav",
        status_code=301,
        headers={"Location": "https://dav.example.com/dav/addressbooks"},
    )
    principal = "<d:current-user-principal><d:href>/dav/principals/user/u/</d:href>"
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "dav/addressbooks",
        status_code=207,
        content=multistatus(
            propstat("/dav/addressbooks/", principal + "</d:current-user-principal>")
        ),
    )
    home = "<c:addressbook-home-set><d:href>/dav/addressbooks/user/u/</d:href>"
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "dav/principals/user/u/",
        status_code=207,
        content=multistatus(
            propstat("/dav/principals/user/u/", home + "</c:addressbook-home-set>")
        ),
    )
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "dav/addressbooks/user/u/",
        match_headers={"Depth": "1"},
        status_code=207,
        content=multistatus(
            propstat("/dav/addressbooks/user/u/", COLLECTION),
            propstat(BOOK_PATH, BOOK_TYPE),
            propstat("/dav/addressbooks/user/u/Other/", BOOK_TYPE),
        ),
    )
    with CardDavClient(ROOT, "u@example.com", PASSWORD) as client:
        assert client.addressbook_url() == BOOK
        assert client.addressbook_url() == BOOK
        assert client.requests_made == 5  # root, well-known, its redirect, principal, home
    assert [r.method for r in httpx_mock.get_requests()] == ["PROPFIND"] * 5


def test_discovery_uses_the_start_urls_principal_without_asking_well_known(
    httpx_mock: HTTPXMock,
) -> None:
    principal = "<d:current-user-principal><d:href>/p/u/</d:href></d:current-user-principal>"
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT,
        status_code=207,
        content=multistatus(propstat("/", COLLECTION + principal)),
    )
    home = "<c:addressbook-home-set><d:href>/h/u/</d:href></c:addressbook-home-set>"
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "p/u/",
        status_code=207,
        content=multistatus(propstat("/p/u/", home)),
    )
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "h/u/",
        status_code=207,
        content=multistatus(propstat("/h/u/b", BOOK_TYPE)),
    )
    with CardDavClient(ROOT, "u", PASSWORD) as client:
        assert client.addressbook_url() == ROOT + "h/u/b/"
        assert client.requests_made == 3  # start URL, principal, home: no well-known
    assert ".well-known" not in str([r.url for r in httpx_mock.get_requests()])


def test_discovery_without_an_address_book_says_where_it_looked(httpx_mock: HTTPXMock) -> None:
    principal = "<d:current-user-principal><d:href>/p/u/</d:href></d:current-user-principal>"
    httpx_mock.add_response(
        method="PROPFIND", url=ROOT, status_code=207, content=multistatus(propstat("/", principal))
    )
    home = "<c:addressbook-home-set><d:href>/h/u/</d:href></c:addressbook-home-set>"
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "p/u/",
        status_code=207,
        content=multistatus(propstat("/p/u/", home)),
    )
    httpx_mock.add_response(
        method="PROPFIND",
        url=ROOT + "h/u/",
        status_code=207,
        content=multistatus(propstat("/h/u/", COLLECTION)),
    )
    with CardDavClient(ROOT, "u", PASSWORD) as client, pytest.raises(CardDavError) as caught:
        client.addressbook_url()
    assert caught.value.href == ROOT + "h/u/"


# -- queries ---------------------------------------------------------------------------

CARD_ANSWER = multistatus(
    f'<d:href>{BOOK_PATH}c1.vcf</d:href><d:propstat><d:prop><d:getetag>"e1"</d:getetag>'
    f"<c:address-data>{CARD_TEXT}</c:address-data></d:prop>"
    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
)


def test_find_by_email_sends_an_addressbook_query_and_reads_the_cards(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(
        method="REPORT",
        url=BOOK,
        match_headers={"Depth": "1"},
        match_content=xml.query_by_email("BOB@Example.com"),
        status_code=207,
        content=CARD_ANSWER,
    )
    cards = book.find_by_email("BOB@Example.com")
    assert cards == [Card(href=BOOK_PATH + "c1.vcf", etag='"e1"', text=CARD_TEXT.replace("\r", ""))]
    assert book.requests_made == 2


def test_list_groups_and_list_all_send_their_queries(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    for body in (xml.query_groups(), xml.query_all()):
        httpx_mock.add_response(
            method="REPORT", url=BOOK, match_content=body, status_code=207, content=multistatus()
        )
    assert book.list_groups() == []
    assert book.list_all() == []


def test_a_report_answer_that_is_not_xml_is_a_carddav_error(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(method="REPORT", url=BOOK, status_code=207, content=b"<oops")
    with pytest.raises(CardDavError, match="not XML"):
        book.list_all()


def test_get_reads_text_and_etag(httpx_mock: HTTPXMock, book: CardDavClient) -> None:
    httpx_mock.add_response(
        method="GET", url=BOOK + "c1.vcf", headers={"ETag": '"e1"'}, text=CARD_TEXT
    )
    assert book.get(BOOK_PATH + "c1.vcf") == Card(BOOK_PATH + "c1.vcf", '"e1"', CARD_TEXT)


# -- conditional writes ----------------------------------------------------------------


def test_create_puts_with_if_none_match(httpx_mock: HTTPXMock, book: CardDavClient) -> None:
    httpx_mock.add_response(
        method="PUT",
        url=BOOK + "c1.vcf",
        match_headers={"If-None-Match": "*", "Content-Type": "text/vcard; charset=utf-8"},
        match_content=CARD_TEXT.encode(),
        status_code=201,
        headers={"ETag": '"e1"'},
    )
    assert book.create(CARD_TEXT, uid="c1") == Card(BOOK_PATH + "c1.vcf", '"e1"', CARD_TEXT)


def test_create_of_an_existing_card_is_precondition_failed(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(method="PUT", url=BOOK + "c1.vcf", status_code=412)
    with pytest.raises(PreconditionFailed) as caught:
        book.create(CARD_TEXT, uid="c1")
    assert caught.value.href == BOOK_PATH + "c1.vcf"


def test_create_without_an_etag_in_the_answer_reads_the_card_back(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(method="PUT", url=BOOK + "c1.vcf", status_code=201)
    stored = CARD_TEXT.replace("FN:Bob", "FN:Bob\r\nREV:2025-01-01T00:00:00Z")
    httpx_mock.add_response(
        method="GET", url=BOOK + "c1.vcf", headers={"ETag": '"e2"'}, text=stored
    )
    assert book.create(CARD_TEXT, uid="c1") == Card(BOOK_PATH + "c1.vcf", '"e2"', stored)
    assert book.requests_made == 3


def test_create_quotes_the_uid_in_the_href(httpx_mock: HTTPXMock, book: CardDavClient) -> None:
    httpx_mock.add_response(
        method="PUT", url=BOOK + "a%2Fb%40c.vcf", status_code=201, headers={"ETag": '"e"'}
    )
    assert book.create(CARD_TEXT, uid="a/b@c").href == BOOK_PATH + "a%2Fb%40c.vcf"


def test_update_sends_if_match_and_returns_the_new_etag(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(
        method="PUT",
        url=BOOK + "c1.vcf",
        match_headers={"If-Match": '"e1"'},
        status_code=204,
        headers={"ETag": '"e2"'},
    )
    card = Card(BOOK_PATH + "c1.vcf", '"e1"', CARD_TEXT)
    assert book.update(card, "NEW") == Card(BOOK_PATH + "c1.vcf", '"e2"', "NEW")


def test_update_of_a_stale_card_is_precondition_failed(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(method="PUT", url=BOOK + "c1.vcf", status_code=412)
    with pytest.raises(PreconditionFailed):
        book.update(Card(BOOK_PATH + "c1.vcf", '"old"', CARD_TEXT), "NEW")


def test_update_of_a_card_without_an_etag_sends_nothing(book: CardDavClient) -> None:
    with pytest.raises(PreconditionFailed):
        book.update(Card(BOOK_PATH + "c1.vcf", None, CARD_TEXT), "NEW")
    assert book.requests_made == 1


def test_delete_sends_if_match(httpx_mock: HTTPXMock, book: CardDavClient) -> None:
    httpx_mock.add_response(
        method="DELETE", url=BOOK + "c1.vcf", match_headers={"If-Match": '"e1"'}, status_code=204
    )
    book.delete(Card(BOOK_PATH + "c1.vcf", '"e1"', CARD_TEXT))


def test_delete_of_a_stale_card_is_precondition_failed(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(method="DELETE", url=BOOK + "c1.vcf", status_code=412)
    with pytest.raises(PreconditionFailed):
        book.delete(Card(BOOK_PATH + "c1.vcf", '"old"', CARD_TEXT))


def test_delete_of_a_card_already_gone_is_done(httpx_mock: HTTPXMock, book: CardDavClient) -> None:
    httpx_mock.add_response(method="DELETE", url=BOOK + "c1.vcf", status_code=404)
    book.delete(Card(BOOK_PATH + "c1.vcf", '"e1"', CARD_TEXT))


# -- faults ----------------------------------------------------------------------------


def test_401_is_an_auth_error_with_a_hint_and_no_password(
    httpx_mock: HTTPXMock, client: CardDavClient
) -> None:
    httpx_mock.add_response(method="PROPFIND", url=BOOK, status_code=401)
    with pytest.raises(AuthError) as caught:
        client.addressbook_url()
    message = str(caught.value)
    assert "MAILROOM_CARDDAV_USERNAME" in message
    assert "MAILROOM_CARDDAV_PASSWORD" in message
    assert "app password" in message
    assert PASSWORD not in message
    assert PASSWORD not in repr(client)


def test_a_refused_connection_is_a_transport_error(
    httpx_mock: HTTPXMock, client: CardDavClient
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"))
    with pytest.raises(TransportError) as caught:
        client.addressbook_url()
    assert PASSWORD not in str(caught.value)
    assert caught.value.service == "CardDAV"


def test_a_timeout_is_a_transport_error(httpx_mock: HTTPXMock, client: CardDavClient) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError, match="timed out"):
        client.addressbook_url()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_429_and_5xx_are_server_errors_with_retry_after(
    httpx_mock: HTTPXMock, book: CardDavClient, status: int
) -> None:
    httpx_mock.add_response(
        method="REPORT", url=BOOK, status_code=status, headers={"Retry-After": "7"}
    )
    with pytest.raises(ServerError) as caught:
        book.find_by_email("a@b.c")
    assert (caught.value.status, caught.value.retry_after) == (status, 7.0)


def test_an_unexpected_status_is_a_carddav_error(
    httpx_mock: HTTPXMock, book: CardDavClient
) -> None:
    httpx_mock.add_response(method="GET", url=BOOK + "gone.vcf", status_code=404)
    with pytest.raises(CardDavError) as caught:
        book.get(BOOK_PATH + "gone.vcf")
    assert (caught.value.status, caught.value.href) == (404, BOOK_PATH + "gone.vcf")
