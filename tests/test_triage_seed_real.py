"""The filing guard started from the scan's Mailbox/get, against a real Cyrus.

The scan reads every mailbox and the Mailbox state in its one request; the first
guarded write of the pass checks that state, with no Mailbox/get of its own. Mail that
arrives between the scan and the write changes the Mailbox state (the counts): the
guard is refused, and the write goes again with the state its answer carried.
(A mailbox deleted in between: tests/test_triage_gone_real.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from mailroom.jmap.models import MailboxesSeen
from mailroom.triage.engine import Triager
from mailroom.triage.scan import Scanner
from mailroom_dev.realserver import Account
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real


@dataclass
class Recorder(httpx.BaseTransport):
    """The real server; the method names of every JMAP request, whether each guard
    (the Mailbox/set ``ms``) was refused, and ``act`` run once before the first Email/set."""

    act: Callable[[], object] | None = None
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    sent: list[list[str]] = field(default_factory=list)
    refused: list[bool] = field(default_factory=list)  # one per guarded request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        names = _methods(request.content) if request.method == "POST" else None
        if names is not None:
            self.sent.append(names)
            if self.act is not None and "Email/set" in names:
                self.act, act = None, self.act
                act()
        response = self.inner.handle_request(request)
        if names is not None and "Mailbox/set" in names:
            body = json.loads(response.read())
            answers = {cid: name for name, _args, cid in body["methodResponses"]}
            self.refused.append(answers.get("ms") == "error")
        return response

    def close(self) -> None:
        self.inner.close()


def _methods(content: bytes) -> list[str] | None:
    try:
        return [name for name, _args, _id in json.loads(content)["methodCalls"]]
    except (ValueError, KeyError, TypeError):
        return None


def test_the_scan_keeps_every_mailbox_it_read_and_their_state(account: Account) -> None:
    box = Box.create(account)
    jmap, carddav = box.clients()
    try:
        scanner = Scanner(box.settings, jmap)
        fresh = scanner.scan()  # at start: the mailboxes read on their own
        along = scanner.scan()  # then: read along with the label query
        mailboxes, state = jmap.get_mailboxes()
    finally:
        jmap.close()
        carddav.close()
    assert fresh.seen == along.seen == MailboxesSeen(state, frozenset(m.id for m in mailboxes))
    assert {"Screener", "Feed", "@ToFeed"} <= {m.name for m in mailboxes}


def passes(box: Box, transport: Recorder, mail: str) -> list[list[str]]:
    """A start pass (nothing labelled), then ``mail`` labelled @ToFeed and a pass: the
    requests of that second pass."""
    jmap, carddav = box.clients(transport)
    try:
        triager = Triager(box.settings, jmap, carddav)
        triager.run_pass("startup")
        box.label(mail, "@ToFeed")
        transport.sent.clear()
        report = triager.run_pass("push")
    finally:
        jmap.close()
        carddav.close()
    assert (report.senders_triaged, report.failures) == (1, 0)
    return transport.sent


def test_a_pass_files_without_a_mailbox_get_of_its_own(account: Account) -> None:
    box = Box.create(account)
    mail = box.deliver(from_addr="news@seed.example", subject="seeded")
    transport = Recorder()

    sent = passes(box, transport, mail)

    assert box.where(mail) == {"Feed"}
    assert ["Mailbox/get"] not in sent  # the guard started from the scan's Mailbox/get
    assert transport.refused == [False]  # one guarded write, accepted at the first try


def test_mail_arriving_after_the_scan_refuses_the_first_guard_and_the_filing_goes_again(
    account: Account,
) -> None:
    box = Box.create(account)
    mail = box.deliver(from_addr="news@seed.example", subject="seeded")
    late: list[str] = []
    transport = Recorder(
        act=lambda: late.append(box.deliver(from_addr="late@other.example", subject="late"))
    )

    passes(box, transport, mail)

    assert transport.refused[0]  # new mail in the Screener moved the Mailbox state on
    assert not any(transport.refused[1:])  # sent again with the state the refusal carried
    assert box.where(mail) == {"Feed"}
    assert box.where(late[0]) == {"Screener"}  # not this pass's: untouched
