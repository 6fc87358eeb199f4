"""CardDavClient: discovery, address-book queries and conditional writes over httpx.

Basic auth on every request. Every write is conditional: ``If-None-Match: *`` to
create, ``If-Match`` to change or delete; a 412 raises PreconditionFailed. httpx and
XML errors are translated here, once. The password appears in no error and no repr.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from mailroom.carddav import xml
from mailroom.carddav.models import Card
from mailroom.errors import (
    CardDavError,
    PreconditionFailed,
)
from mailroom.httpbounds import MIB, HttpLimits, new_client
from mailroom.httpfaults import common_fault, send

SERVICE = "CardDAV"
AUTH_HINT = (
    "check MAILROOM_CARDDAV_USERNAME and MAILROOM_CARDDAV_PASSWORD; on Fastmail use your "
    "full address and an app password (Settings > Privacy & Security > App passwords)"
)
VCARD_TYPE = "text/vcard; charset=utf-8"
MULTISTATUS = (207,)
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
# 60 s per request; 128 MiB per answer: `reset` lists every card, photos included
CARDDAV_LIMITS = HttpLimits(max_body=128 * MIB)


class CardDavClient:
    """A CardDAV client for one address book; ``requests_made`` counts every HTTP request."""

    # Called before every HTTP request; may raise to stop a pass between two requests.
    before_request: Callable[[], None] | None = None

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        transport: httpx.BaseTransport | None = None,
        limits: HttpLimits = CARDDAV_LIMITS,
    ) -> None:
        self._url = url
        self._username = username
        self._book: str | None = None
        self._limits = limits
        self.requests_made = 0
        self._http = new_client(
            limits,
            transport,
            auth=httpx.BasicAuth(username, password),
            event_hooks={"request": [self._count]},
        )

    def __repr__(self) -> str:
        return f"CardDavClient(url={self._url!r}, username={self._username!r})"

    def _count(self, request: httpx.Request) -> None:
        if self.before_request is not None:
            self.before_request()
        self.requests_made += 1

    # -- discovery ---------------------------------------------------------------

    def addressbook_url(self) -> str:
        """The address book's URL: ``url`` itself if it is one, else discovered (cached)."""
        if self._book is None:
            self._book = self._discover()
        return self._book

    def _discover(self) -> str:
        try:
            return self._discover_steps()
        except ET.ParseError as exc:
            raise CardDavError(207, self._url, "discovery (an answer is not XML)") from exc

    def _discover_steps(self) -> str:
        start = ("d:resourcetype", "d:current-user-principal")
        url, body = self._propfind(self._url, start, depth="0")
        if xml.is_addressbook(body):
            return _as_collection(url)
        # The start URL's own answer names the principal on most servers: then asking
        # /.well-known/carddav as well would tell us nothing new.
        principal = _href_url(url, body, start[1]) or self._well_known_principal()
        if principal is None:
            raise CardDavError(404, self._url, "discovery of current-user-principal")
        url, body = self._propfind(principal, ("card:addressbook-home-set",), depth="0")
        home = _href_url(url, body, "card:addressbook-home-set")
        if home is None:
            raise CardDavError(404, principal, "discovery of addressbook-home-set")
        url, body = self._propfind(home, ("d:resourcetype",), depth="1")
        books = xml.parse_addressbooks(body)
        if not books:
            raise CardDavError(404, home, "discovery of an address book")
        return _as_collection(urljoin(url, books[0]))

    def _well_known_principal(self) -> str | None:
        well_known = urljoin(self._url, "/.well-known/carddav")
        try:
            url, body = self._propfind(well_known, ("d:current-user-principal",), depth="0")
        except CardDavError:
            return None  # no well-known service either
        return _href_url(url, body, "d:current-user-principal")

    def _propfind(self, url: str, props: tuple[str, ...], *, depth: str) -> tuple[str, bytes]:
        """PROPFIND following redirects by hand (httpx would turn them into GETs)."""
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        for _ in range(MAX_REDIRECTS + 1):
            body = xml.propfind(*props)
            expected = MULTISTATUS + REDIRECTS
            response = self._send(
                "PROPFIND", url, "PROPFIND", expected, content=body, headers=headers
            )
            if response.status_code not in REDIRECTS:
                return url, response.content
            url = _redirect_target(url, response)
        raise CardDavError(response.status_code, url, "PROPFIND (too many redirects)")

    # -- reading -----------------------------------------------------------------

    def find_by_email(self, email: str) -> list[Card]:
        """Cards with an EMAIL equal to ``email``, ignoring case (the server compares)."""
        return self._report(xml.query_by_email(email))

    def find_by_emails(
        self, emails: Sequence[str], *, per_query: int = 50, with_groups: bool = False
    ) -> list[Card]:
        """Cards with an EMAIL equal to any of ``emails``: one REPORT per ``per_query``.

        With ``with_groups`` the first REPORT asks for every group card as well.
        """
        found: dict[str, Card] = {}
        if not emails and not with_groups:
            return []  # an empty anyof filter would match every card
        for start in range(0, max(len(emails), 1), per_query):
            chunk = emails[start : start + per_query]
            body = xml.query_by_emails(chunk, with_groups=with_groups and start == 0)
            for card in self._report(body):
                found.setdefault(card.href, card)
        return list(found.values())

    def list_groups(self) -> list[Card]:
        return self._report(xml.query_groups())

    def list_all(self) -> list[Card]:
        return self._report(xml.query_all())

    def _report(self, body: bytes) -> list[Card]:
        url = self.addressbook_url()
        headers = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}
        response = self._send("REPORT", url, "REPORT", MULTISTATUS, content=body, headers=headers)
        try:
            return xml.parse_cards(response.content)
        except ET.ParseError as exc:
            raise CardDavError(response.status_code, url, "REPORT (answer is not XML)") from exc

    def get(self, href: str) -> Card:
        response = self._send("GET", self._absolute(href), "GET", (200,))
        return Card(href=href, etag=response.headers.get("ETag"), text=response.text)

    # -- conditional writes ------------------------------------------------------

    def create(self, text: str, *, uid: str) -> Card:
        """PUT a new card at ``<book>/<uid>.vcf``; 412 when that resource already exists."""
        href = urlsplit(self.addressbook_url()).path + quote(uid, safe="") + ".vcf"
        return self._put(href, text, {"If-None-Match": "*"})

    def update(self, card: Card, text: str) -> Card:
        """Replace ``card`` if it is unchanged since it was read; 412 otherwise."""
        if not card.etag:
            raise PreconditionFailed(card.href)  # no ETag to guard with: read it again
        return self._put(card.href, text, {"If-Match": card.etag})

    def delete(self, card: Card) -> None:
        """Delete ``card`` if it is unchanged since it was read; a card already gone is fine."""
        if not card.etag:
            raise PreconditionFailed(card.href)
        headers = {"If-Match": card.etag}
        self._send("DELETE", self._absolute(card.href), "DELETE", (200, 204, 404), headers=headers)

    def _put(self, href: str, text: str, condition: dict[str, str]) -> Card:
        headers = {"Content-Type": VCARD_TYPE, **condition}
        url = self._absolute(href)
        response = self._send("PUT", url, "PUT", (200, 201, 204), content=text, headers=headers)
        etag = response.headers.get("ETag")
        if not etag:
            return self.get(href)  # the server may have changed the text; read what it kept
        return Card(href=href, etag=etag, text=text)

    # -- HTTP --------------------------------------------------------------------

    def _absolute(self, href: str) -> str:
        return urljoin(self.addressbook_url(), href)

    def _send(
        self, method: str, url: str, what: str, expected: Collection[int], **kwargs: Any
    ) -> httpx.Response:
        response = send(self._http, SERVICE, method, url, limits=self._limits, **kwargs)
        if response.status_code not in expected:
            raise_for_status(response, what)
        return response

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CardDavClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def raise_for_status(response: httpx.Response, what: str, *, now: datetime | None = None) -> None:
    """Translate an unexpected HTTP status into mailroom's error tree."""
    status = response.status_code
    href = urlsplit(str(response.request.url)).path
    fault = common_fault(response, SERVICE, AUTH_HINT, now=now)
    if fault is not None:
        raise fault
    if status == 412:
        raise PreconditionFailed(href)
    raise CardDavError(status, href, what)


def _redirect_target(url: str, response: httpx.Response) -> str:
    location: str | None = response.headers.get("Location")
    if not location:
        raise CardDavError(response.status_code, url, "PROPFIND (redirect without Location)")
    target = urljoin(url, location)
    if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
        raise CardDavError(response.status_code, url, "PROPFIND (redirect away from https)")
    return target


def _href_url(url: str, body: bytes, prop: str) -> str | None:
    href = xml.parse_prop_href(body, prop)
    return urljoin(url, href) if href else None


def _as_collection(url: str) -> str:
    return url if url.endswith("/") else url + "/"
