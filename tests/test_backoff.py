"""Reconnect delays: doubling, the cap, the reset, the server's retry field."""

from __future__ import annotations

from mailroom.service.backoff import Backoff


def delays(backoff: Backoff, count: int) -> tuple[list[float], Backoff]:
    found = []
    for _ in range(count):
        delay, backoff = backoff.next_delay()
        found.append(delay)
    return found, backoff


def test_delays_double_from_one_second_and_stop_at_sixty() -> None:
    found, _ = delays(Backoff(), 9)
    assert found == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_many_failures_stay_at_the_cap_without_overflow() -> None:
    found, _ = delays(Backoff(), 2000)
    assert found[-1] == 60


def test_a_successful_connect_starts_again_from_one_second() -> None:
    _, backoff = delays(Backoff(), 5)
    found, _ = delays(backoff.connected(), 3)
    assert found == [1, 2, 4]


def test_server_retry_sets_only_the_next_delay() -> None:
    _, backoff = delays(Backoff(), 3)
    found, _ = delays(backoff.with_server_retry(2500), 3)
    assert found == [2.5, 16, 32]


def test_server_retry_survives_the_connect_on_which_it_was_sent() -> None:
    backoff = Backoff().connected().with_server_retry(300)
    found, _ = delays(backoff.connected(), 2)
    assert found == [0.3, 2]


def test_server_retry_is_bounded_by_the_cap_and_never_negative() -> None:
    assert Backoff().with_server_retry(3_600_000).next_delay()[0] == 60
    assert Backoff().with_server_retry(-5).next_delay()[0] == 0


def test_at_cap_waits_the_longest_delay_and_counts_a_failure() -> None:
    delay, backoff = Backoff(initial=0.1, cap=5).at_cap()
    assert delay == 5
    assert backoff.failures == 1


def test_custom_initial_and_cap_for_short_test_schedules() -> None:
    found, _ = delays(Backoff(initial=0.05, cap=0.2), 4)
    assert found == [0.05, 0.1, 0.2, 0.2]
