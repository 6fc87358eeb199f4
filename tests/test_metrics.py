"""GET /metrics: health's exposition, read back with prometheus-client's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mailroom.run.statefiles import iso, stamp, write_status
from mailroom.service.health import evaluate, respond
from mailroom.service.metrics import CONTENT_TYPE, render

NOW = 1_700_000_000.0


def worker_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": "running",
        "pid": 101,
        "version": "1.2.3",
        **stamp("started_at", NOW - 3600),
        "heartbeat": NOW - 5,
        "poll_interval": 60.0,
        **stamp("last_successful_poll", NOW - 30),
        "last_poll_trigger": "push",
        "consecutive_failures": 0,
        "last_error": None,
        "counters": {
            "passes": 7,
            "failures": 2,
            "wakes": 40,
            "echoes_skipped": 9,
            "seen_skipped": 3,
            "passes_held": 1,
            "emails_moved": 25,
            "senders_failed": 4,
            "senders_parked": 1,
        },
        "passes_by_trigger": {"startup": 1, "push": 5, "fallback": 1},
        "triaged": {"Feed": 3, "Paper Trail": 2},
        "parked": [{"sender": "a@x.test", "reason": "r", "parked_at": iso(NOW - 60)}],
    }
    doc.update(overrides)
    return doc


def listener_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": "connected",
        "pid": 102,
        "heartbeat": NOW - 5,
        "connected_since": iso(NOW - 3000),
        "last_event_at": iso(NOW - 31),
        "reconnect_count": 2,
        "last_error": None,
        "wakes_dropped": 0,
    }
    doc.update(overrides)
    return doc


def scrape(worker: dict[str, Any] | None, listener: dict[str, Any] | None) -> dict[str, Any]:
    """{family name: {(labels as sorted pairs): value}}, as Prometheus's parser reads it,
    with each family's type under "type"."""
    text = render(worker, listener, evaluate(worker, listener, NOW))
    found: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        samples: list[Sample] = family.samples
        found[family.name] = {tuple(sorted(s.labels.items())): s.value for s in samples}
        found[family.name]["type"] = family.type
    return found


def test_the_counters_of_a_running_service_parse_back() -> None:
    m = scrape(worker_doc(), listener_doc())
    assert m["mailroom_build_info"] == {(("version", "1.2.3"),): 1.0, "type": "gauge"}
    assert m["mailroom_ready"] == {(): 1.0, "type": "gauge"}
    assert m["mailroom_passes"] == {
        (("trigger", "fallback"),): 1.0,
        (("trigger", "push"),): 5.0,
        (("trigger", "startup"),): 1.0,
        "type": "counter",
    }
    assert m["mailroom_senders_triaged"] == {
        (("category", "Feed"),): 3.0,
        (("category", "Paper Trail"),): 2.0,
        "type": "counter",
    }
    assert m["mailroom_emails_moved"] == {(): 25.0, "type": "counter"}
    assert m["mailroom_pass_failures"] == {(): 2.0, "type": "counter"}
    assert m["mailroom_sender_failures"] == {(): 4.0, "type": "counter"}
    assert m["mailroom_senders_parked"] == {(): 1.0, "type": "counter"}
    assert m["mailroom_parked_senders"] == {(): 1.0, "type": "gauge"}
    assert m["mailroom_wakes_skipped"] == {
        (("reason", "echo"),): 9.0,
        (("reason", "seen"),): 3.0,
        "type": "counter",
    }
    assert m["mailroom_last_pass_age_seconds"] == {(): 30.0, "type": "gauge"}
    assert m["mailroom_eventsource_reconnects"] == {(): 2.0, "type": "counter"}
    states = m["mailroom_eventsource_state"]
    assert {labels[0][1] for labels, v in states.items() if labels != "type" and v == 1} == {
        "connected"
    }
    assert m["mailroom_health_status"][(("status", "ok"),)] == 1.0
    assert "mailroom_routing_verdicts" not in m  # no routing object in worker.json yet


