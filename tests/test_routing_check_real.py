"""`mailroom check` judges the routing by where new mail landed, on the real Cyrus with
mail delivered over LMTP: without rules (Fastmail where the user made none: no Sieve
script active, the session showing no Sieve) each missing rule is one problem naming it;
with the rules `setup --apply` installs, no routing problem."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailroom.carddav.client import CardDavClient
from mailroom.jmap.client import JmapClient
from mailroom.ops import check, routing_check
from mailroom.routing.arrivals import ArrivalRouter
from mailroom.triage.engine import Triager
from mailroom_dev.realserver import Account, delivered, lmtp_deliver
from mailroom_dev.triagebox import Box, NoSieve, without_rules

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parent.parent
STRANGER = "stranger@nowhere.example"


@pytest.fixture
def box(account: Account) -> Box:
    return Box.create(account)


@pytest.fixture
def bare(box: Box) -> Box:
    """The account after setup, with no rule: as Fastmail before the user makes them."""
    without_rules(box)
    return box


@pytest.fixture
def fastmail(bare: Box) -> Iterator[tuple[JmapClient, CardDavClient]]:
    """mailroom's clients seeing a server without Sieve."""
    jmap, carddav = bare.clients(NoSieve())
    try:
        yield jmap, carddav
    finally:
        jmap.close()
        carddav.close()


def arrive(box: Box, from_addr: str, subject: str) -> str:
    """Deliver over LMTP (the rules, if any, run); the new email's id."""
    lmtp_deliver(box.account, from_addr=from_addr, subject=subject)
    return delivered(box.account, subject).id


def triage(box: Box, address: str, label: str) -> None:
    """The sender's first email in the Screener, labelled, triaged."""
    first = box.deliver(from_addr=address, subject=f"first from {address}")
    box.label(first, label)
    box.searchable(address)
    assert box.triage().failures == 0


def findings(box: Box, clients: tuple[JmapClient, CardDavClient]) -> list[check.Finding]:
    return check.run_checks(box.settings, *clients)


def routing_lines(found: list[check.Finding]) -> list[tuple[str, str]]:
    return [(f.level, f.text) for f in found if f.text.startswith("routing: ")]


def test_without_rules_a_strangers_mail_in_the_inbox_is_the_missing_catch_all(
    bare: Box, fastmail: tuple[JmapClient, CardDavClient]
) -> None:
    email = arrive(bare, STRANGER, "who is this")
    assert bare.where(email) == {"Inbox"}
    found = findings(bare, fastmail)
    ((_, text),) = [line for line in routing_lines(found) if line[0] == "problem"]
    assert text.startswith(f"routing: the newest email from a stranger ({STRANGER}, ")
    assert "is in Inbox, not Screener: the Screener catch-all seems missing;" in text
    assert [f.level for f in found].count("problem") == 1  # the rules themselves: a note
    assert check.report(found) == 1
    assert bare.where(email) == {"Inbox"}  # check moves nothing


def test_without_rules_a_triaged_feed_senders_next_mail_names_the_rule_for_feed(
    bare: Box, fastmail: tuple[JmapClient, CardDavClient]
) -> None:
    triage(bare, "news@paper.example", "@ToFeed")  # its first email, in Feed, is routed
    email = arrive(bare, "news@paper.example", "the next issue")
    assert bare.where(email) == {"Inbox"}
    problems = [t for level, t in routing_lines(findings(bare, fastmail)) if level == "problem"]
    assert len(problems) == 1
    assert "the newest email from contact group Feed (news@paper.example, " in problems[0]
    assert "is in Inbox, not Feed: the rule for contact group Feed seems missing;" in problems[0]


def test_a_misroute_since_moved_where_the_model_puts_it_is_no_problem(
    bare: Box, fastmail: tuple[JmapClient, CardDavClient]
) -> None:
    """What `routing: enforce` does: judged as it stands now, the moved email is routed."""
    email = arrive(bare, STRANGER, "moved later")
    ids = bare.account.mailbox_ids()
    patch = {f"mailboxIds/{ids['Inbox']}": None, f"mailboxIds/{ids['Screener']}": True}
    bare.account.call("Email/set", {"update": {email: patch}})
    found = findings(bare, fastmail)
    assert routing_lines(found) == [
        (
            "ok",
            "routing: the newest email from strangers is where the rules put it "
            "(1 of 1 emails of the last 7 days screened)",
        )
    ]
    assert check.report(found) == 0


