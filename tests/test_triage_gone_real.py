"""A category's destination mailbox deleted while mailroom runs, against a real Cyrus.

Cyrus 3.6 answers ``updated`` to an Email/set that moves mail into a mailbox id
destroyed a moment before, and that mail can no longer be read. mailroom must never be
the one that moves it there: the mail stays reachable, the category stops alone, its
senders keep their label and wait, and the other categories are triaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx
import pytest
from structlog.testing import capture_logs

from mailroom_dev.realserver import Account
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real


@dataclass
class DestroyBeforeFirstEmailSet(httpx.BaseTransport):
    """Just before mailroom's first request carrying an Email/set, the user deletes a mailbox
    (as in the web UI): after mailroom's scan and its contact writes, before its filing."""

    account: Account
    mailbox: str
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    destroyed: bool = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.destroyed and request.method == "POST" and _has_email_set(request):
            mid = self.account.mailbox_ids()[self.mailbox]
            result = self.account.call("Mailbox/set", {"destroy": [mid]})
            assert result.get("destroyed") == [mid], result
            self.destroyed = True
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _has_email_set(request: httpx.Request) -> bool:
    try:
        calls = json.loads(request.content)["methodCalls"]
    except (ValueError, KeyError, TypeError):
        return False
    return any(name == "Email/set" for name, _args, _id in calls)


def two_categories(box: Box) -> tuple[list[str], list[str]]:
    """Feed's sender (3 emails, one labelled) and Paper Trail's (2 emails, one labelled)."""
    feed = [box.deliver(from_addr="news@feed.example", subject=f"feed-{i}") for i in range(3)]
    paper = [box.deliver(from_addr="bills@paper.example", subject=f"bill-{i}") for i in range(2)]
    box.label(feed[0], "@ToFeed")
    box.label(paper[0], "@ToPaperTrail")
    return feed, paper


def test_a_destination_deleted_between_scan_and_filing_loses_no_mail(account: Account) -> None:
    box = Box.create(account)
    feed, paper = two_categories(box)
    transport = DestroyBeforeFirstEmailSet(account, "Feed")

    report = box.triage(transport)

    assert transport.destroyed
    # Every email of Feed's sender can still be read, in the Screener; the label stays.
    assert box.where(feed[0]) == {"Screener", "@ToFeed"}
    assert [box.where(e) for e in feed[1:]] == [{"Screener"}, {"Screener"}]
    # The other category was triaged as if nothing happened.
    assert [box.where(e) for e in paper] == [{"Paper Trail"}, {"Paper Trail"}]
    assert box.groups_of("bills@paper.example") == {"Paper Trail", "Mailroom"}
    assert (report.senders_triaged, report.failures, report.waiting) == (1, 0, 1)


def test_a_deleted_destination_stops_only_its_category_pass_after_pass(account: Account) -> None:
    box = Box.create(account)
    feed, paper = two_categories(box)
    billboard = box.deliver(from_addr="ads@board.example", subject="ad")  # Paper Trail's child
    box.label(billboard, "@ToBillboard")
    person = box.deliver(from_addr="ada@people.example", subject="hi")
    box.label(person, "@ToPerson")
    gone = account.mailbox_ids()["Paper Trail"]
    assert account.call("Mailbox/set", {"destroy": [gone]}).get("destroyed") == [gone]

    with capture_logs() as logs:
        first = box.triage()
    second = box.triage()  # the senders on hold wait: no strike, no error label

    stopped = [e for e in logs if e["event"] == "category_stopped"]
    assert [(e["category"], e["mailbox"], e["senders_waiting"]) for e in stopped] == [
        ("Paper Trail", "Paper Trail", 2)  # one line; Billboard is below Paper Trail
    ]

    assert (first.senders_triaged, first.failures, first.waiting) == (2, 0, 2)
    assert (second.senders_triaged, second.failures, second.waiting) == (0, 0, 2)
    assert [box.where(e) for e in feed] == [{"Feed"}] * 3
    assert box.where(person) == {"Person", "Imbox"}
    assert box.where(paper[0]) == {"Screener", "@ToPaperTrail"}
    assert box.where(paper[1]) == {"Screener"}
    assert box.where(billboard) == {"Screener", "@ToBillboard"}
    assert account.contacts_with_email("bills@paper.example") == []  # nothing done for it

    account.create_mailbox("Paper Trail")  # the user puts it back: the senders go on
    third = box.triage()

    assert (third.senders_triaged, third.failures, third.waiting) == (2, 0, 0)
    assert [box.where(e) for e in paper] == [{"Paper Trail"}] * 2
    assert box.where(billboard) == {"Billboard", "Paper Trail"}
