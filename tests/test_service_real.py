"""The whole service end to end: real Cyrus with push, real processes, real supervisord.

Each test runs `mailroom run` on a fresh account (``ServiceBox``), acts as the user
over JMAP, and checks the end state in the mailbox and the address book; the log
lines and status files show which pass did it (trigger=push, fallback, startup).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from mailroom.run.statefiles import stamped
from mailroom_dev.realserver import (
    STOP,
    Account,
    CyrusServer,
    add_sasl_user,
    cyrus_settings,
    new_account,
    start_cyrus,
    stop_cyrus,
    wait_searchable_counts,
)
from mailroom_dev.servicebox import PROGRAMS, ServiceBox, free_port, log_time
from mailroom_dev.triagebox import Box, fill_screener
from mailroom_dev.wait import wait_until

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]

TRIAGE_DEADLINE = 60.0  # push arrives within ~1 s; this only bounds a failure on a busy machine
BACKLOG = 4000  # one sender's emails: a pass over them takes seconds (fits one 4096-email read)


@pytest.fixture
def box(account: Account, cyrus: CyrusServer) -> Box:
    if not cyrus.eventsource:
        pytest.fail("this Cyrus build answers the EventSource with 204; start it with push")
    return Box.create(account)


@pytest.fixture
def service(box: Box) -> Iterator[ServiceBox]:
    with ServiceBox.running(box, poll_interval=600, debounce_seconds=1) as svc:
        yield svc


def assert_filed_to_feed(box: Box, address: str, *email_ids: str) -> None:
    """triage.md's end state for an initial triage to Feed."""
    for email_id in email_ids:
        assert box.where(email_id) == {"Feed"}  # filed, out of the Screener, label gone
    assert box.groups_of(address) == {"Feed", "Mailroom"}


@pytest.mark.timeout(180)
def test_a_label_applied_over_jmap_is_triaged_by_a_push_pass(box: Box, service: ServiceBox) -> None:
    first = box.deliver(from_addr="news@shop.example", from_name="Shop News", subject="a")
    second = box.deliver(from_addr="news@shop.example", subject="b")
    box.searchable("news@shop.example")
    since = service.mark()

    box.label(first, "@ToFeed")

    done = wait_until(
        lambda: [p for p in service.passes("push", since) if p["senders_triaged"] == 1],
        "a push pass that triages the sender",
        TRIAGE_DEADLINE,
    )
    assert done[0]["failures"] == 0
    assert not service.passes("fallback")  # poll_interval 600: the timer never fired
    assert_filed_to_feed(box, "news@shop.example", first, second)
    assert box.contact("news@shop.example")["FN"] == ["Shop News"]


def quiet_since_last_pass(service: ServiceBox, seconds: float) -> bool:
    """The worker's last pass ended more than ``seconds`` ago (its own worker.json)."""
    last = stamped(service.worker_status(), "last_successful_poll")
    return last is not None and time.time() - last > seconds


@pytest.mark.timeout(180)
def test_a_label_after_a_quiet_spell_gets_its_push_pass_without_waiting_the_window(
    box: Box,
) -> None:
    email_id = box.deliver(from_addr="lead@shop.example", subject="a")
    box.searchable("lead@shop.example")
    window = 8.0
    with ServiceBox.running(box, poll_interval=600, debounce_seconds=window) as service:
        wait_until(lambda: quiet_since_last_pass(service, window), "a quiet spell", 60)
        since = service.mark()
        held = service.worker_status()["counters"]["passes_held"]

        box.label(email_id, "@ToFeed")

        done = wait_until(
            lambda: [p for p in service.passes("push", since) if p["senders_triaged"] == 1],
            "the push pass for the label",
            TRIAGE_DEADLINE,
        )
        # it was started by the wake itself, not held for the debounce window
        assert service.worker_status()["counters"]["passes_held"] == held
        assert len(service.passes(since=since)) == 1
        assert done[0]["failures"] == 0
    assert_filed_to_feed(box, "lead@shop.example", email_id)


def labelled_still(box: Box, email_id: str, label: str) -> bool:
    """One Email/get of one email (box.where reads every email: too slow to race a pass)."""
    label_id = box.account.mailbox_ids()[label]
    got = box.account.call("Email/get", {"ids": [email_id], "properties": ["mailboxIds"]})
    return label_id in got["list"][0]["mailboxIds"]


def in_flight(box: Box, address: str, trigger: str) -> bool:
    """A pass is part-way through ``address``: its contact exists (CardDAV only: while
    the pass's big Email/set runs beside its contact writes, a JMAP read waits for it).
    Whether the label was still on is checked afterwards, from the pass's end."""
    return bool(box.account.contacts_with_email(address))


