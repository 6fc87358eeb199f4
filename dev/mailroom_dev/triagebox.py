"""A real Cyrus account prepared by `mailroom setup --apply`, with helpers to act as the
user (deliver, label) and to read the end state (mailboxes, contacts, groups)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings, load_settings
from mailroom.jmap.client import JmapClient
from mailroom.jmap.sieve import CYRUS_SIEVE, RFC_SIEVE
from mailroom.ops import setup
from mailroom.triage.engine import Triager
from mailroom.triage.report import PassReport
from mailroom_dev.realserver import (
    REALM,
    Account,
    imap_append,
    messages,
    sieve_call,
    sieve_scripts,
    vcard_props,
)


@dataclass
class Box:
    account: Account
    settings: Settings

    @classmethod
    def create(cls, account: Account, config: Mapping[str, str] | None = None) -> Box:
        settings = load_settings({**account.env(), **(config or {})})
        assert setup.main(settings, apply=True) == 0
        return cls(account, settings)

    # -- acting as the user
    def deliver(self, mailbox: str = "Screener", **kw: Any) -> str:
        return self.account.deliver(mailbox, **kw)

    def label(self, email_id: str, *labels: str) -> None:
        ids = self.account.mailbox_ids()
        patch = {f"mailboxIds/{ids[name]}": True for name in labels}
        result = self.account.call("Email/set", {"update": {email_id: patch}})
        assert email_id in (result.get("updated") or {}), result

    def searchable(self, *addresses: str) -> None:
        for address in addresses:
            self.account.wait_searchable(address)

    # -- mailroom
    def clients(
        self, transport: httpx.BaseTransport | None = None
    ) -> tuple[JmapClient, CardDavClient]:
        s, c = self.settings, self.settings.credentials()
        jmap = JmapClient(s.jmap_session_url, c.jmap_token, transport=transport)
        carddav = CardDavClient(
            s.carddav_url, c.carddav_username, c.carddav_password, transport=transport
        )
        return jmap, carddav

    def triage(self, transport: httpx.BaseTransport | None = None) -> PassReport:
        jmap, carddav = self.clients(transport)
        try:
            return Triager(self.settings, jmap, carddav).run_pass("test")
        finally:
            jmap.close()
            carddav.close()

    # -- reading the end state
    def where(self, email_id: str) -> frozenset[str]:
        (found,) = [e for e in self.account.emails() if e.id == email_id]
        return found.mailboxes

    def contact(self, address: str) -> dict[str, list[str]]:
        (card,) = self.account.contacts_with_email(address)
        return vcard_props(card)

    def groups_of(self, address: str) -> set[str]:
        uid = self.contact(address)["UID"][0]
        return {name for name, members in self.account.groups().items() if uid in members}

    def state(self) -> dict[str, Any]:
        """Everything triage can change, keyed by what does not depend on ids."""
        mail = sorted(
            (e.subject or "", e.from_email or "", tuple(sorted(e.mailboxes)))
            for e in self.account.emails()
        )
        groups = self.account.groups()
        people = []
        for text in self.account.cards():
            props = vcard_props(text)
            if "X-ADDRESSBOOKSERVER-KIND" in props:
                continue
            uid = props["UID"][0]
            member_of = sorted(n for n, m in groups.items() if uid in m)
            emails = sorted(e.lower() for e in props.get("EMAIL", []))
            people.append((emails, props.get("FN"), props.get("NOTE"), member_of))
        return {"mail": mail, "contacts": sorted(people, key=repr)}


def fill_screener(box: Box, sender: str, count: int) -> str:
    """``count`` emails from ``sender`` in the Screener; the JMAP id of the first.

    The first comes through JMAP (its id is needed to label it); the rest by IMAP
    MULTIAPPEND over one connection (about 1 ms a message on loopback).
    """
    first = box.deliver(from_addr=sender, subject=f"{sender} #0")
    to = f"{box.account.username}@{REALM}"
    imap_append(
        box.account, box.settings.screener_mailbox, messages(sender, count - 1, to=to, start=1)
    )
    return first


# -- a server without rules: Fastmail where the user made none


class NoSieve(httpx.BaseTransport):
    """The real server, with the Sieve capabilities taken out of its session: mailroom
    sees a server it cannot install rules on, as Fastmail."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method != "GET" or not request.url.path.rstrip("/").endswith("/jmap"):
            return response
        data = json.loads(response.read())
        for key in (RFC_SIEVE, CYRUS_SIEVE):
            data.get("capabilities", {}).pop(key, None)
        return httpx.Response(response.status_code, json=data)

    def close(self) -> None:
        self._inner.close()


def without_rules(box: Box) -> Box:
    """Take mailroom's Sieve rules out of the account: new mail delivered over LMTP lands
    in the Inbox, as on Fastmail when the user made no rules."""
    listed = sieve_call(box.account, "SieveScript/get", {"ids": None})["list"]
    sieve_call(box.account, "SieveScript/set", {"onSuccessActivateScript": None})
    sieve_call(box.account, "SieveScript/set", {"destroy": [s["id"] for s in listed]})
    if sieve_scripts(box.account):
        raise AssertionError(f"Sieve scripts left: {sieve_scripts(box.account)}")
    return box
