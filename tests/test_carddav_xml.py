"""CardDAV request bodies (exact text) and multistatus parsing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mailroom.carddav import xml
from mailroom.carddav.models import Card

HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
NS = 'xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"'


def test_propfind_asks_for_exactly_the_named_properties() -> None:
    body = xml.propfind("d:resourcetype", "d:current-user-principal")
    expected = (
        f"{HEAD}<d:propfind {NS}><d:prop><d:resourcetype/><d:current-user-principal/>"
        "</d:prop></d:propfind>"
    ).encode()
    assert body == expected


def test_propfind_refuses_a_property_without_a_known_prefix() -> None:
    with pytest.raises(ValueError, match="unknown property"):
        xml.propfind("resourcetype")


def test_query_by_email_matches_equals_ignoring_case() -> None:
    expected = (
        f"{HEAD}<card:addressbook-query {NS}>"
        "<d:prop><d:getetag/><card:address-data/></d:prop>"
        '<card:filter><card:prop-filter name="EMAIL">'
        '<card:text-match collation="i;unicode-casemap" match-type="equals">Bob@Example.com'
        "</card:text-match></card:prop-filter></card:filter>"
        "</card:addressbook-query>"
    ).encode()
    assert xml.query_by_email("Bob@Example.com") == expected


def test_query_by_emails_matches_any_of_the_addresses() -> None:
    expected = (
        f"{HEAD}<card:addressbook-query {NS}>"
        "<d:prop><d:getetag/><card:address-data/></d:prop>"
        '<card:filter test="anyof">'
        '<card:prop-filter name="EMAIL">'
        '<card:text-match collation="i;unicode-casemap" match-type="equals">a@x.org'
        "</card:text-match></card:prop-filter>"
        '<card:prop-filter name="EMAIL">'
        '<card:text-match collation="i;unicode-casemap" match-type="equals">b&amp;c@y.org'
        "</card:text-match></card:prop-filter>"
        "</card:filter></card:addressbook-query>"
    ).encode()
    assert xml.query_by_emails(["a@x.org", "b&c@y.org"]) == expected


def test_query_by_emails_with_groups_asks_for_the_group_cards_in_the_same_filter() -> None:
    expected = (
        f"{HEAD}<card:addressbook-query {NS}>"
        "<d:prop><d:getetag/><card:address-data/></d:prop>"
        '<card:filter test="anyof">'
        '<card:prop-filter name="EMAIL">'
        '<card:text-match collation="i;unicode-casemap" match-type="equals">a@x.org'
        "</card:text-match></card:prop-filter>"
        '<card:prop-filter name="X-ADDRESSBOOKSERVER-KIND">'
        '<card:text-match collation="i;unicode-casemap" match-type="equals">group'
        "</card:text-match></card:prop-filter>"
        "</card:filter></card:addressbook-query>"
    ).encode()
    assert xml.query_by_emails(["a@x.org"], with_groups=True) == expected


def test_query_by_email_escapes_markup_in_the_address() -> None:
    body = xml.query_by_email('a<b>&"c"@x.org')
    assert b'>a&lt;b&gt;&amp;"c"@x.org</card:text-match>' in body
    match = ET.fromstring(body).find(  # noqa: S314
        ".//{urn:ietf:params:xml:ns:carddav}text-match"
    )
    assert match is not None
    assert match.text == 'a<b>&"c"@x.org'


def test_query_groups_filters_on_the_apple_kind_property() -> None:
    expected = (
        f"{HEAD}<card:addressbook-query {NS}>"
        "<d:prop><d:getetag/><card:address-data/></d:prop>"
        '<card:filter><card:prop-filter name="X-ADDRESSBOOKSERVER-KIND">'
        '<card:text-match collation="i;unicode-casemap" match-type="equals">group'
        "</card:text-match></card:prop-filter></card:filter>"
        "</card:addressbook-query>"
    ).encode()
    assert xml.query_groups() == expected


def test_query_all_sends_an_empty_filter() -> None:
    expected = (
        f"{HEAD}<card:addressbook-query {NS}>"
        "<d:prop><d:getetag/><card:address-data/></d:prop>"
        "<card:filter/></card:addressbook-query>"
    ).encode()
    assert xml.query_all() == expected


REPORT_ANSWER = b"""<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:response>
    <D:href>/dav/addressbooks/user/test/Default/bob%40home.vcf</D:href>
    <D:propstat>
      <D:prop>
        <D:getetag>"e73e1ad1"</D:getetag>
        <C:address-data>BEGIN:VCARD&#13;
VERSION:3.0&#13;
FN:Bob&#13;
END:VCARD&#13;
</C:address-data>
      </D:prop>
      <D:status>HTTP/1.1 200 OK</D:status>
    </D:propstat>
  </D:response>
  <D:response>
    <D:href>https://carddav.example.com/dav/addressbooks/user/test/Default/x.vcf</D:href>
    <D:propstat>
      <D:prop><C:address-data>BEGIN:VCARD