def label_one_by_one(box: Box, email_ids: list[str], label: str) -> None:
    """One Email/set per email, as fast as the server answers (ids looked up once)."""
    label_id = box.account.mailbox_ids()[label]
    for email_id in email_ids:
        result = box.account.call(
            "Email/set", {"update": {email_id: {f"mailboxIds/{label_id}": True}}}
        )
        assert email_id in (result.get("updated") or {}), result


@pytest.mark.timeout(240)
def test_a_burst_of_labels_gives_at_most_two_push_passes_and_its_own_writes_none(
    box: Box,
) -> None:
    senders = [f"burst{i}@shop{i}.example" for i in range(10)]
    emails = [box.deliver(from_addr=s, subject=f"from {s}") for s in senders]
    box.searchable(*senders)
    with ServiceBox.running(box, poll_interval=600, debounce_seconds=2) as service:
        wait_until(lambda: quiet_since_last_pass(service, 2), "a quiet spell", 60)
        since = service.mark()
        started = time.monotonic()
        label_one_by_one(box, emails, "@ToFeed")  # ten Email/set calls, well inside 2 s
        print(f"ten labels applied in {time.monotonic() - started:.2f} s")

        wait_until(
            lambda: sum(p["senders_triaged"] for p in service.passes("push", since)) == 10,
            "push passes triaging all ten senders",
            TRIAGE_DEADLINE,
        )
        # The passes' own Email/set calls make Cyrus emit state events: echoes.
        wait_until(
            lambda: service.worker_status()["counters"]["echoes_skipped"] >= 1,
            "the worker to receive and skip the echo of its own writes",
            TRIAGE_DEADLINE,
        )
        quiet_until = time.monotonic() + 2 + 4  # the window + margin: a third pass would show
        wait_until(lambda: time.monotonic() > quiet_until, "the quiet period", 30)

        pushes = service.passes("push", since)
        print(f"passes for the burst: {[(p['senders_triaged'], p['failures']) for p in pushes]}")
        assert 1 <= len(pushes) <= 2, pushes
        assert sum(p["senders_triaged"] for p in pushes) == 10
        assert all(p["failures"] == 0 for p in pushes)
        counters = service.worker_status()["counters"]
        print(f"worker counters after the burst: {counters}")
        assert counters["passes"] == len(service.passes())
    for address, email_id in zip(senders, emails, strict=True):
        assert_filed_to_feed(box, address, email_id)


@pytest.mark.timeout(240)
def test_a_person_labelling_sender_after_sender_gets_each_triaged_in_its_own_push_pass(
    box: Box,
) -> None:
    """The default spacing (0.5 s), a label a second: every label is triaged, each push
    pass triages what came since the last, and the worker's own writes add none."""
    senders = [f"row{i}@shop{i}.example" for i in range(6)]
    emails = [box.deliver(from_addr=s, subject=f"from {s}") for s in senders]
    box.searchable(*senders)
    with ServiceBox.running(box, poll_interval=600, debounce_seconds=0.5) as service:
        wait_until(lambda: quiet_since_last_pass(service, 1), "a quiet spell", 60)
        since = service.mark()
        for k, email_id in enumerate(emails):
            box.label(email_id, "@ToFeed")
            if k < len(emails) - 1:
                time.sleep(1.0)  # a person's pace (an action, not a measurement)
        wait_until(
            lambda: sum(p["senders_triaged"] for p in service.passes("push", since)) == 6,
            "push passes triaging all six senders",
            TRIAGE_DEADLINE,
        )
        quiet_until = time.monotonic() + 4  # four push ticks: a stray pass would show
        wait_until(lambda: time.monotonic() > quiet_until, "the quiet period", 30)
        pushes = service.passes("push", since)
        print(f"passes: {[(p['senders_triaged'], p['failures']) for p in pushes]}")
        assert all(p["failures"] == 0 for p in pushes)
        assert sum(p["senders_triaged"] for p in pushes) == 6  # each sender once
        assert len(pushes) >= 3  # passes as the labels come, not one at the end
        assert len(pushes) <= len(senders) + 1  # at most one a label (+1: a label mid-pass)
        assert service.worker_status()["counters"]["echoes_skipped"] >= 1
    for address, email_id in zip(senders, emails, strict=True):
        assert_filed_to_feed(box, address, email_id)


