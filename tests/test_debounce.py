"""The worker's pure decisions: echo rule and pass timing, with a fake clock."""

from __future__ import annotations

import itertools
import random

import pytest

from mailroom.config import Settings
from mailroom.errors import ServerError, ServerNotAnswering
from mailroom.jmap.models import SetResult
from mailroom.service import debounce
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


# -- long writes: states inside one Email/set ----------------------------------


def test_a_state_inside_our_write_that_arrived_during_the_pass_is_an_echo() -> None:
    # Cyrus reports the state part-way through a 4,000-email Email/set: no newState names it.
    last = report("10", write("10", "4011"), write("4011", "4012"))
    assert classify(state("2517"), last) == "news"
    assert classify(state("2517"), last, during_last=True) == "echo"


def test_a_wake_during_a_pass_with_a_broken_chain_is_news() -> None:
    last = report("10", write("10b", "11"))
    assert classify(state("11"), last, during_last=True) == "news"


def test_a_wake_during_a_pass_that_wrote_nothing_is_news() -> None:
    assert classify(state("11"), report("10"), during_last=True) == "news"


def test_a_connect_or_mailbox_wake_during_the_pass_is_still_news() -> None:
    last = report("10", write("10", "11"))
    assert classify(Wake(changed={}, reason="connect"), last, during_last=True) == "news"
    assert classify(Wake(changed={"Mailbox": "m"}, reason="state"), last, during_last=True) == (
        "news"
    )


# -- the timer (leading-edge) ----------------------------------------------------


@pytest.fixture
def idle() -> Timer:
    # the last pass ran from 100 to 101
    return Timer(poll_interval=60.0, debounce_seconds=3.0, last_pass_at=100.0).after_pass(
        started=100.0, ended=101.0
    )


def test_an_idle_timer_is_due_for_a_fallback_pass_after_poll_interval(idle: Timer) -> None:
    assert idle.deadline() == 161.0
    assert idle.due(160.9) is None
    assert idle.due(161.0) == "fallback"


def test_a_lone_wake_after_a_quiet_period_passes_at_once(idle: Timer) -> None:
    t = idle.on_wakes(["news"], now=110.0)
    assert t.deadline() == 110.0
    assert t.due(110.0) == "push"
    assert not t.held()


def test_before_any_pass_news_passes_at_once() -> None:
    t = Timer(poll_interval=60.0, debounce_seconds=3.0, last_pass_at=0.0)
    assert t.on_wakes(["news"], now=0.5).due(0.5) == "push"


def test_news_inside_the_window_waits_for_its_end(idle: Timer) -> None:
    t = idle.on_wakes(["news"], now=101.5)  # the last pass started at 100: window to 103
    assert t.held()
    assert t.deadline() == 103.0
    assert t.due(102.9) is None
    assert t.due(103.0) == "push"


def test_wakes_inside_the_window_collapse_into_one_trailing_pass(idle: Timer) -> None:
    lead = idle.on_wakes(["news"], now=110.0)
    assert lead.due(110.0) == "push"
    t = lead.after_pass(started=110.0, ended=110.2)
    for k in range(9):  # the rest of a burst of ten within one second
        t = t.on_wakes(["news"], now=110.2 + k * 0.1)
        assert t.due(110.2 + k * 0.1) is None
    assert t.collapsed == 9
    assert t.deadline() == 113.0  # the lead pass's start + debounce; later wakes do not slide it
    assert t.due(113.0) == "push"
    quiet = t.after_pass(started=113.0, ended=113.2)
    assert quiet.due(113.2) is None  # two passes for the burst, then nothing until the fallback
    assert quiet.deadline() == 173.2


def test_a_long_pass_lets_news_that_came_during_it_pass_when_it_ends(idle: Timer) -> None:
    t = idle.after_pass(started=110.0, ended=118.0).on_wakes(["news"], now=118.0)
    assert t.due(118.0) == "push"
    assert not t.held()


def test_echoes_and_seen_states_never_start_a_pass(idle: Timer) -> None:
    assert idle.on_wakes(["echo", "seen", "echo"], now=110.0) == idle
    assert idle.on_wakes(["echo", "seen"], now=101.5) == idle
    assert idle.due(110.0) is None


def test_a_mixed_batch_counts_only_the_news(idle: Timer) -> None:
    t = idle.on_wakes(["echo", "news", "seen", "news"], now=110.0)
    assert t.collapsed == 2
    assert t.pending_since == 110.0


def test_a_pass_clears_the_news_and_restarts_the_fallback_from_its_end(idle: Timer) -> None:
    t = idle.on_wakes(["news"], now=110.0).after_pass(started=110.0, ended=114.0)
    assert t.pending_since is None
    assert t.collapsed == 0
    assert t.deadline() == 174.0
    assert t.due(120.0) is None


