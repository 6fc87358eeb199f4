"""logthrottle.Throttle: a flood of warnings becomes a few lines with a count."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from mailroom.logs import configure_logging
from mailroom.logthrottle import Throttle

FLOOD = 100_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def feed(throttle: Throttle, event_dict: dict[str, Any]) -> dict[str, Any] | None:
    """What the processor passes on (a copy of ``event_dict``), or None when it drops it."""
    try:
        return dict(throttle(None, str(event_dict.get("level")), dict(event_dict)))
    except structlog.DropEvent:
        return None


def bad_event(event_id: str = "7", stamp: str = "t") -> dict[str, Any]:
    return {
        "timestamp": stamp,
        "level": "warning",
        "event": "eventsource_bad_event",
        "event_id": event_id,
        "reason": "data is not JSON",
    }


def test_a_flood_of_identical_warnings_is_one_line_then_one_with_the_count() -> None:
    clock = FakeClock()
    throttle = Throttle(interval=60, clock=clock)
    written = []
    for n in range(FLOOD):  # 100,000 in 25 s, as the hostile server sent them
        clock.now = n * 25 / FLOOD
        out = feed(throttle, bad_event(stamp=f"t{n}"))
        if out is not None:
            written.append(out)
    assert len(written) == 1
    assert "suppressed" not in written[0]
    clock.now = 60.0
    later = feed(throttle, bad_event(stamp="later"))
    assert later is not None
    assert later["suppressed"] == FLOOD - 1
    assert feed(throttle, bad_event()) is None  # a new interval has begun


def test_warnings_differing_only_in_an_id_are_capped_per_event_and_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(interval=60, per_event=50, clock=clock)
    written = []
    for n in range(FLOOD):  # 100,000 over 250 s: intervals starting at 0, 60, ... 240
        clock.now = n * 250 / FLOOD
        out = feed(throttle, bad_event(event_id=str(n)))
        if out is not None:
            written.append(out)
    assert len(written) == 5 * 50
    firsts = [written[k * 50] for k in range(5)]
    assert "suppressed" not in firsts[0]
    per_interval = FLOOD * 60 // 250  # 24,000 events an interval, 50 of them written
    assert [line["suppressed"] for line in firsts[1:]] == [per_interval - 50] * 4
    assert all("suppressed" not in line for k, line in enumerate(written) if k % 50)


def test_one_events_flood_leaves_other_events_alone() -> None:
    throttle = Throttle(interval=60, per_event=3, clock=FakeClock())
    for n in range(100):
        feed(throttle, bad_event(event_id=str(n)))
    other = {"level": "warning", "event": "listener_status_not_written", "error": "disk"}
    assert feed(throttle, other) == other
    failed = {"level": "error", "event": "sender_failed", "sender": "a@x"}
    assert feed(throttle, failed) == failed
    assert feed(throttle, {**failed, "sender": "b@x"}) is not None  # another sender: a new line
    assert feed(throttle, failed) is None  # the same line again


@pytest.mark.parametrize("level", ["info", "debug"])
def test_info_and_debug_lines_are_never_dropped(level: str) -> None:
    throttle = Throttle(interval=60, per_event=1, clock=FakeClock())
    line = {"level": level, "event": "poll_completed", "trigger": "push"}
    assert all(feed(throttle, line) is not None for _ in range(1000))


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.mark.usefixtures("_restore_logging")
def test_configured_logging_writes_a_flood_of_malformed_event_warnings_as_a_few_lines() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    log = structlog.get_logger()
    for _ in range(FLOOD):
        log.warning("eventsource_bad_event", event_id=None, reason="data is not JSON")
    log.info("poll_completed", trigger="push")
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    # the flood is one line per 60 s interval it lasted: one, unless this machine took a
    # minute for it; the info line is always written
    assert 2 <= len(lines) <= 3
    assert lines[0]["event"] == "eventsource_bad_event"
    assert lines[-1]["event"] == "poll_completed"
