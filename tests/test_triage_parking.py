"""Strikes: who is parked after failing pass after pass (pure, no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from mailroom.triage import strikes
from mailroom.triage.parking import PARK_AFTER, REASON_CHARS, Parked, Strikes, shorten
from mailroom.triage.sender import SenderId

BAD, GOOD = SenderId("bad@x.example"), SenderId("good@x.example")


def test_a_sender_is_parked_after_park_after_failed_passes_in_a_row() -> None:
    strikes = Strikes()
    for _ in range(PARK_AFTER - 1):
        strikes, parked = strikes.after_pass({BAD: "CardDavError: 500"}, [GOOD])
        assert parked == ()
    strikes, parked = strikes.after_pass({BAD: "CardDavError: 500"}, [GOOD])
    assert parked == (Parked(BAD, PARK_AFTER, "CardDavError: 500"),)
    assert strikes.counts == {}  # parked senders are forgotten


def test_a_triaged_pass_starts_the_count_over_and_an_unseen_sender_keeps_it() -> None:
    strikes, _ = Strikes().after_pass({BAD: "e"}, [])
    strikes, _ = strikes.after_pass({}, [])  # not labelled this pass: keeps its count
    assert strikes.counts == {BAD: 1}
    strikes, _ = strikes.after_pass({}, [BAD])
    assert strikes.counts == {}


def test_a_failed_parking_write_puts_the_strikes_back() -> None:
    strikes = Strikes({BAD: PARK_AFTER - 1})
    after, parked = strikes.after_pass({BAD: "e"}, [])
    assert after.unpark(parked).counts == {BAD: PARK_AFTER}


def test_a_long_reason_is_shortened() -> None:
    assert shorten("x" * 10_000) == "x" * (REASON_CHARS - 1) + "…"
    assert shorten("short") == "short"


# -- kept in the state dir (mailroom.triage.strikes) ------------------------------------


def test_strikes_round_trip_through_their_file(tmp_path: Path) -> None:
    path = tmp_path / strikes.STRIKES_FILE
    strikes.save(path, Strikes({BAD: 2, GOOD: 1}))
    assert json.loads(path.read_text()) == {"strikes": {"bad@x.example": 2, "good@x.example": 1}}
    assert strikes.load(path) == Strikes({BAD: 2, GOOD: 1})
    assert strikes.load(tmp_path / "missing.json") == Strikes()


@pytest.mark.parametrize(
    "text",
    ["{torn", "[]", '{"strikes": []}', '{"strikes": {"a@x": "2"}}', '{"strikes": {"a@x": 0}}'],
)
def test_a_strikes_file_not_of_its_shape_counts_from_zero(tmp_path: Path, text: str) -> None:
    path = tmp_path / strikes.STRIKES_FILE
    path.write_text(text)
    with structlog.testing.capture_logs() as logs:
        assert strikes.load(path) == Strikes()
    assert [e["event"] for e in logs] == ["strikes_file_unreadable"]


def test_the_strikes_file_keeps_the_highest_counts_only() -> None:
    many = {SenderId(f"s{i}@x.example"): 1 for i in range(strikes.STRIKES_KEPT + 5)}
    text = strikes.strikes_json(Strikes({**many, BAD: 2}))
    kept = json.loads(text)["strikes"]
    assert len(kept) == strikes.STRIKES_KEPT
    assert kept["bad@x.example"] == 2
