"""The guarded write started from what the pass's scan saw (``Writer(seen=...)``).

The scan reads every mailbox and the Mailbox state in one Mailbox/get, so the first
guard checks that state and the write needs no Mailbox/get of its own. The guard stays
as strong: whatever changed since the scan (new mail, a deleted mailbox) refuses it,
and the refusal's answer says what is true now. Same fake server as test_triage_guard.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
import pytest
from test_triage_guard import IDS, TO_FEED, FakeCyrus

from mailroom.errors import MailboxGone
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import EmailPatch, MailboxesSeen
from mailroom.triage.guard import Writer


@dataclass
class Recording(FakeCyrus):
    """The fake server, keeping the method names of every request (a list per POST)."""

    requests: list[list[str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.requests.append([c[0] for c in json.loads(request.content)["methodCalls"]])
        return super().__call__(request)


GUARDED = ["Mailbox/set", "Email/set", "Mailbox/get"]


def seeded(server: Recording, seen: MailboxesSeen) -> Writer:
    jmap = JmapClient("http://jmap.test/jmap/", "t", transport=httpx.MockTransport(server))
    return Writer(jmap, screener=IDS.screener, error=IDS.error, seen=seen)


def scanned(server: FakeCyrus) -> MailboxesSeen:
    """What the scan's Mailbox/get of every mailbox would have said just now."""
    return MailboxesSeen(str(server.state), frozenset(server.mailboxes))


def test_a_seeded_first_write_is_one_request() -> None:
    server = Recording(emails={"a": {"S"}})
    w = seeded(server, scanned(server))

    w.update({"a": TO_FEED})

    assert server.requests == [GUARDED]  # no Mailbox/get of its own before the write
    assert server.emails["a"] == {"F"}


def test_new_mail_since_the_scan_refuses_the_first_guard_and_the_write_is_sent_again() -> None:
    server = Recording(emails={"a": {"S"}})
    w = seeded(server, scanned(server))
    server.state += 1  # mail arrived after the scan: Cyrus's Mailbox state moves on

    w.update({"a": TO_FEED})

    assert server.requests == [GUARDED, GUARDED]  # refused, learned the state, sent again
    assert (server.sets, server.emails["a"]) == (1, {"F"})
    assert (w.lost, w.unfiled) == (set(), set())


def test_a_mailbox_deleted_after_the_scan_is_caught_and_nothing_is_written() -> None:
    server = Recording(emails={"a": {"S"}})
    w = seeded(server, scanned(server))
    server.mailboxes.discard("F")  # the user deletes Feed between the scan and the write
    server.state += 1

    with pytest.raises(MailboxGone) as gone:
        w.update({"a": TO_FEED})

    assert gone.value.mailbox_ids == {"F"}
    assert server.requests == [GUARDED]  # the refusal's Mailbox/get says F is gone
    assert (server.sets, server.emails["a"]) == (0, {"S"})


def test_a_destination_the_scan_did_not_see_is_read_before_the_write() -> None:
    server = Recording(emails={"a": {"S"}})
    seen = scanned(server)
    server.mailboxes.add("P")  # created after the scan (and the state moved on)
    server.state += 1
    w = seeded(server, seen)

    w.update({"a": EmailPatch(add=frozenset({"P"}), remove=frozenset({"S"}))})

    assert server.requests == [["Mailbox/get"], GUARDED]
    assert server.emails["a"] == {"P"}


def test_a_destination_missing_from_the_scan_and_gone_stops_the_write() -> None:
    server = Recording(emails={"a": {"S"}})
    server.mailboxes.discard("F")
    w = seeded(server, scanned(server))

    with pytest.raises(MailboxGone) as gone:
        w.update({"a": TO_FEED})

    assert gone.value.mailbox_ids == {"F"}
    assert server.requests == [["Mailbox/get"]]  # read, seen gone: no write sent
    assert (server.sets, server.emails["a"]) == (0, {"S"})
