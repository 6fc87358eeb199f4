"""Reconnect decisions: delays (doubling, the cap, the reset, the server's retry field,
clamped), what to do after a stream ends, and when a catch-up pass is needed."""

from __future__ import annotations

import pytest

from mailroom.errors import AuthError, PushError, ServerError, TransportError
from mailroom.service.backoff import (
    Backoff,
    Reconnect,
    StreamEnd,
    after_error,
    after_stream,
    needs_catch_up,
)


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
    backoff = Backoff().connected().with_server_retry(3000)
    found, _ = delays(backoff.connected(), 2)
    assert found == [3, 2]


@pytest.mark.parametrize(("retry_ms", "delay"), [(0, 1), (-5, 1), (999, 1), (3_600_000, 60)])
def test_server_retry_is_clamped_to_one_second_and_the_cap(retry_ms: int, delay: float) -> None:
    assert Backoff().with_server_retry(retry_ms).next_delay()[0] == delay


def test_server_delay_from_retry_after_is_clamped_the_same_way() -> None:
    assert Backoff().with_server_delay(0).next_delay()[0] == 1
    assert Backoff().with_server_delay(1e9).next_delay()[0] == 60


def test_at_cap_waits_the_longest_delay_and_counts_a_failure() -> None:
    delay, backoff = Backoff(initial=0.1, cap=5).at_cap()
    assert delay == 5
    assert backoff.failures == 1


def test_custom_initial_and_cap_for_short_test_schedules() -> None:
    found, _ = delays(Backoff(initial=0.05, cap=0.2), 4)
    assert found == [0.05, 0.1, 0.2, 0.2]


# -- after a stream ends ---------------------------------------------------------


def test_a_stream_the_server_closed_is_a_routine_recycle() -> None:
    decision = after_stream(StreamEnd(connected=True), Backoff(failures=3).connected())
    assert (decision.delay, decision.level, decision.routine) == (1, "info", True)
    assert decision.last_error is None
    assert decision.reason == "the server closed the stream"


def test_a_quiet_stream_that_never_pinged_is_routine_one_that_pinged_is_not() -> None:
    quiet = after_stream(StreamEnd(connected=True, timed_out=True, error=PushError("t")), Backoff())
    assert (quiet.level, quiet.routine, quiet.last_error) == ("info", True, None)
    dead = after_stream(
        StreamEnd(connected=True, pinged=True, timed_out=True, error=PushError("t")), Backoff()
    )
    assert (dead.level, dead.routine, dead.last_error) == ("warning", False, "PushError: t")


def test_bad_credentials_wait_at_the_cap_and_log_an_error() -> None:
    error = AuthError("JMAP EventSource", 401, "check the token")
    decision = after_stream(StreamEnd(error=error), Backoff())
    assert (decision.delay, decision.level) == (60, "error")
    assert decision.last_error == f"AuthError: {error}"  # kind and message, as worker.json


def test_retry_after_sets_the_delay_of_a_server_error() -> None:
    error = ServerError("JMAP EventSource", 503, "http://x/ev", retry_after=7)
    assert after_error(error, Backoff()).delay == 7
    zero = ServerError("JMAP EventSource", 503, "http://x/ev", retry_after=0)
    assert after_error(zero, Backoff()).delay == 1


def test_failures_double_the_delay_and_keep_the_schedule() -> None:
    error = TransportError("JMAP EventSource", "http://x/ev", "refused")
    first = after_error(error, Backoff())
    second = after_error(error, first.backoff)
    assert (first.delay, second.delay) == (1, 2)
    assert second.level == "warning"


def test_a_catch_up_pass_is_skipped_only_for_a_resumed_stream_after_a_routine_recycle() -> None:
    routine = after_stream(StreamEnd(connected=True), Backoff())
    failed = after_error(PushError("broken"), Backoff())
    assert not needs_catch_up(resumed=True, previous=routine)
    assert needs_catch_up(resumed=False, previous=routine)  # no Last-Event-ID to resume from
    assert needs_catch_up(resumed=True, previous=failed)
    assert needs_catch_up(resumed=True, previous=None)
    assert needs_catch_up(resumed=False, previous=None)  # the first connect


# -- streams that open and deliver nothing ----------------------------------------------


def failed_streams(end: StreamEnd, count: int, retry_ms: int | None = None) -> list[Reconnect]:
    """``count`` streams in a row ending as ``end``, each after a successful connect."""
    decisions, backoff = [], Backoff()
    for _ in range(count):
        backoff = backoff.connected()  # what the listener does when the stream opens
        if retry_ms is not None:
            backoff = backoff.with_server_retry(retry_ms)
        decision = after_stream(end, backoff)
        decisions.append(decision)
        backoff = decision.backoff
    return decisions


BROKEN = StreamEnd(connected=True, error=PushError("a line longer than 65536 bytes"))


def test_failed_streams_in_a_row_grow_the_delay_to_the_cap_as_failed_connects_do() -> None:
    found = failed_streams(BROKEN, 9)
    assert [d.delay for d in found] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert [d.failed_streams for d in found] == list(range(1, 10))
    assert [d.level for d in found] == ["warning"] + ["debug"] * 8  # logged once per run


def test_a_server_retry_of_zero_does_not_shorten_the_run_of_failed_streams() -> None:
    found = failed_streams(StreamEnd(connected=True), 8, retry_ms=0)
    assert [d.delay for d in found] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [d.level for d in found] == ["info"] + ["debug"] * 7


def test_a_delivering_or_long_quiet_stream_ends_the_run() -> None:
    backoff = failed_streams(BROKEN, 5)[-1].backoff
    for end in (
        StreamEnd(connected=True, delivered=True),
        StreamEnd(connected=True, pinged=True, delivered=True, error=PushError("cut")),
        StreamEnd(connected=True, timed_out=True, error=PushError("t")),  # never pings
    ):
        decision = after_stream(end, backoff.connected())
        assert (decision.delay, decision.failed_streams) == (1, 0)
        assert decision.backoff.failed_streams == 0


def test_a_failed_connect_leaves_the_run_of_failed_streams_as_it_is() -> None:
    backoff = failed_streams(BROKEN, 3)[-1].backoff
    refused = after_stream(StreamEnd(error=TransportError("JMAP EventSource", "u", "no")), backoff)
    assert refused.backoff.failed_streams == 3
    assert after_stream(BROKEN, refused.backoff.connected()).delay == 8
