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
import re
import threading
import time
from collections.abc import Callable, Mapping

from mailroom.paths import StrPath, write_atomic
from mailroom.redaction import clip, scrub

LISTENER_FILE = "listener.json"
WORKER_FILE = "worker.json"
# Every status file carries "pid" and "heartbeat" (ISO 8601 UTC), refreshed at least
# every HEARTBEAT_SECONDS even when idle; health reports a process whose heartbeat is
# older than STALE_AFTER_SECONDS as down.
HEARTBEAT_SECONDS = 15.0
STALE_AFTER_SECONDS = 60.0
ERROR_TEXT_LIMIT = 300
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


# what iso() writes; anything else goes to datetime.fromisoformat
_ISO_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{6}))?\+00:00")


def parse_iso(value: object) -> float | None:
    """The POSIX timestamp of an ISO 8601 string, or None when it is not one. What
    ``iso`` writes is parsed without datetime (health reads it at every request)."""
    if not isinstance(value, str):
        return None
    found = _ISO_UTC.fullmatch(value)
    if found:
        fields = tuple(int(n) for n in found.groups("0"))
        seconds = _days_since_epoch(*fields[:3]) * 86400 + fields[3] * 3600 + fields[4] * 60
        seconds += fields[5]
        if time.gmtime(seconds)[:6] == fields[:6]:  # a real date and time
            return (seconds * 10**6 + fields[6]) / 10**6  # as datetime.timestamp() computes it
    return _parse_iso_any(value)


def _days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's days_from_civil)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _parse_iso_any(value: str) -> float | None:
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


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
            self._doc["heartbeat"] = iso(self._wall())
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
