"""WebDAV/CardDAV XML: request bodies for PROPFIND and REPORT, and 207 multistatus parsing.

Pure functions, no I/O. Bodies are built from fixed templates (tested as exact text);
answers are read with ElementTree. Hrefs are kept as the server wrote them (still
percent-encoded), reduced to a server path when the server sent a full URL.
``xml.etree.ElementTree.ParseError`` is left to the client, which translates it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from mailroom.carddav.models import Card

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
_PREFIXES = {"d": DAV, "card": CARDDAV}
_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'
_NS = f'xmlns:d="{DAV}" xmlns:card="{CARDDAV}"'


def propfind(*props: str) -> bytes:
    """A PROPFIND body asking for ``props``, written as ``d:name`` or ``card:name``."""
    for prop in props:
        prefix, _, name = prop.partition(":")
        if prefix not in _PREFIXES or not name:
            raise ValueError(f"unknown property {prop!r}; use d:<name> or card:<name>")
    inner = "".join(f"<{prop}/>" for prop in props)
    return f"{_HEAD}<d:propfind {_NS}><d:prop>{inner}</d:prop></d:propfind>".encode()


def _addressbook_query(filter_xml: str) -> bytes:
    return (
        f"{_HEAD}<card:addressbook-query {_NS}>"
        "<d:prop><d:getetag/><card:address-data/></d:prop>"
        f"{filter_xml}</card:addressbook-query>"
    ).encode()


def _prop_equals(prop: str, value: str) -> str:
    return (
        f"<card:prop-filter name={quoteattr(prop)}>"
        '<card:text-match collation="i;unicode-casemap" match-type="equals">'
        f"{escape(value)}</card:text-match></card:prop-filter>"
    )


def _equals_filter(prop: str, value: str) -> str:
    return f"<card:filter>{_prop_equals(prop, value)}</card:filter>"


def query_by_email(email: str) -> bytes:
    """REPORT addressbook-query: cards with an EMAIL equal to ``email``, ignoring case."""
    return _addressbook_query(_equals_filter("EMAIL", email))


def query_by_emails(emails: Sequence[str], *, with_groups: bool = False) -> bytes:
    """REPORT addressbook-query: cards with an EMAIL equal to any of ``emails`` (anyof);
    with ``with_groups``, the group cards too (one REPORT instead of two)."""
    tests = "".join(_prop_equals("EMAIL", e) for e in emails)
    if with_groups:
        tests += _prop_equals("X-ADDRESSBOOKSERVER-KIND", "group")
    return _addressbook_query(f'<card:filter test="anyof">{tests}</card:filter>')


def query_groups() -> bytes:
    """REPORT addressbook-query: Apple-style group cards (X-ADDRESSBOOKSERVER-KIND:group)."""
    return _addressbook_query(_equals_filter("X-ADDRESSBOOKSERVER-KIND", "group"))


def query_all() -> bytes:
    """REPORT addressbook-query with an empty filter: every card (RFC 6352 section 10.5)."""
    return _addressbook_query("<card:filter/>")


def server_path(href: str) -> str:
    """``href`` as a server path: a full URL loses its scheme and host; encoding is kept."""
    parts = urlsplit(href)
    if not parts.scheme:
        return href
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _responses(body: bytes) -> list[ET.Element]:
    # The answer comes from the user's own server, and expat >= 2.4 caps entity expansion.
    root = ET.fromstring(body)  # noqa: S314
    return root.findall(f"{{{DAV}}}response")


def _ok_props(response: ET.Element) -> list[ET.Element]:
    """The ``prop`` elements of the propstats whose status is 2xx (or absent)."""
    found = []
    for propstat in response.findall(f"{{{DAV}}}propstat"):
        status = propstat.findtext(f"{{{DAV}}}status", default="").split()
        if len(status) >= 2 and not status[1].startswith("2"):
            continue
        found.extend(propstat.findall(f"{{{DAV}}}prop"))
    return found


def _find(response: ET.Element, tag: str) -> ET.Element | None:
    for prop in _ok_props(response):
        element = prop.find(tag)
        if element is not None:
            return element
    return None


def _href(response: ET.Element) -> str:
    return server_path((response.findtext(f"{{{DAV}}}href") or "").strip())


def parse_cards(body: bytes) -> list[Card]:
    """The (href, etag, address-data) of every response in a REPORT answer that has a card."""
    cards = []
    for response in _responses(body):
        data = _find(response, f"{{{CARDDAV}}}address-data")
        if data is None or not (data.text or "").strip():
            continue
        etag = _find(response, f"{{{DAV}}}getetag")
        etag_text = (etag.text or "").strip() if etag is not None else ""
        cards.append(Card(href=_href(response), etag=etag_text or None, text=data.text or ""))
    return cards


def parse_prop_href(body: bytes, prop: str) -> str | None:
    """The first href inside property ``prop`` (``d:name`` or ``card:name``), if any."""
    prefix, _, name = prop.partition(":")
    tag = f"{{{_PREFIXES[prefix]}}}{name}"
    for response in _responses(body):
        element = _find(response, tag)
        href = element.findtext(f"{{{DAV}}}href") if element is not None else None
        if href and href.strip():
            return server_path(href.strip())
    return None


def is_addressbook(body: bytes) -> bool:
    """True when the first response's resourcetype says it is an address book."""
    responses = _responses(body)
    return bool(responses) and _has_addressbook_type(responses[0])


def _has_addressbook_type(response: ET.Element) -> bool:
    kind = _find(response, f"{{{DAV}}}resourcetype")
    return kind is not None and kind.find(f"{{{CARDDAV}}}addressbook") is not None


def parse_addressbooks(body: bytes) -> list[str]:
    """Hrefs of the responses whose resourcetype is an address book, in the server's order."""
    return [_href(r) for r in _responses(body) if _has_addressbook_type(r)]
