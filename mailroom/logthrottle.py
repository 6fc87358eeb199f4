"""A structlog processor that keeps a flood of warnings to a few lines with a count.

A hostile or broken server can make mailroom warn as fast as it can send (100,000
malformed events gave 77,766 warning lines in 25 s). ``Throttle`` lets through, per
``interval`` (60 s):

- a line once: the same line again (same level, event and fields, the timestamp
  aside) is dropped until the interval has passed since it was last written;
- at most ``per_event`` lines of one event name (50): beyond, lines that differ only
  in, say, an event id or a sender are dropped too.

The next line of that event that is written carries ``suppressed=N``: how many lines
like it were left out before it. Info and debug lines are never dropped (the
canonical ``poll_completed`` line among them). Time is an input: ``clock``. It runs
on structlog's own lines only: stdlib records pass through logging, where the
``DropEvent`` it raises would escape the library's call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog
from structlog.typing import EventDict, WrappedLogger

THROTTLED_LEVELS = frozenset({"warning", "error", "critical"})
MAX_TRACKED = 1024  # distinct lines remembered; beyond, expired ones are forgotten


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0


class Throttle:
    """The processor; one instance per logging configuration (it holds the windows)."""

    def __init__(
        self,
        interval: float = 60.0,
        per_event: int = 50,
        clock: Callable[[], float] = time.monotonic,
        levels: Collection[str] = THROTTLED_LEVELS,
    ) -> None:
        self.interval = interval
        self.per_event = per_event
        self._clock = clock
        self._levels = levels
        self._lines: dict[int, _Window] = {}
        self._events: dict[tuple[str, str], _Window] = {}

    def __call__(self, _: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        level = str(event_dict.get("level", method_name))
        if level not in self._levels:
            return event_dict
        now = self._clock()
        event = (level, str(event_dict.get("event")))
        line = _line_key(event_dict)
        seen = self._lines.get(line)
        if seen is not None and now - seen.started < self.interval:
            seen.suppressed += 1
            raise structlog.DropEvent
        counted = self._window(self._events, event, now)
        if counted.written >= self.per_event:
            counted.suppressed += 1
            raise structlog.DropEvent
        return self._write(event_dict, line, seen, counted, now)

    def _window(
        self, windows: dict[tuple[str, str], _Window], key: tuple[str, str], now: float
    ) -> _Window:
        """The event's current window; a new one (keeping the count left out) once expired."""
        window = windows.get(key)
        if window is None or now - window.started >= self.interval:
            left_out = window.suppressed if window is not None else 0
            window = windows[key] = _Window(now, suppressed=left_out)
        return window

    def _write(
        self, event_dict: EventDict, line: int, seen: _Window | None, counted: _Window, now: float
    ) -> EventDict:
        suppressed = counted.suppressed + (seen.suppressed if seen is not None else 0)
        counted.written += 1
        counted.suppressed = 0
        if len(self._lines) >= MAX_TRACKED:
            self._forget_expired(now)
        self._lines[line] = _Window(now, written=1)
        if suppressed:
            event_dict["suppressed"] = suppressed
        return event_dict

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, w in self._lines.items() if now - w.started >= self.interval]:
            del self._lines[key]


def _line_key(event_dict: EventDict) -> int:
    """What makes two lines the same line: everything but the timestamp (hashed: small)."""
    return hash(repr(sorted((k, repr(v)) for k, v in event_dict.items() if k != "timestamp")))
