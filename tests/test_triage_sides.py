"""The two sides of a pass at once (``triage.sides``): results, errors, and waiting."""

from __future__ import annotations

import threading

import pytest
import structlog

from mailroom.errors import PassDeadline
from mailroom.triage.sides import all_at_once, beside


class Died(BaseException):
    """Stands for the process dying (not an Exception: nothing may swallow it)."""


def test_the_side_returns_its_result_and_runs_in_another_thread() -> None:
    with beside(lambda: threading.get_ident()) as side:
        ident = side.join()
    assert ident != threading.get_ident()


def test_the_side_sees_the_callers_log_context() -> None:
    with (
        structlog.contextvars.bound_contextvars(trigger="push"),
        beside(structlog.contextvars.get_contextvars) as side,
    ):
        seen = side.join()
    assert seen == {"trigger": "push"}


@pytest.mark.parametrize("error", [PassDeadline(1.0), Died("killed"), ValueError("x")])
def test_what_the_side_raised_is_raised_by_join(error: BaseException) -> None:
    def fail() -> None:
        raise error

    with pytest.raises(type(error)), beside(fail) as side:
        side.join()


def test_the_block_never_outlives_its_side_even_when_it_raises() -> None:
    release, ended = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(10)
        ended.set()

    def caller() -> None:
        with beside(slow):
            threading.Timer(0.05, release.set).start()
            raise RuntimeError("the caller's side failed")

    with pytest.raises(RuntimeError):
        caller()
    assert ended.is_set()  # waited for, though nobody joined


def test_all_at_once_runs_every_step_width_at_a_time() -> None:
    lock, running, most, done = threading.Lock(), [0], [0], []
    barrier = threading.Barrier(3, timeout=10)

    def step(k: int) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if k < 6:
            barrier.wait()  # the first two rounds of three meet: they run at once
        with lock:
            running[0] -= 1
            done.append(k)

    all_at_once([lambda k=k: step(k) for k in range(7)], width=3)
    assert sorted(done) == list(range(7))
    assert most[0] == 3


def test_all_at_once_waits_for_every_step_then_raises_the_first_error() -> None:
    done: list[int] = []

    def fail() -> None:
        raise Died("killed")

    def ok(k: int) -> None:
        done.append(k)

    with pytest.raises(Died):
        all_at_once([fail, lambda: ok(1), lambda: ok(2), lambda: ok(3)], width=2)
    assert sorted(done) == [1, 2, 3]


def test_one_step_runs_in_the_callers_thread() -> None:
    seen: list[int] = []
    all_at_once([lambda: seen.append(threading.get_ident())], width=4)
    assert seen == [threading.get_ident()]
