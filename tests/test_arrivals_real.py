"""Routing new mail without server rules, on a real Cyrus whose Sieve rules are taken out
(as Fastmail with no rules): mail delivered over LMTP lands in the Inbox, and the worker's
pass (``ArrivalRouter.run_pass``, in process) judges it and, under ``enforce``, moves it
exactly where triage would have filed it. Each test checks the mailboxes afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from structlog.testing import capture_logs

from mailroom.carddav import vcard
from mailroom.jmap.client import MAX_CHANGES
from mailroom.routing.arrivals import ArrivalRouter
from mailroom.triage.engine import Triager
from mailroom_dev.realserver import (
    REALM,
    Account,
    delivered,
    imap_append,
    lmtp_deliver,
    messages,
)
from mailroom_dev.triagebox import Box, without_rules

pytestmark = pytest.mark.real


@pytest.fixture
def box(account: Account) -> Box:
    return without_rules(Box.create(account))


@contextmanager
def worker(
    box: Box, mode: str = "enforce", previous: dict[str, Any] | None = None
) -> Iterator[ArrivalRouter]:
    """The worker's pass function for ``box``, its first pass (startup) already run."""
    settings = box.settings.model_copy(update={"routing": mode})
    jmap, carddav = box.clients()
    try:
        router = ArrivalRouter(
            settings, jmap, carddav, Triager(settings, jmap, carddav), previous=previous
        )
        router.run_pass("startup")
        yield router
    finally:
        jmap.close()
        carddav.close()


def arrive(box: Box, address: str, subject: str) -> str:
    """Deliver over LMTP (no rules: it lands in the Inbox); the new email's id."""
    lmtp_deliver(box.account, from_addr=address, subject=subject)
    email = delivered(box.account, subject)
    assert email.mailboxes == {"Inbox"}
    return email.id


def triage(box: Box, router: ArrivalRouter, address: str, label: str) -> frozenset[str]:
    """A stranger's first email is in the Screener, the user labels it, a pass triages
    it; where triage filed it."""
    first = box.deliver("Screener", from_addr=address, subject=f"first from {address}")
    box.label(first, label)
    box.searchable(address)
    report = router.run_pass("push")
    assert report.failures == 0
    return box.where(first)


def test_a_strangers_new_mail_is_moved_to_the_screener_only(box: Box) -> None:
    with worker(box) as router:
        email = arrive(box, "stranger@nowhere.example", "who is this")
        router.run_pass("push")
        assert box.where(email) == {"Screener"}
        assert router.doc["misrouted"] == 1
        assert router.doc["moved"] == 1
        assert router.doc["recent"][0]["wanted"] == ["Screener"]
        assert router.doc["recent"][0]["landed"] == ["Inbox"]
        assert router.doc["recent"][0]["group"] is None


@pytest.mark.parametrize(
    ("label", "shape"),
    [
        pytest.param("@ToFeed", {"Feed"}, id="root"),
        pytest.param("@ToBillboard", {"Billboard", "Paper Trail"}, id="child"),
        pytest.param("@ToPerson", {"Person", "Imbox"}, id="child-of-add_to_inbox"),
        pytest.param("@ToImbox", {"Imbox", "Inbox"}, id="add_to_inbox"),
        pytest.param("@ToJail", {"Jail"}, id="jail"),
    ],
)
def test_a_triaged_senders_new_mail_ends_where_triage_filed_it(
    box: Box, label: str, shape: set[str]
) -> None:
    address = f"{label[3:].lower()}@sender.example"
    with worker(box) as router:
        assert triage(box, router, address, label) == shape
        email = arrive(box, address, f"next from {address}")
        router.run_pass("push")
        assert box.where(email) == shape
        assert router.doc["moved"] == 1


def test_after_a_retriage_new_mail_goes_to_the_new_place(box: Box) -> None:
    address = "bob@corp.example"
    with worker(box) as router:
        assert triage(box, router, address, "@ToPerson") == {"Person", "Imbox"}
        later = box.deliver("Archive", from_addr=address, subject="later")
        box.label(later, "@ToFeed")
        box.searchable(address)
        assert router.run_pass("push").failures == 0
        email = arrive(box, address, "after the re-triage")
        router.run_pass("push")
        assert box.where(email) == {"Feed"}


