"""Routing new mail with the whole service running (`mailroom run`, push), on a real Cyrus
without Sieve rules (as Fastmail with none): audit counts and logs, enforce routes, the
worker's own moves wake no pass, and a kill -9 in the middle of routing a burst loses
nothing. Each test checks the mailboxes afterwards."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from mailroom_dev.realserver import REALM, Account, delivered, imap_append, lmtp_deliver, messages
from mailroom_dev.servicebox import ServiceBox
from mailroom_dev.triagebox import Box, without_rules
from mailroom_dev.wait import wait_until

pytestmark = pytest.mark.real
DEADLINE = 60.0


@pytest.fixture
def box(account: Account) -> Box:
    return without_rules(Box.create(account))


def routing_doc(service: ServiceBox) -> dict[str, Any]:
    status, body = service.healthz()
    return body.get("routing") or {} if status else {}


def count(service: ServiceBox, key: str, at_least: int) -> dict[str, Any]:
    found = wait_until(
        lambda: (doc := routing_doc(service)).get(key, 0) >= at_least and doc,
        f"/healthz routing {key} >= {at_least}",
        DEADLINE,
    )
    return dict(found)


@pytest.mark.timeout(240)
def test_audit_moves_nothing_and_the_misroute_shows_in_healthz_and_the_log(box: Box) -> None:
    with ServiceBox.running(box) as service:  # audit is the default
        assert routing_doc(service)["mode"] == "audit"
        lmtp_deliver(box.account, from_addr="stranger@nowhere.example", subject="audited")
        doc = count(service, "misrouted", 1)
        email = delivered(box.account, "audited")
        assert email.mailboxes == {"Inbox"}
        assert doc["moved"] == 0
        assert doc["recent"][-1]["sender"] == "stranger@nowhere.example"
        assert (doc["recent"][-1]["wanted"], doc["recent"][-1]["landed"]) == (
            ["Screener"],
            ["Inbox"],
        )
        (line,) = service.log_events("arrival_misrouted")
        assert (line["sender"], line["wanted"], line["landed"], line["moved"]) == (
            "stranger@nowhere.example",
            ["Screener"],
            ["Inbox"],
            False,
        )
        assert "audited" not in repr(line)  # no subject in the log
        assert "audited" not in repr(doc)


def skipped(service: ServiceBox) -> int:
    counters = service.worker_status().get("counters") or {}
    return int(counters.get("echoes_skipped", 0))


@pytest.mark.timeout(300)
def test_enforce_routes_each_new_email_and_its_own_moves_wake_no_pass(box: Box) -> None:
    with ServiceBox.running(box, MAILROOM_ROUTING="enforce") as service:
        since = service.mark()
        for n in range(3):
            echoes = skipped(service)
            lmtp_deliver(box.account, from_addr=f"one{n}@nowhere.example", subject=f"one {n}")
            count(service, "moved", n + 1)
            assert delivered(box.account, f"one {n}").mailboxes == {"Screener"}
            # the push event the move caused is heard, and known as the worker's own
            wait_until(lambda e=echoes: skipped(service) > e, "the move's echo", DEADLINE)
        passes = service.passes(since=since)
        judged = service.log_events("arrivals_judged", since)
        # Every pass since had new mail to judge: the moves woke none.
        assert len(passes) == len(judged) == 3
        assert [j["moved"] for j in judged] == [1, 1, 1]


@pytest.mark.timeout(300)
def test_enforce_routes_a_burst_of_thirty_strangers_each_moved_once(box: Box) -> None:
    with ServiceBox.running(box, MAILROOM_ROUTING="enforce") as service:
        for n in range(30):
            lmtp_deliver(box.account, from_addr=f"s{n}@burst.example", subject=f"burst {n}")
        doc = count(service, "moved", 30)
        assert len(box.account.emails("Screener")) == 30
        assert not box.account.emails("Inbox")
        assert doc["moved"] == doc["misrouted"] == 30  # no email moved twice


def in_screener(box: Box) -> int:
    """How many emails the Screener holds (one cheap query)."""
    screener = box.account.mailbox_ids()["Screener"]
    args = {"filter": {"inMailbox": screener}, "calculateTotal": True, "limit": 1}
    return int(box.account.call("Email/query", args)["total"])


@pytest.mark.timeout(420)
def test_kill_9_in_the_middle_of_routing_a_burst_loses_nothing(box: Box) -> None:
    """The burst arrives while the worker is stopped, so its start routes it in three
    batches of 500; it is killed once the first batch has moved."""
    burst = 1500
    to = f"{box.account.username}@{REALM}"
    with ServiceBox.running(box, MAILROOM_ROUTING="enforce") as service:
        service.stop_program("worker")
        imap_append(box.account, "INBOX", messages("flood@burst.example", burst, to=to))
        starting = threading.Thread(target=service.start_program, args=("worker",))
        starting.start()
        wait_until(lambda: in_screener(box) > 0, "the first batch moved", DEADLINE, every=0.01)
        old_pid = service.pid_of("worker")
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        moved_before = in_screener(box)
        starting.join()
        print(f"{moved_before} of {burst} were in the Screener at the kill")
        if moved_before >= burst:
            pytest.fail("the routing of the burst ended before the kill")
        service.wait_restarted("worker", old_pid)
        wait_until(
            lambda: in_screener(box) == burst,
            f"all {burst} in the Screener after the restart",
            DEADLINE * 3,
        )
    everything = box.account.emails()
    flood = [e for e in everything if e.from_email == "flood@burst.example"]
    assert len(flood) == burst  # nothing lost
    assert all(e.mailboxes for e in everything)  # every email has a mailbox
    assert {e.mailboxes for e in flood} == {frozenset({"Screener"})}