def test_under_enforce_the_mail_mailroom_moved_is_routed_and_no_problem(
    bare: Box, fastmail: tuple[JmapClient, CardDavClient]
) -> None:
    settings = bare.settings.model_copy(update={"routing": "enforce"})
    jmap, carddav = fastmail
    router = ArrivalRouter(settings, jmap, carddav, Triager(settings, jmap, carddav))
    router.run_pass("startup")
    email = arrive(bare, STRANGER, "moved by mailroom")
    router.run_pass("push")
    assert bare.where(email) == {"Screener"}
    later = datetime.now(UTC) + timedelta(minutes=2)  # past the minute check leaves enforce
    found = check.run_checks(settings, jmap, carddav, now=later)
    assert routing_lines(found) == [
        (
            "ok",
            "routing: the newest email from strangers is where the rules put it "
            "(1 of 1 emails of the last 7 days screened); routing: enforce moves what they miss",
        )
    ]
    assert check.report(found) == 0


def test_under_off_the_routing_is_not_judged(
    bare: Box, fastmail: tuple[JmapClient, CardDavClient]
) -> None:
    assert bare.where(arrive(bare, STRANGER, "who is this")) == {"Inbox"}
    settings = bare.settings.model_copy(update={"routing": "off"})
    found = check.run_checks(settings, *fastmail)
    assert routing_lines(found) == [("note", "routing: not judged (routing: off)")]
    assert check.report(found) == 0


def test_mail_filed_elsewhere_in_junk_or_from_a_contact_outside_the_groups_is_no_problem(
    bare: Box, fastmail: tuple[JmapClient, CardDavClient]
) -> None:
    bare.deliver("Receipts", from_addr=STRANGER, subject="filed by a rule of mine")
    junk = next(m.name for m in bare.account.mailboxes() if m.role == "junk")
    bare.deliver(junk, from_addr="spam@nowhere.example", subject="spam")
    uid = "c0ffee00-0000-4000-8000-000000000002"
    bare.account.put_card(
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:Old Friend\r\nN:Friend;Old;;;\r\nEMAIL:friend@old.example\r\n"
        "END:VCARD\r\n",
        uid,
    )
    assert bare.where(arrive(bare, "friend@old.example", "hello again")) == {"Inbox"}
    found = findings(bare, fastmail)
    assert routing_lines(found) == [
        (
            "note",
            "routing: no screened mail arrived in the last 7 days (3 emails read), "
            "so the rules are not judged yet",
        )
    ]
    assert check.report(found) == 0


def test_with_the_rules_installed_the_observed_routing_agrees(box: Box) -> None:
    """Sieve Cyrus after `setup --apply`: 0 misroutes, one ok line naming each group."""
    senders = {"news@paper.example": "@ToFeed", "ann@x.example": "@ToPerson"}
    senders |= {"boss@x.example": "@ToImbox", "spam@x.example": "@ToJail"}
    for address, label in senders.items():
        arrive(box, address, f"first from {address}")  # the catch-all: the Screener
        first = [e for e in box.account.emails() if e.subject == f"first from {address}"]
        box.label(first[0].id, label)
        box.searchable(address)
    assert box.triage().failures == 0
    for address in senders:
        arrive(box, address, f"next from {address}")
    arrive(box, STRANGER, "who is this")
    jmap, carddav = box.clients()
    try:
        found = findings(box, (jmap, carddav))
        carddav.addressbook_url()
        asked = (jmap.requests_made, carddav.requests_made)
        routing_check.observe(box.settings, jmap, carddav, now=datetime.now(UTC), mode="audit")
        cost = (jmap.requests_made - asked[0], carddav.requests_made - asked[1])
    finally:
        jmap.close()
        carddav.close()
    assert routing_lines(found) == [
        (
            "ok",
            "routing: the newest email from contact group Person, contact group Imbox, "
            "contact group Feed, contact group Jail and strangers is where the rules put it "
            "(9 of 9 emails of the last 7 days screened)",
        )
    ]
    assert check.report(found) == 0
    assert cost == (2, 1)  # the arrivals and the identities; one CardDAV REPORT


def test_check_exits_1_naming_the_missing_catch_all_from_the_command_line(bare: Box) -> None:
    arrive(bare, STRANGER, "who is this")
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    result = subprocess.run(
        [sys.executable, "-m", "mailroom", "check"],
        env={**base, **bare.account.env()},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    routing = [line for line in result.stdout.splitlines() if line.startswith("problem: routing:")]
    assert len(routing) == 1
    assert "the Screener catch-all seems missing" in routing[0]