def test_audit_moves_nothing_and_counts_the_misroute(box: Box) -> None:
    with worker(box, "audit") as router:
        email = arrive(box, "stranger@nowhere.example", "audited")
        report = router.run_pass("push")
        assert box.where(email) == {"Inbox"}
        assert report.writes == ()
        assert (router.doc["misrouted"], router.doc["moved"]) == (1, 0)
        assert router.doc["recent"][0]["sender"] == "stranger@nowhere.example"


def test_a_contact_outside_mailrooms_groups_and_mail_filed_by_a_user_rule_are_untouched(
    box: Box,
) -> None:
    friend = "friend@pals.example"
    text = vcard.new_contact_card(
        uid="friend-1", email=friend, display_name="Friend", contact_type="person", history_line=""
    )
    box.account.put_card(text, "friend-1")
    with worker(box) as router:
        from_friend = arrive(box, friend, "from a friend")
        filed = box.deliver("Receipts", from_addr="shop@store.example", subject="receipt")
        junk = box.deliver("Junk", from_addr="spam@spam.example", subject="spam")
        router.run_pass("push")
        assert box.where(from_friend) == {"Inbox"}
        assert box.where(filed) == {"Receipts"}
        assert box.where(junk) == {"Junk"}
        assert (router.doc["not_screened"], router.doc["misrouted"]) == (3, 0)


def test_mail_delivered_while_mailroom_was_stopped_is_routed_at_start(box: Box) -> None:
    with worker(box) as first:
        saved = {"routing": first.doc}
    email = arrive(box, "late@nowhere.example", "while stopped")
    with worker(box, previous=saved) as second:
        assert box.where(email) == {"Screener"}
        assert second.doc["moved"] == 1


def test_a_saved_state_the_server_refuses_falls_back_to_the_arrival_time(box: Box) -> None:
    with worker(box) as first:
        saved = {"routing": {**first.doc, "email_state": "not-a-state"}}
    email = arrive(box, "late@nowhere.example", "after a bad state")
    with worker(box, previous=saved) as second:
        assert box.where(email) == {"Screener"}
        assert second.doc["moved"] == 1
        assert second.doc["email_state"] not in (None, "not-a-state")


def test_a_burst_of_thirty_strangers_is_routed_in_one_batch(box: Box) -> None:
    with worker(box) as router:
        for n in range(30):
            lmtp_deliver(box.account, from_addr=f"s{n}@burst.example", subject=f"burst {n}")
        ids = [delivered(box.account, f"burst {n}").id for n in range(30)]
        report = router.run_pass("push")
        assert {box.where(i) for i in ids} == {frozenset({"Screener"})}
        assert router.doc["moved"] == 30
        assert len(report.writes) == 1  # one batched Email/set


def test_the_moves_are_the_passes_own_writes_and_the_next_pass_moves_nothing(box: Box) -> None:
    with worker(box) as router:
        arrive(box, "stranger@nowhere.example", "once")
        report = router.run_pass("push")
        (write,) = report.writes
        assert write.old_state == report.email_state_scanned  # the echo rule's chain
        again = router.run_pass("push")
        assert again.writes == ()
        assert router.doc["moved"] == 1


def test_a_flood_is_judged_in_capped_batches_in_one_pass(box: Box) -> None:
    flood = 2 * MAX_CHANGES + 200
    to = f"{box.account.username}@{REALM}"
    with worker(box) as router:
        imap_append(box.account, "INBOX", messages("flood@bulk.example", flood, to=to))
        with capture_logs() as logs:
            report = router.run_pass("push")
        batches = [e for e in logs if e["event"] == "arrivals_judged"]
        assert [b["arrivals"] for b in batches] == [MAX_CHANGES, MAX_CHANGES, 200]
        assert len(report.writes) == 3  # one Email/set per batch
        assert len(box.account.emails("Screener")) == flood
        assert not box.account.emails("Inbox")
        assert router.doc["moved"] == flood