END:VCARD
</C:address-data></D:prop>
      <D:status>HTTP/1.1 200 OK</D:status>
    </D:propstat>
    <D:propstat>
      <D:prop><D:getetag/></D:prop>
      <D:status>HTTP/1.1 404 Not Found</D:status>
    </D:propstat>
  </D:response>
  <D:response>
    <D:href>/dav/addressbooks/user/test/Default/</D:href>
    <D:propstat>
      <D:prop><D:getetag/><C:address-data/></D:prop>
      <D:status>HTTP/1.1 404 Not Found</D:status>
    </D:propstat>
  </D:response>
</D:multistatus>
"""


def test_parse_cards_reads_href_etag_and_address_data() -> None:
    assert xml.parse_cards(REPORT_ANSWER) == [
        Card(
            href="/dav/addressbooks/user/test/Default/bob%40home.vcf",
            etag='"e73e1ad1"',
            text="BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nEND:VCARD\r\n",
        ),
        Card(
            href="/dav/addressbooks/user/test/Default/x.vcf",
            etag=None,
            text="BEGIN:VCARD\nEND:VCARD\n",
        ),
    ]


def test_parse_cards_of_an_empty_multistatus_is_empty() -> None:
    assert xml.parse_cards(b'<d:multistatus xmlns:d="DAV:"/>') == []


def test_parse_cards_lets_broken_xml_raise_parse_error() -> None:
    with pytest.raises(ET.ParseError):
        xml.parse_cards(b"<d:multistatus")


PRINCIPAL_ANSWER = b"""<?xml version="1.0"?>
<multistatus xmlns="DAV:">
  <response>
    <href>/</href>
    <propstat>
      <prop><resourcetype><collection/></resourcetype></prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
    <propstat>
      <prop><current-user-principal><href>/dav/principals/user/test/</href>
      </current-user-principal></prop>
      <status>HTTP/1.1 200 OK</status>
    </propstat>
  </response>
</multistatus>
"""


def test_parse_prop_href_finds_the_current_user_principal() -> None:
    assert (
        xml.parse_prop_href(PRINCIPAL_ANSWER, "d:current-user-principal")
        == "/dav/principals/user/test/"
    )


def test_parse_prop_href_ignores_properties_the_server_did_not_find() -> None:
    answer = b"""<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">
      <d:response><d:href>/p/</d:href><d:propstat>
        <d:prop><c:addressbook-home-set><d:href>/nope/</d:href></c:addressbook-home-set></d:prop>
        <d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response></d:multistatus>"""
    assert xml.parse_prop_href(answer, "card:addressbook-home-set") is None


def test_parse_prop_href_reduces_a_full_url_to_a_path() -> None:
    answer = b"""<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">
      <d:response><d:href>/p/</d:href><d:propstat><d:prop><c:addressbook-home-set>
        <d:href>https://carddav.example.com/dav/addressbooks/user/a%40b.c/</d:href>
      </c:addressbook-home-set></d:prop></d:propstat></d:response></d:multistatus>"""
    assert (
        xml.parse_prop_href(answer, "card:addressbook-home-set")
        == "/dav/addressbooks/user/a%40b.c/"
    )


HOME_ANSWER = b"""<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:response><D:href>/dav/addressbooks/user/test/</D:href>
    <D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop>
    <D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
  <D:response><D:href>/dav/addressbooks/user/test/Default/</D:href>
    <D:propstat><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>
    </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
  <D:response><D:href>/dav/addressbooks/user/test/Shared/</D:href>
    <D:propstat><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>
    </D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
</D:multistatus>
"""


def test_parse_addressbooks_lists_only_address_books_in_order() -> None:
    assert xml.parse_addressbooks(HOME_ANSWER) == [
        "/dav/addressbooks/user/test/Default/",
        "/dav/addressbooks/user/test/Shared/",
    ]


def test_is_addressbook_reads_the_first_response() -> None:
    assert not xml.is_addressbook(HOME_ANSWER)
    assert not xml.is_addressbook(PRINCIPAL_ANSWER)
    assert xml.is_addressbook(
        b'<m xmlns="DAV:"><response><href>/b/</href><propstat><prop><resourcetype>'
        b'<collection/><addressbook xmlns="urn:ietf:params:xml:ns:carddav"/>'
        b"</resourcetype></prop></propstat></response></m>"
    )


def test_server_path_keeps_percent_encoding() -> None:
    assert xml.server_path("/a%20b/c.vcf") == "/a%20b/c.vcf"
    assert xml.server_path("http://h:8008/a%20b/?x=1") == "/a%20b/?x=1"
