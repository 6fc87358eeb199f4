"""Strikes: who is parked after failing pass after pass (pure, no server)."""

from __future__ import annotations

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
