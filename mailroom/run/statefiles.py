"""Status files: each process writes its own JSON document, health reads them all.

Writes are atomic (a temp file in the same directory, then ``os.replace``), so a
reader sees the old document or the new one, never half of one; neither step follows
a symbolic link (``mkstemp`` creates with O_EXCL, ``rename`` replaces the link itself),
and a read opens with O_NOFOLLOW. Reads are tolerant: a missing, unreadable or torn
file (or a link) reads as None and never raises. Every document is scrubbed of
secrets before it is written, and an error is recorded as ``error_summary``: its kind
and a message of at most ERROR_TEXT_LIMIT characters, never raw exception text.

Standard library only: the health process imports this module.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping

from mailroom.paths import StrPath, write_atomic
from mailroom.redaction import clip, scrub

# Every status file carries "pid" and "heartbeat" (POSIX seconds), refreshed at least
# every HEARTBEAT_SECONDS even when idle; health reports a process whose heartbeat is
# older than STALE_AFTER_SECONDS as down. A time that mailroom reads back is written as
# a number (``seconds`` reads it); one that a person reads (``started_at``,
# ``connected_since``...) as ISO 8601 (``iso``), with its number beside it
# (``stamp``: ``started_at_epoch``) when mailroom reads it back too.
HEARTBEAT_SECONDS = 15.0
STALE_AFTER_SECONDS = 60.0
ERROR_TEXT_LIMIT = 300
EPOCH = "_epoch"  # the number beside a time written for people (``stamp``)
STATUS_READ_LIMIT = 1024 * 1024


def error_summary(exc: BaseException) -> str:
    """``"Kind: message"`` on one line, secrets blanked, at most ERROR_TEXT_LIMIT long."""
    return clip(scrub(f"{type(exc).__name__}: {exc}"), ERROR_TEXT_LIMIT)


def write_status(path: StrPath, data: Mapping[str, object]) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically."""
    write_atomic(path, scrub(json.dumps(dict(data), indent=2, sort_keys=True)) + "\n")


def read_status(path: StrPath) -> dict[str, object] | None:
    """The document at ``path``, or None when it is missing, unreadable or not a JSON object."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            doc = json.loads(f.read(STATUS_READ_LIMIT).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def iso(ts: float) -> str:
    """A POSIX timestamp as ISO 8601 UTC (``2024-05-01T12:00:00.123456+00:00``)."""
    from datetime import UTC, datetime  # here: health, which only reads, never needs it

    return datetime.fromtimestamp(ts, UTC).isoformat()


def utc_stamp(ts: float) -> str:
    """A log line's timestamp (``2024-05-01T12:00:00.123456Z``), without datetime."""
    fraction, whole = math.modf(ts)  # rounded as datetime.fromtimestamp rounds
    whole, micro = divmod(int(whole) * 1_000_000 + round(fraction * 1e6), 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micro:06d}Z"


def seconds(value: object) -> float | None:
    """A time a status file holds (POSIX seconds), or None when ``value`` is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def stamp(name: str, ts: float | None) -> dict[str, object]:
    """``{name: ISO 8601, name_epoch: ts}``: a time people read and mailroom reads back."""
    return {name: None if ts is None else iso(ts), f"{name}{EPOCH}": ts}


def stamped(doc: Mapping[str, object], name: str) -> float | None:
    """The time ``stamp`` wrote as ``name`` in ``doc``, or None."""
    return seconds(doc.get(f"{name}{EPOCH}"))


class StatusFile:
    """One process's status document, kept in memory and rewritten on every change.

    Thread-safe (a heartbeat thread may beat while the main loop updates). Every write
    refreshes ``heartbeat``; a failed write (disk full, directory gone) returns False
    instead of raising: a status file must never take its process down.
    """

    def __init__(
        self, path: StrPath, initial: Mapping[str, object], wall: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._doc = dict(initial)
        self._wall = wall
        self._lock = threading.Lock()

    def update(self, **fields: object) -> bool:
        with self._lock:
            self._doc.update(fields)
            self._doc["heartbeat"] = self._wall()
            try:
                write_status(self.path, self._doc)
            except OSError:
                return False
            return True

    def beat(self) -> bool:
        return self.update()

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            import copy  # here: health only reads

            return copy.deepcopy(self._doc)
