"""The guarded filing write (triage/guard.py) against a fake JMAP server at the transport.

The real server (tests/test_triage_gone_real.py) shows a mailbox deleted before a write.
What it cannot be made to do on demand is delete one *inside* a request, between the
guard and the Email/set; this fake does, as Cyrus 3.6 would answer it: the set says
``updated``, the mail put only in the dead mailbox can no longer be read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mailroom.errors import MailboxGone
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import EmailPatch, WholeMailboxes
from mailroom.triage.guard import Writer
from mailroom.triage.mailboxes import MailboxIds

IDS = MailboxIds(
    screener="S",
    inbox="I",
    trash=None,
    junk=None,
    error="E",
    warning=None,
    labels={"L": "Feed"},
    destinations={"Feed": "F"},
)


@dataclass
class FakeCyrus:
    """Mailboxes, emails and one state counter, answering the four calls of a guarded write."""

    mailboxes: set[str] = field(default_factory=lambda: {"S", "I", "E", "L", "F"})
    emails: dict[str, set[str]] = field(default_factory=dict)
    state: int = 1
    delete_inside_set: str | None = None  # deleted between the guard and the Email/set
    change_before_guard: int = 0  # other changes (new mail) just before the next guards
    sets: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=SESSION)
        calls = json.loads(request.content)["methodCalls"]
        failed: set[str] = set()
        return httpx.Response(
            200, json={"methodResponses": [self.answer(c, failed) for c in calls]}
        )

    def answer(self, call: list[Any], failed: set[str]) -> list[Any]:
        name, args, cid = call
        if name == "Mailbox/set":
            if self.change_before_guard:
                self.change_before_guard -= 1
                self.state += 1
            if args["ifInState"] != str(self.state):
                failed.add(cid)
                return ["error", {"type": "stateMismatch"}, cid]
            return [name, {"accountId": "a", "oldState": str(self.state)}, cid]
        if name == "Email/set":
            if args["#accountId"]["resultOf"] in failed:
                return ["error", {"type": "resultReference"}, cid]
            return [name, self.set(args["update"]), cid]
        if name == "Mailbox/get":
            found = [{"id": m, "name": m} for m in args["ids"] if m in self.mailboxes]
            notfound = [m for m in args["ids"] if m not in self.mailboxes]
            return [name, {"state": str(self.state), "list": found, "notFound": notfound}, cid]
        if name == "Email/get":
            listed = []
            for eid in args["ids"]:
                live = self.emails[eid] & self.mailboxes
                if live:
                    listed.append({"id": eid, "mailboxIds": dict.fromkeys(live, True)})
            return [name, {"state": str(self.state), "list": listed}, cid]
        raise AssertionError(name)

    def set(self, update: dict[str, dict[str, Any]]) -> dict[str, Any]:
        self.sets += 1
        if self.delete_inside_set:
            self.mailboxes.discard(self.delete_inside_set)
            self.delete_inside_set = None
        old = self.state
        for eid, patch in update.items():
            for key, value in patch.items():
                box = key.removeprefix("mailboxIds/")
                (self.emails[eid].add if value else self.emails[eid].discard)(box)
        self.state += 1
        return {"oldState": str(old), "newState": str(self.state), "updated": {}}


SESSION = {
    "apiUrl": "/jmap/",
    "capabilities": {
        "urn:ietf:params:jmap:core": {
            "maxObjectsInGet": 50,
            "maxObjectsInSet": 50,
            "maxCallsInRequest": 50,
        }
    },
    "primaryAccounts": {"urn:ietf:params:jmap:mail": "a"},
}
TO_FEED = EmailPatch(add=frozenset({"F"}), remove=frozenset({"S"}))


def writer(server: FakeCyrus) -> Writer:
    jmap = JmapClient("http://jmap.test/jmap/", "t", transport=httpx.MockTransport(server))
    return Writer(jmap, screener=IDS.screener, error=IDS.error)


def test_mail_that_lost_its_new_mailbox_inside_the_write_goes_back_to_the_screener() -> None:
    server = FakeCyrus(emails={"other": {"S"}, "labelled": {"S", "L"}})
    server.delete_inside_set = "F"  # after the guard passed, before the set ran
    w = writer(server)

    w.update({"other": TO_FEED, "labelled": TO_FEED})

    assert w.lost == {"other"}  # only in the dead mailbox now: nothing can reach it
    assert w.unfiled == {"labelled"}  # still readable: put back, with the error label
    assert server.emails["labelled"] & server.mailboxes == {"L", "S", "E"}


def test_a_mailbox_seen_gone_stops_the_write_before_anything_is_written() -> None:
    server = FakeCyrus(emails={"a": {"S"}})
    server.mailboxes.discard("F")
    w = writer(server)

    with pytest.raises(MailboxGone) as gone:
        w.update({"a": TO_FEED})

    assert gone.value.mailbox_ids == {"F"}
    assert (server.sets, server.emails["a"]) == (0, {"S"})


def test_other_changes_to_the_mailboxes_only_cost_another_try() -> None:
    server = FakeCyrus(emails={"a": {"S"}})
    w = writer(server)
    w.update({"a": EmailPatch(add=frozenset({"I"}))})  # reads the state, writes
    server.change_before_guard = 2  # new mail arrives just before each of the next two

    w.update({"a": TO_FEED})

    assert server.emails["a"] == {"F", "I"}
    assert (w.lost, w.unfiled) == (set(), set())


def test_what_a_patch_or_a_whole_set_puts_mail_in() -> None:
    assert EmailPatch(add=frozenset({"F"}), remove=frozenset({"S"})).joins == {"F"}
    assert WholeMailboxes(frozenset({"F", "P"})).joins == {"F", "P"}
