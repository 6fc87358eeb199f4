"""Triage under faults, against a real Cyrus: a pass killed anywhere, a group edited
between mailroom's read and its write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from mailroom.errors import PassDeadline
from mailroom.service.health import evaluate
from mailroom.service.worker import parked_entries
from mailroom.triage.engine import Triager
from mailroom.triage.parking import PARK_AFTER
from mailroom_dev.realserver import Account, CyrusServer, new_account
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real


class Killed(BaseException):
    """Stands for the process dying: nothing in mailroom may catch it."""


@dataclass
class Counter:
    kill_after: int | None = None
    sent: int = 0


@dataclass
class CountingTransport(httpx.BaseTransport):
    """Counts requests across the JMAP and CardDAV clients; dies after the k-th answer."""

    counter: Counter
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.counter.sent += 1
        if self.counter.sent == self.counter.kill_after:
            response.read()
            response.close()
            raise Killed(
                f"killed after request {self.counter.sent}: {request.method} {request.url}"
            )
        return response

    def close(self) -> None:
        self.inner.close()


HAND = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:hand-1\r\nFN:Carol Known\r\nN:Known;Carol;;;\r\n"
    "EMAIL:carol@known.example\r\nTEL:+1 555 0199\r\nEND:VCARD\r\n"
)


def scenario(account: Account) -> Box:
    """Three senders: new to Feed, re-triaged Person -> Feed, and an adopted contact."""
    box = Box.create(account)
    dave = box.deliver(from_addr="dave@re.example", from_name="Dave Re", subject="dave-1")
    box.label(dave, "@ToPerson")
    box.searchable("dave@re.example")
    assert box.triage().failures == 0
    box.account.put_card(HAND, "hand-1")
    for i in range(3):
        box.deliver(from_addr="news@new.example", from_name="New News", subject=f"new-{i}")
    box.deliver("Archive", from_addr="dave@re.example", subject="dave-2")
    box.deliver("Trash", from_addr="dave@re.example", subject="dave-trash")
    box.deliver(from_addr="carol@known.example", from_name="Carol K", subject="carol-1")
    box.deliver(from_addr="zed@other.example", subject="untouched")
    ids = {e.subject: e.id for e in box.account.emails()}
    box.label(ids["new-0"], "@ToFeed")
    box.label(ids["dave-2"], "@ToFeed")
    box.label(ids["carol-1"], "@ToImbox")
    box.searchable("news@new.example", "dave@re.example", "carol@known.example")
    return box


# The kill points are dealt to this many tests (k = part + 1, part + 1 + PARTS, ...),
# so that parallel test workers share them; together they kill after every request.
KILL_PARTS = 3


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", range(KILL_PARTS))
def test_a_pass_killed_after_any_request_converges_when_run_again(
    cyrus: CyrusServer, part: int
) -> None:
    reference = scenario(new_account(cyrus))
    counter = Counter()
    assert reference.triage(CountingTransport(counter)).failures == 0
    expected = reference.state()
    reference.account.close()
    total = counter.sent
    assert total > 10  # the scenario exercises every phase

    for k in range(part + 1, total + 1, KILL_PARTS):
        box = scenario(new_account(cyrus))
        try:
            with pytest.raises(Killed):
                box.triage(CountingTransport(Counter(kill_after=k)))
            report = box.triage()
            assert report.failures == 0, f"k={k}"
            assert box.state() == expected, f"killed after request {k} of {total}"
        finally:
            box.account.close()


@dataclass
class EditGroupBeforeWrite(httpx.BaseTransport):
    """Before mailroom's first PUT to the group card, the user edits that card."""

    account: Account
    href: str
    foreign_member: str
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    statuses: list[int] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path == self.href and not self.statuses:
            (text,) = [t for h, t in self.account.card_items() if h == self.href]
            edited = text.replace(
                "END:VCARD",
                f"X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:{self.foreign_member}\r\nEND:VCARD",
            )
            uid = self.href.rsplit("/", 1)[1].removesuffix(".vcf")
            self.account.put_card(edited, uid)
        response = self.inner.handle_request(request)
        if request.method == "PUT" and request.url.path == self.href:
            self.statuses.append(response.status_code)
        return response

    def close(self) -> None:
        self.inner.close()