@pytest.mark.timeout(300)
def test_a_4000_email_write_gives_no_extra_pass(box: Box) -> None:
    big = "bulk@big.example"
    first = fill_screener(box, big, BACKLOG)
    wait_searchable_counts(box.account, {big: BACKLOG})
    with ServiceBox.running(box, poll_interval=600, debounce_seconds=1) as service:
        wait_until(lambda: quiet_since_last_pass(service, 1), "a quiet spell", 60)
        since = service.mark()
        box.label(first, "@ToFeed")
        wait_until(
            lambda: [p for p in service.passes("push", since) if p["senders_triaged"] == 1],
            "the pass over the backlog",
            TRIAGE_DEADLINE * 2,
        )
        # Cyrus reports states inside the long Email/set and the last write's state after
        # it: all echoes. Wait for the last one, then a window and more for any other pass.
        wait_until(
            lambda: service.worker_status()["counters"]["echoes_skipped"] >= 1,
            "the echo of the pass's writes",
            TRIAGE_DEADLINE,
        )
        quiet_until = time.monotonic() + 1 + 5
        wait_until(lambda: time.monotonic() > quiet_until, "the quiet period", 30)
        passes = service.passes(since=since)
        counters = service.worker_status()["counters"]
        print(f"passes: {[(p['trigger'], p['emails_moved']) for p in passes]}; {counters}")
        assert [(p["trigger"], p["emails_moved"]) for p in passes] == [("push", BACKLOG)]
    assert len(box.account.emails("Feed")) == BACKLOG
    assert not box.account.emails("Screener")


@pytest.mark.timeout(420)
def test_a_label_applied_while_a_pass_runs_is_triaged_by_the_next_push_pass(box: Box) -> None:
    for attempt in range(3):  # new senders each time the pass ended before the label
        big, small = f"bulk{attempt}@big.example", f"late{attempt}@small.example"
        big_first = fill_screener(box, big, BACKLOG)
        small_first = box.deliver(from_addr=small, subject="late")
        wait_searchable_counts(box.account, {big: BACKLOG})
        box.searchable(small)
        with ServiceBox.running(box, poll_interval=600, debounce_seconds=1) as service:
            worker = service.pid_of("worker")
            assert worker is not None
            since = service.mark()
            box.label(big_first, "@ToFeed")
            started = partial(in_flight, box, big, big_first)
            wait_until(started, "the pass for the backlog to start", 60)
            os.kill(worker, signal.SIGSTOP)  # the pass cannot end while the label goes on
            try:
                box.label(small_first, "@ToFeed")
                applied = time.time()
            finally:
                os.kill(worker, signal.SIGCONT)
            pushed = partial(service.passes, "push", since)
            wait_until(
                lambda: len(pushed()) >= 2,  # noqa: B023 (called within this iteration)
                "a push pass after the one over the backlog",
                TRIAGE_DEADLINE,
            )
            pushes = pushed()
        ended = log_time(pushes[0])
        if ended is not None and applied < ended:
            break
    else:
        pytest.fail(f"three passes over {BACKLOG} emails each ended before the second label")
    print(f"the pass over the backlog took {pushes[0]['duration_s']} s")
    assert [(p["senders_triaged"], p["emails_moved"]) for p in pushes[:2]] == [
        (1, BACKLOG),
        (1, 1),
    ], pushes
    assert_filed_to_feed(box, small, small_first)
    assert box.where(big_first) == {"Feed"}
    in_feed = {"inMailbox": box.account.mailbox_ids()["Feed"], "from": big}
    got = box.account.call("Email/query", {"filter": in_feed, "calculateTotal": True, "limit": 1})
    assert got["total"] == BACKLOG
    assert not box.account.emails("Screener")


@pytest.mark.timeout(240)
def test_a_listener_killed_with_sigkill_is_restarted_reconnects_and_push_goes_on(
    box: Box, service: ServiceBox
) -> None:
    email_id = box.deliver(from_addr="news@shop.example", subject="a")
    box.searchable("news@shop.example")
    before = service.listener_status()
    old_pid = service.pid_of("listener")
    assert old_pid is not None
    assert before["pid"] == old_pid
    since = service.mark()

    os.kill(old_pid, signal.SIGKILL)
    box.label(email_id, "@ToFeed")  # while no listener is there to hear it
    new_pid = service.wait_restarted("listener", old_pid)

    def connected_anew() -> dict[str, Any] | None:
        doc = service.listener_status()
        return doc if doc.get("pid") == new_pid and doc.get("status") == "connected" else None

    after = wait_until(connected_anew, "the new listener to connect", TRIAGE_DEADLINE)
    assert after is not None
    assert after["connected_since"] != before["connected_since"]
    # The new process carries the count over from listener.json: the crash shows.
    assert after["reconnect_count"] == before["reconnect_count"] + 1
    reconnected = wait_until(  # supervisord forwards the programs' output a moment later
        lambda: service.log_events("eventsource_reconnected", since),
        "the new listener's eventsource_reconnected line",
        TRIAGE_DEADLINE,
    )
    assert reconnected[0]["reconnect_count"] == after["reconnect_count"]
    assert len(service.log_events("eventsource_listener_started")) == 2
    wait_until(
        lambda: [p for p in service.passes("push", since) if p["senders_triaged"] == 1],
        "the connect wake's push pass to triage the label applied meanwhile",
        TRIAGE_DEADLINE,
    )
    assert_filed_to_feed(box, "news@shop.example", email_id)