def test_debounce_zero_has_no_window(idle: Timer) -> None:
    t = Timer(poll_interval=60.0, debounce_seconds=0.0, last_pass_at=0.0)
    t = t.after_pass(started=10.0, ended=10.1).on_wakes(["news"], now=10.1)
    assert t.due(10.1) == "push"


def test_a_servers_retry_after_is_clamped_and_holds_every_pass() -> None:
    busy = ServerError("JMAP", 503, "https://example.test/", retry_after=0.0)
    assert debounce.retry_after(busy) == 1.0  # at least a second, as the listener
    busy = ServerError("JMAP", 503, "https://example.test/", retry_after=86_400.0)
    assert debounce.retry_after(ServerNotAnswering(busy)) == debounce.RETRY_AFTER_CAP
    assert debounce.retry_after(RuntimeError("bug")) is None
    timer = debounce.Timer(60.0, 3.0, last_pass_at=0.0).after_pass(0.0, 1.0, wait=120.0)
    timer = timer.on_wakes(["news"], 5.0)
    assert (timer.deadline(), timer.due(120.0), timer.due(121.0)) == (121.0, None, "push")
    assert timer.after_pass(121.0, 122.0).deadline() == 182.0  # the next pass: no hold


# -- coalesce, don't delay: the defaults, a loop stepped on a fake clock -------------

SPACING = 0.5  # the default debounce_seconds: the least time between two passes' starts


def simulate(
    wakes: list[tuple[float, str]], duration: float, spacing: float = SPACING
) -> list[float]:
    """The worker's loop reduced to the Timer: the start of every push pass.

    ``wakes`` are (arrival, verdict); a wake that arrives while a pass runs is taken
    when the pass ends, as the worker drains it then. Passes take ``duration``.
    """
    t = Timer(poll_interval=60.0, debounce_seconds=spacing, last_pass_at=-100.0)
    queue = sorted(wakes)
    now, starts = 0.0, []
    while queue or t.pending_since is not None:
        if queue and (t.pending_since is None or queue[0][0] <= t.deadline()):
            now = max(now, queue[0][0])
            batch = [v for at, v in queue if at <= now]
            queue = [(at, v) for at, v in queue if at > now]
            t = t.on_wakes(batch, now)  # type: ignore[arg-type]
        else:
            now = max(now, t.deadline())
        if t.due(now) == "push":
            starts.append(now)
            t = t.after_pass(started=now, ended=now + duration)
            now += duration
            during = [v for at, v in queue if at <= now]
            queue = [(at, v) for at, v in queue if at > now]
            t = t.on_wakes(during, now)  # type: ignore[arg-type]
    return starts


def test_news_after_a_quiet_spell_starts_a_pass_at_once() -> None:
    assert simulate([(5.0, "news")], duration=0.2) == [5.0]
    assert simulate([(5.0, "news"), (6.5, "news")], duration=0.2) == [5.0, 6.5]


def test_news_during_a_pass_makes_exactly_one_more_right_after_it() -> None:
    # a pass of 1 s, longer than the spacing: three wakes during it, one pass at its end
    during = [(5.0, "news"), (5.2, "news"), (5.5, "news"), (5.9, "news")]
    assert simulate(during, duration=1.0) == [5.0, 6.0]


def test_a_short_pass_is_followed_no_sooner_than_the_spacing() -> None:
    # the pass of 5.0 ended at 5.05; news at 5.1 waits for 5.0 + the spacing
    assert simulate([(5.0, "news"), (5.1, "news")], duration=0.05) == [5.0, 5.5]


@pytest.mark.parametrize("duration", [0.02, 0.1, 0.3, 0.6, 1.5])
@pytest.mark.parametrize("seed", range(5))
def test_ten_wakes_within_one_second_cost_at_most_three_passes(duration: float, seed: int) -> None:
    rng = random.Random(seed)
    arrivals = sorted([10.0, 11.0, *(10.0 + rng.uniform(0, 1.0) for _ in range(8))])
    starts = simulate([(a, "news") for a in arrivals], duration=duration)
    assert 2 <= len(starts) <= 3
    assert starts[0] == 10.0  # the first at once
    assert all(b - a >= SPACING for a, b in itertools.pairwise(starts))


def test_a_steady_stream_of_news_is_passed_no_more_often_than_the_spacing() -> None:
    stream = [(10.0 + k * 0.1, "news") for k in range(50)]  # 10 news a second for 5 s
    starts = simulate(stream, duration=0.05)
    assert all(round(b - a, 9) >= SPACING for a, b in itertools.pairwise(starts))
    assert starts == [10.0 + k * SPACING for k in range(11)]  # 14.6-14.9 make the one at 15


def test_echoes_during_a_pass_make_no_further_pass() -> None:
    wakes = [(5.0, "news"), (5.1, "echo"), (5.3, "seen"), (7.0, "echo")]
    assert simulate(wakes, duration=0.2) == [5.0]


def test_the_default_spacing_is_the_documented_one() -> None:
    assert Settings.model_fields["debounce_seconds"].default == SPACING
