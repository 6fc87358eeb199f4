"""The worker's pure decisions: echo rule and pass timing, with a fake clock."""

from __future__ import annotations

import pytest

from mailroom.jmap.models import SetResult
from mailroom.service.debounce import Timer, classify, own_states
from mailroom.service.wake import Wake
from mailroom.triage.report import PassReport


def write(old: str | None, new: str | None) -> SetResult:
    return SetResult(old_state=old, new_state=new, created={})


def report(scanned: str | None, *writes: SetResult) -> PassReport:
    return PassReport(trigger="push", email_state_scanned=scanned, writes=writes)


def state(email: str, **others: str) -> Wake:
    return Wake(changed={"Email": email, **others}, reason="state")


# -- the echo rule ---------------------------------------------------------------


def test_the_state_of_the_last_write_of_an_unbroken_chain_is_an_echo() -> None:
    last = report("10", write("10", "11"), write("11", "12"))
    assert classify(state("12"), last) == "echo"


def test_an_intermediate_state_of_the_chain_is_an_echo_too() -> None:
    last = report("10", write("10", "11"), write("11", "12"))
    assert classify(state("11"), last) == "echo"


def test_a_chain_that_does_not_start_at_the_scanned_state_owns_nothing() -> None:
    # Someone changed mail between the scan and our first write.
    last = report("10", write("10b", "11"), write("11", "12"))
    assert own_states(last) == frozenset()
    assert classify(state("12"), last) == "news"


def test_a_gap_inside_the_chain_owns_nothing() -> None:
    last = report("10", write("10", "11"), write("11x", "12"))
    assert classify(state("12"), last) == "news"


def test_a_write_without_states_breaks_the_chain() -> None:
    assert own_states(report("10", write(None, "11"))) == frozenset()
    assert own_states(report("10", write("10", None))) == frozenset()
    assert own_states(report(None, write("10", "11"))) == frozenset()


def test_a_different_state_after_our_writes_is_news() -> None:
    last = report("10", write("10", "11"))
    assert classify(state("13"), last) == "news"


def test_the_scanned_state_of_a_pass_without_writes_is_seen() -> None:
    assert classify(state("10"), report("10")) == "seen"


def test_a_late_event_for_the_scanned_state_is_seen_even_after_writes() -> None:
    assert classify(state("10"), report("10", write("10", "11"))) == "seen"


def test_a_connect_wake_is_never_an_echo() -> None:
    last = report("10", write("10", "11"))
    assert classify(Wake(changed={"Email": "11"}, reason="connect"), last) == "news"


def test_before_any_pass_every_wake_is_news() -> None:
    assert classify(state("10"), None) == "news"


def test_a_mailbox_only_change_gets_a_pass() -> None:
    last = report("10", write("10", "11"))
    assert classify(Wake(changed={"Mailbox": "m5"}, reason="state"), last) == "news"


def test_a_mailbox_state_beside_an_echoed_email_state_is_still_an_echo() -> None:
    last = report("10", write("10", "11"))
    assert classify(state("11", Mailbox="m6"), last) == "echo"


# -- the timer -------------------------------------------------------------------


@pytest.fixture
def idle() -> Timer:
    return Timer(poll_interval=60.0, debounce_seconds=3.0, last_pass_at=100.0)


def test_an_idle_timer_is_due_for_a_fallback_pass_after_poll_interval(idle: Timer) -> None:
    assert idle.deadline() == 160.0
    assert idle.due(159.9) is None
    assert idle.due(160.0) == "fallback"


def test_news_makes_a_push_pass_due_after_the_debounce(idle: Timer) -> None:
    t = idle.on_wakes(["news"], now=110.0)
    assert t.deadline() == 113.0
    assert t.due(112.9) is None
    assert t.due(113.0) == "push"


def test_a_burst_collapses_into_one_pass_without_sliding_the_window(idle: Timer) -> None:
    t = idle
    for k in range(10):
        t = t.on_wakes(["news"], now=110.0 + k * 0.2)
    assert t.collapsed == 10
    assert t.deadline() == 113.0  # the first wake starts the window; later ones do not push it
    assert t.due(113.0) == "push"


def test_echoes_and_seen_states_start_no_debounce(idle: Timer) -> None:
    assert idle.on_wakes(["echo", "seen", "echo"], now=110.0) == idle


def test_a_mixed_batch_counts_only_the_news(idle: Timer) -> None:
    t = idle.on_wakes(["echo", "news", "seen", "news"], now=110.0)
    assert t.collapsed == 2
    assert t.pending_since == 110.0


def test_a_pass_resets_the_window_and_restarts_the_fallback(idle: Timer) -> None:
    t = idle.on_wakes(["news"], now=110.0).after_pass(now=114.0)
    assert t.pending_since is None
    assert t.collapsed == 0
    assert t.deadline() == 174.0
    assert t.due(120.0) is None


def test_news_late_in_the_fallback_interval_still_waits_the_debounce(idle: Timer) -> None:
    t = idle.on_wakes(["news"], now=159.0)
    assert t.due(160.0) is None
    assert t.due(162.0) == "push"