def caught_mid_pass(box: Box, pid: int, trigger: str) -> bool:
    """Freeze the worker (SIGSTOP: it sends nothing more), let the server finish what it
    was sent, and say whether the label is still on: the pass was caught before its end.

    While the pass's big Email/set runs beside its contact writes, the contact shows
    before the write ends; but on a loaded machine the pass may reach its label write
    before the freeze, and then there is nothing left for the next worker to finish.
    """
    os.kill(pid, signal.SIGSTOP)
    time.sleep(1.0)  # a request already sent is carried out by the server regardless
    return labelled_still(box, trigger, "@ToFeed")


@pytest.mark.timeout(420)
def test_a_worker_killed_with_sigkill_mid_pass_is_restarted_and_its_startup_pass_finishes(
    box: Box,
) -> None:
    for attempt in range(3):  # a new sender each time the pass ended before the freeze
        big = f"bulk{attempt}@big.example"
        first = fill_screener(box, big, BACKLOG)
        wait_searchable_counts(box.account, {big: BACKLOG})
        with ServiceBox.running(box, poll_interval=600, debounce_seconds=1) as service:
            old_pid = service.pid_of("worker")
            assert old_pid is not None
            since = service.mark()
            box.label(first, "@ToFeed")
            started = partial(in_flight, box, big, first)
            wait_until(started, "the pass over the backlog to start", 60)
            caught = caught_mid_pass(box, old_pid, first)
            os.kill(old_pid, signal.SIGKILL)
            service.wait_restarted("worker", old_pid)
            done = wait_until(
                partial(service.passes, "startup", since),
                "the restarted worker's startup pass",
                TRIAGE_DEADLINE,
            )
            first_pass = service.passes(since=since)[0]
        if caught:
            break
    else:
        pytest.fail(f"three passes over {BACKLOG} emails each ended before the kill")
    assert first_pass["trigger"] == "startup"  # the killed pass never completed
    assert (done[0]["senders_triaged"], done[0]["failures"]) == (1, 0), done
    print(f"the startup pass moved {done[0]['emails_moved']} of {BACKLOG} emails")
    assert len(box.account.contacts_with_email(big)) == 1
    assert box.groups_of(big) == {"Feed", "Mailroom"}
    in_feed = {"inMailbox": box.account.mailbox_ids()["Feed"], "from": big}
    got = box.account.call("Email/query", {"filter": in_feed, "calculateTotal": True, "limit": 1})
    assert got["total"] == BACKLOG
    assert not box.account.emails("Screener")
    assert not box.account.emails("@ToFeed")


@pytest.mark.timeout(180)
def test_healthz_is_200_and_ok_with_push_connected_and_the_worker_up(service: ServiceBox) -> None:
    status, body = service.healthz()
    assert status == 200
    assert body["status"] == "ok"
    assert body["eventsource"]["status"] == "connected"
    assert body["eventsource"]["last_error"] is None
    assert body["worker"]["status"] == "up"
    assert body["worker"]["consecutive_failures"] == 0
    assert body["last_poll_trigger"] in ("startup", "push")
    assert body["last_poll_age_seconds"] < 2 * 600


@pytest.mark.timeout(180)
def test_healthz_stays_200_and_shows_push_not_connected_when_the_listener_is_stopped(
    service: ServiceBox,
) -> None:
    service.stop_program("listener")
    assert service.states()["listener"] == ("STOPPED", None)

    def push_down() -> tuple[int, dict[str, Any]] | None:
        found = service.healthz()
        return found if found[1].get("eventsource", {}).get("status") != "connected" else None

    # well under the 60 s after which a silent listener's heartbeat counts as stale
    down = wait_until(push_down, "healthz to show the EventSource not connected", 20)
    assert down is not None
    status, body = down
    print(f"healthz with the listener stopped: {status} {body['status']} {body['eventsource']}")
    assert status == 200  # the fallback timer still triages
    assert body["status"] == "degraded"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(180)
