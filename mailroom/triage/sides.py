"""Two sides of a pass at once: one runs in a thread of its own while the caller goes on.

A pass talks to two servers through two separate ``httpx.Client``s (JMAP and CardDAV),
so what one side does need not wait for the other's round trips (the critical path in
docs/decisions.md). ``beside`` runs a function in a thread with the caller's context
variables (the pass's log context), and never lets the caller leave before the
thread has ended: ``Side.join`` returns its result or raises what it raised (a
``PassDeadline`` or anything that stands for the process dying included).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Side(Generic[T]):
    """A function running in its own thread; ``join`` waits for it and hands its outcome on."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn = fn
        self._context = contextvars.copy_context()
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="triage-side", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._context.run(self._fn)
        except BaseException as exc:  # handed to the caller by join()
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def join(self) -> T:
        self.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._result  # type: ignore[return-value]


@contextmanager
def beside(fn: Callable[[], T]) -> Iterator[Side[T]]:
    """Run ``fn`` in a thread for the length of the block; the block never outlives it.

    The block calls ``join()`` for the outcome; if the block raises first, the thread
    is still waited for, and the block's exception is the one that propagates.
    """
    side = Side(fn)
    try:
        yield side
    finally:
        side.wait()


def all_at_once(steps: Sequence[Callable[[], T]], width: int) -> list[T]:
    """Run ``steps`` ``width`` at a time, each in a thread; wait for every one of a round
    before the next round; then raise the first exception any step raised, or return
    their values in order. One step runs in the caller's thread."""
    if len(steps) == 1:
        return [steps[0]()]
    error: BaseException | None = None
    values: list[T] = []
    for at in range(0, len(steps), width):
        sides = [Side(step) for step in steps[at : at + width]]
        for side in sides:
            try:
                values.append(side.join())
            except BaseException as exc:  # the others are still waited for
                error = error or exc
    if error is not None:
        raise error
    return values