def test_metrics_follow_the_health_verdict() -> None:
    refused = "AuthError: the JMAP server rejected the credentials (HTTP 401); check it"
    m = scrape(worker_doc(consecutive_failures=1, last_error=refused), listener_doc())
    assert m["mailroom_ready"][()] == 0.0
    assert m["mailroom_health_status"][(("status", "failing"),)] == 1.0
    assert m["mailroom_consecutive_pass_failures"][()] == 1.0
    m = scrape(worker_doc(), listener_doc(status="disconnected"))
    assert m["mailroom_ready"][()] == 1.0
    assert m["mailroom_health_status"][(("status", "degraded"),)] == 1.0
    assert m["mailroom_eventsource_state"][(("state", "disconnected"),)] == 1.0
    assert m["mailroom_eventsource_state"][(("state", "connected"),)] == 0.0


def test_routing_verdicts_appear_when_worker_json_has_them() -> None:
    routing = {
        "mode": "sieve",
        "routed": 12,
        "misrouted": 1,
        "moved": 1,
        "not_screened": 4,
        "recent": [{"email": "x"}],
    }
    m = scrape(worker_doc(routing=routing), listener_doc())
    assert m["mailroom_routing_verdicts"] == {
        (("verdict", "misrouted"),): 1.0,
        (("verdict", "not_screened"),): 4.0,
        (("verdict", "routed"),): 12.0,
        "type": "counter",
    }
    assert m["mailroom_routing_moved"] == {(): 1.0, "type": "counter"}
    assert m["mailroom_routing_mode_info"] == {(("mode", "sieve"),): 1.0, "type": "gauge"}


def test_nothing_written_yet_still_parses_and_says_not_ready() -> None:
    m = scrape(None, None)
    assert m["mailroom_ready"][()] == 0.0
    assert m["mailroom_build_info"] == {(("version", "unknown"),): 1.0, "type": "gauge"}
    assert m["mailroom_eventsource_state"][(("state", "down"),)] == 1.0
    assert "mailroom_passes" not in m
    assert "mailroom_last_pass_age_seconds" not in m


@pytest.mark.parametrize(
    "broken",
    [
        {"counters": [], "passes_by_trigger": "x", "triaged": {"Feed": -1, "": 2, "B": True}},
        {"counters": {"failures": "7", "emails_moved": float("nan")}, "routing": {"routed": "x"}},
        {"version": "1\n2", "poll_interval": float("inf"), "triaged": {"a\nb": 1}},
    ],
)
def test_nonsense_in_the_status_files_is_left_out_and_the_rest_parses(
    broken: dict[str, Any],
) -> None:
    m = scrape(worker_doc(**broken), listener_doc(reconnect_count=-3))
    assert m["mailroom_ready"][()] in (0.0, 1.0)
    assert "mailroom_eventsource_reconnects" not in m
    for name in ("mailroom_pass_failures", "mailroom_emails_moved"):
        assert m.get(name, {}).get(()) in (None, 2.0, 25.0)  # the good value or nothing
    assert all(v >= 0 for family in m.values() for k, v in family.items() if k != "type")


def test_label_values_with_quotes_and_backslashes_round_trip() -> None:
    name = 'Paper "Trail" \\ receipts'
    m = scrape(worker_doc(triaged={name: 2}), listener_doc())
    assert m["mailroom_senders_triaged"] == {(("category", name),): 2.0, "type": "counter"}


def test_the_health_server_answers_metrics_as_text(tmp_path: Any) -> None:
    write_status(tmp_path / "worker.json", worker_doc())
    code, content_type, body = respond(tmp_path, "/metrics?x=1", NOW)
    assert (code, content_type) == (200, CONTENT_TYPE)
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"mailroom_ready", "mailroom_passes", "mailroom_emails_moved"} <= names
    assert respond(tmp_path, "/healthz", NOW)[:2] == (200, "application/json")