def test_supervisorctl_stop_all_stops_the_three_programs(service: ServiceBox) -> None:
    pids = {p: service.pid_of(p) for p in PROGRAMS}
    assert all(pids.values()), pids

    started = time.monotonic()
    service.supervisorctl("stop", "all")
    print(f"supervisorctl stop all took {time.monotonic() - started:.2f} s")

    assert service.states() == dict.fromkeys(PROGRAMS, ("STOPPED", None))
    assert [p for p, pid in pids.items() if pid is not None and alive(pid)] == []
    assert service.worker_status()["status"] == "stopped"


# -- a private server, stopped and started again --------------------------------------


@dataclass(frozen=True, slots=True)
class PrivateCyrus:
    server: CyrusServer
    settings: dict[str, str]

    def stop(self) -> None:
        """dev/cyrus/stop.sh without --purge: the data stays for the next start."""
        subprocess.run([str(STOP), str(self.server.dir)], check=True, capture_output=True)

    def start_again(self, account: Account) -> None:
        """start.sh on the same DIR; it rebuilds the sasldb, so the user is added again."""
        start_cyrus(self.settings, timeout=120)
        add_sasl_user(self.server, account.username, account.password)


@pytest.fixture
def private_cyrus(cyrus: CyrusServer) -> Iterator[PrivateCyrus]:
    """A Cyrus of our own (the shared one must never be stopped), on free ports, with
    the push build the shared server's start has already made; purged afterwards."""
    directory = tempfile.mkdtemp(prefix="mrcy", dir="/tmp")
    settings = {
        **cyrus_settings({}),
        "CYRUS_PEER_DIR": directory,
        "CYRUS_PEER_HTTP_PORT": str(free_port()),
        "CYRUS_PEER_IMAP_PORT": str(free_port()),
        "CYRUS_PEER_LMTP_PORT": str(free_port()),
    }
    server = start_cyrus(settings, timeout=300)
    try:
        assert server.eventsource, "the private Cyrus answers the EventSource with 204"
        yield PrivateCyrus(server, settings)
    finally:
        stop_cyrus(server)  # --purge


@pytest.mark.timeout(300)
def test_push_backs_off_while_the_server_is_down_and_triage_resumes_after(
    private_cyrus: PrivateCyrus,
) -> None:
    account = new_account(private_cyrus.server)
    try:
        box = Box.create(account)
        email_id = box.deliver(from_addr="news@shop.example", subject="a")
        box.searchable("news@shop.example")
        with ServiceBox.running(box, poll_interval=3, debounce_seconds=1) as service:
            since = service.mark()
            private_cyrus.stop()
            wait_until(
                lambda: service.log_events("eventsource_disconnected", since),
                "the listener to see the server go",
                TRIAGE_DEADLINE,
            )
            failed = wait_until(
                lambda: [
                    e
                    for e in service.log_events("pass_failed", since)
                    if e.get("trigger") == "fallback"
                ],
                "a fallback pass to run (and fail) while the server is down",
                TRIAGE_DEADLINE,
            )
            print(f"while down: {failed[0]['error']}")
            assert service.listener_status()["status"] in ("disconnected", "connecting")

            private_cyrus.start_again(account)
            back = service.mark()
            wait_until(
                lambda: service.listener_status().get("status") == "connected",
                "the listener to reconnect",
                TRIAGE_DEADLINE,
            )
            assert service.listener_status()["reconnect_count"] >= 1
            wait_until(
                lambda: service.log_events("eventsource_reconnected", since),
                "the eventsource_reconnected line",
                TRIAGE_DEADLINE,
            )
            delays = [
                e["next_delay"] for e in service.log_events("eventsource_disconnected", since)
            ]
            print(f"listener back-off delays while down: {delays}")
            # 1 s, then doubling while the server stays away (reset by the reconnect)
            assert delays, "no eventsource_disconnected line while the server was down"
            assert delays == [min(2.0**i, 60.0) for i in range(len(delays))], delays

            box.label(email_id, "@ToFeed")
            done = wait_until(
                lambda: [p for p in service.passes(since=back) if p["senders_triaged"] == 1],
                "a pass to triage the label after the restart",
                TRIAGE_DEADLINE,
            )
            print(f"triaged after the restart by a {done[0]['trigger']} pass")
            wait_until(
                lambda: service.passes("fallback", back),
                "a successful fallback pass after the restart",
                TRIAGE_DEADLINE,
            )
            assert service.worker_status()["consecutive_failures"] == 0
        assert_filed_to_feed(box, "news@shop.example", email_id)
    finally:
        account.close()
