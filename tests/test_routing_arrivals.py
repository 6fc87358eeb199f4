"""What routing keeps of new mail (pure): the counts and the newest misroutes, where judging
resumes, and how worker.json and /healthz carry it; no message content anywhere."""

from __future__ import annotations

from pathlib import Path

from test_routing_judge import MAILBOXES, ids

from mailroom.categories import DEFAULT_CATEGORIES
from mailroom.jmap.models import Address, Email
from mailroom.routing.arrivals import RECENT_KEPT, Tally, arrival_of, iso, resume_point
from mailroom.routing.judge import Judgment, placement
from mailroom.routing.model import routing
from mailroom.run.statefiles import StatusFile, read_status
from mailroom.service.health import evaluate
from mailroom.service.worker import Worker, initial_status
from mailroom.triage.report import PassReport
from mailroom.triage.sender import SenderId

VIEW = placement(routing(DEFAULT_CATEGORIES, screener_mailbox="Screener"), MAILBOXES)
NOW = 1_764_756_000.0


def misroute(n: int, group: str | None = None) -> Judgment:
    want = ids(group) if group else ids("Screener")
    return Judgment(f"e{n}", SenderId(f"s{n}@x.com"), "misrouted", want, ids("Inbox"), group)


def test_the_tally_counts_every_verdict_and_keeps_the_newest_misroutes() -> None:
    routed = Judgment("r", SenderId("r@x.com"), "routed", ids("Feed"), ids("Feed"), "Feed")
    unscreened = Judgment("u", None, "not_screened", frozenset(), ids("Junk"), None, "no_from")
    tally = Tally().after([routed, unscreened, misroute(1, "Feed")], 1, VIEW, NOW)
    assert (tally.routed, tally.misrouted, tally.moved, tally.not_screened) == (1, 1, 1, 1)
    assert tally.recent == (
        {
            "group": "Feed",
            "sender": "s1@x.com",
            "wanted": ["Feed"],
            "landed": ["Inbox"],
            "time": iso(NOW),
        },
    )
    flood = tally.after([misroute(n) for n in range(2, 40)], 0, VIEW, NOW)
    assert len(flood.recent) == RECENT_KEPT
    assert flood.recent[-1]["sender"] == "s39@x.com"
    assert flood.misrouted == 39


def test_the_doc_is_what_worker_json_and_healthz_carry() -> None:
    doc = Tally().after([misroute(1)], 0, VIEW, NOW).doc("audit", "42", NOW)
    assert doc == {
        "mode": "audit",
        "routed": 0,
        "misrouted": 1,
        "moved": 0,
        "not_screened": 0,
        "recent": [
            {
                "group": None,
                "sender": "s1@x.com",
                "wanted": ["Screener"],
                "landed": ["Inbox"],
                "time": iso(NOW),
            }
        ],
        "email_state": "42",
        "judged_at": iso(NOW),
    }


def test_judging_resumes_at_the_saved_state_else_at_the_last_pass_else_now() -> None:
    saved = {"routing": {"email_state": "42", "judged_at": iso(NOW)}}
    assert resume_point(saved) == ("42", NOW)
    last_pass = {"last_successful_poll": iso(NOW - 60), "routing": {"mode": "off"}}
    assert resume_point(last_pass) == (None, NOW - 60)
    assert resume_point(None) == (None, None)
    assert resume_point({"routing": "junk", "last_successful_poll": 7}) == (None, None)


def test_an_arrival_is_the_email_with_its_sender_normalised() -> None:
    email = Email("e1", Address(" Bob@X.com ", None), ids("Inbox"), "2026-12-03T10:00:00Z")
    got = arrival_of(email)
    assert (got.sender, got.mailbox_ids, got.received_at) == (
        SenderId("bob@x.com"),
        ids("Inbox"),
        "2026-12-03T10:00:00Z",
    )
    assert arrival_of(Email("e2", None, ids("Inbox"))).sender is None


class NoWakes:
    def __init__(self, stop: list[Worker]) -> None:
        self.stop = stop

    def wait(self, timeout: float) -> list[object]:
        self.stop[0].stop()
        return []

    def drain(self) -> list[object]:
        return []

    def interrupt(self) -> None:
        pass


def test_worker_json_carries_the_passes_routing_section_and_a_new_worker_keeps_it(
    tmp_path: Path,
) -> None:
    section = Tally().after([misroute(1)], 1, VIEW, NOW).doc("enforce", "42", NOW)
    status = StatusFile(tmp_path / "worker.json", initial_status(None, poll_interval=60, now=0))
    holder: list[Worker] = []
    worker = Worker(
        lambda trigger: PassReport(trigger=trigger, routing=section),
        NoWakes(holder),
        status,
        poll_interval=60,
        debounce_seconds=3,
    )
    holder.append(worker)
    assert worker.run() == 0
    doc = read_status(status.path)
    assert doc is not None
    assert doc["routing"] == section
    assert initial_status(doc, poll_interval=60, now=0)["routing"] == section
    _, body = evaluate(doc, None, NOW)
    assert body["routing"] == section
    assert evaluate({**doc, "routing": "junk"}, None, NOW)[1]["routing"] is None
