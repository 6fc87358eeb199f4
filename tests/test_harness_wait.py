"""mailroom_dev.wait.wait_until: the one poll loop of tests and benches."""

from __future__ import annotations

import pytest

from mailroom_dev.wait import TimedOut, wait_until


def test_it_returns_the_first_truthy_value_the_predicate_gives() -> None:
    answers = iter([None, 0, [], {"pid": 42}, {"pid": 43}])
    assert wait_until(lambda: next(answers), "a pid", 5, every=0) == {"pid": 42}
    assert next(answers) == {"pid": 43}  # not called again once it held


def test_past_the_timeout_it_fails_naming_what_it_waited_for() -> None:
    calls = []

    def never() -> bool:
        calls.append(1)
        return False

    with pytest.raises(TimedOut, match="waiting for the worker to start") as caught:
        wait_until(never, "the worker to start", 0, every=0)
    assert isinstance(caught.value, AssertionError)  # a failed check, in a test too
    assert calls  # the predicate is asked at least once, even with no time left