def test_a_group_edited_between_read_and_write_is_retried_and_ends_right(
    account: Account,
) -> None:
    box = Box.create(account)
    (href,) = [h for h, t in account.card_items() if "FN:Feed\r\n" in t]
    mail = box.deliver(from_addr="late@edit.example", subject="a")
    box.label(mail, "@ToFeed")
    box.searchable("late@edit.example")
    transport = EditGroupBeforeWrite(account, href, "someone-else-added-by-hand")

    report = box.triage(transport)

    assert transport.statuses[0] == 412  # the real server refused the stale write
    assert report.failures == 0
    uid = box.contact("late@edit.example")["UID"][0]
    assert account.groups()["Feed"] >= {uid, "someone-else-added-by-hand"}
    assert box.where(mail) == {"Feed"}


@dataclass
class SteppingClock:
    """A fake clock that every request moves on by ``step`` seconds."""

    step: float
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ClockTransport(httpx.BaseTransport):
    clock: SteppingClock
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.clock.now += self.clock.step
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_pass_past_its_deadline_is_abandoned_and_the_next_pass_finishes_it(
    account: Account,
) -> None:
    box = Box.create(account)
    mail = [box.deliver(from_addr="slow@late.example", subject=f"s{i}") for i in range(2)]
    box.label(mail[0], "@ToFeed")
    clock = SteppingClock(step=10.0)
    jmap, carddav = box.clients(ClockTransport(clock))
    try:
        triager = Triager(box.settings, jmap, carddav, clock=clock, deadline_s=35.0)
        with pytest.raises(PassDeadline):
            triager.run_pass("test")  # the 5th request would start 40 s in: refused
        assert jmap.requests_made + carddav.requests_made == 4
        assert box.where(mail[0]) == {"Screener", "@ToFeed"}  # the label stays
        clock.step = 0.0
        report = triager.run_pass("test")  # the next pass, in time, does the rest
    finally:
        jmap.close()
        carddav.close()
    assert (report.senders_triaged, report.failures) == (1, 0)
    assert [box.where(m) for m in mail] == [{"Feed"}, {"Feed"}]


def test_a_sender_the_server_refuses_is_parked_with_the_error_label(account: Account) -> None:
    box = Box.create(account)
    huge = box.deliver(from_addr="huge@name.example", from_name="N" * 100_000, subject="h")
    fine = box.deliver(from_addr="fine@name.example", from_name="Fine", subject="f")
    box.label(huge, "@ToFeed")
    box.label(fine, "@ToFeed")
    jmap, carddav = box.clients()
    try:
        triager = Triager(box.settings, jmap, carddav)
        reports = [triager.run_pass("test") for _ in range(PARK_AFTER)]
        after = triager.run_pass("test")
    finally:
        jmap.close()
        carddav.close()
    assert [r.failures for r in reports] == [1] * PARK_AFTER  # the contact write: HTTP 500
    assert reports[0].senders_triaged == 1  # the other sender went on
    assert box.where(fine) == {"Feed"}
    assert [r.parked for r in reports[:-1]] == [(), ()]
    ((line),) = reports[-1].parked
    assert line.startswith("huge@name.example: ServerError: the CardDAV server answered HTTP 500")
    assert box.where(huge) == {"Screener", "@ToFeed", box.settings.error_label}
    assert box.account.contacts_with_email("huge@name.example") == []
    assert (after.failures, after.senders_triaged) == (0, 0)  # parked: no longer retried
    # what the worker writes to worker.json from the report, and /healthz shows
    _, body = evaluate({"parked": parked_entries([], reports[-1].parked, 0.0)}, None, 0.0)
    ((entry),) = body["parked"]
    assert entry["sender"] == "huge@name.example"
    assert entry["reason"].startswith("ServerError: the CardDAV server answered HTTP 500")


@dataclass
class UserActsBeforeFirstSet(httpx.BaseTransport):
    """Runs ``act`` (the user changing mail) just before mailroom's first Email/set."""

    act: Callable[[], None]
    done: bool = False
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.done and b'"Email/set"' in request.content:
            self.done = True
            self.act()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_mail_changed_by_the_user_during_the_pass_keeps_the_change(account: Account) -> None:
    box = Box.create(account)
    mail = [box.deliver(from_addr="busy@user.example", subject=f"b{i}") for i in range(3)]
    box.label(mail[0], "@ToFeed")
    keep = box.account.ensure_mailbox("Keep")

    def user_files_one_by_hand() -> None:
        box.account.call("Email/set", {"update": {mail[2]: {f"mailboxIds/{keep}": True}}})

    report = box.triage(UserActsBeforeFirstSet(user_files_one_by_hand))

    assert (report.senders_triaged, report.failures) == (1, 0)
    assert [box.where(m) for m in mail] == [{"Feed"}, {"Feed"}, {"Feed", "Keep"}]
