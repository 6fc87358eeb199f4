"""``wait_until``: the one poll loop of the tests and the benches.

Tests and benches observe real processes and a real server (a search index that lags
delivery, a service that starts); they poll with a bounded deadline, and never sleep
to wait for logic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """What was waited for did not come in time (a failed check, for pytest too)."""


def wait_until(
    predicate: Callable[[], T], what: str, timeout: float = 60.0, *, every: float = 0.1
) -> T:
    """Call ``predicate`` every ``every`` seconds until it returns something truthy;
    return that. After ``timeout`` seconds raise ``TimedOut`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
