"""Server-Sent Events (WHATWG) and JMAP state changes (RFC 8620 section 7.3). Pure.

``EventDecoder`` turns the stream's bytes, fed in chunks of any size, into ``Event``
values by the WHATWG rules (``event:state`` without a space, data spanning lines, ``:``
comments, ``\\r\\n``/``\\r``/``\\n`` line ends, ``retry:`` only when all digits). It is
bounded: a line longer than ``MAX_LINE_BYTES`` or an event whose data grows beyond
``MAX_EVENT_BYTES`` is a ``PushError`` (the stream is broken or hostile; the listener
reconnects), so a server cannot grow the listener's memory by never ending a line.
This module then turns events into values. Two payload shapes exist for ``state``
events::

    {"@type": "StateChange", "changed": {"<account>": {"Email": "72"}}}   RFC 8620 (Cyrus)
    {"changed": {"<account>": {...}}, "type": "connect" | "change"}       Fastmail

Pings and any other event name are ignored; a ``state`` event whose data is not one
of these shapes becomes a :class:`Malformed` value for the caller to log and skip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailroom.errors import PushError

MAX_REASON_CHARS = 200
# A JMAP state event is well under 1 KB; these leave room for many accounts and types.
MAX_LINE_BYTES = 64 * 1024
MAX_EVENT_BYTES = 256 * 1024
_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched SSE event; ``id`` is the last event id seen on the stream so far."""

    event: str = ""
    data: str = ""
    id: str = ""
    retry: int | None = None


class EventDecoder:
    """Bytes in, events out; keeps at most one unfinished line and one event's data."""

    def __init__(self, max_line: int = MAX_LINE_BYTES, max_event: int = MAX_EVENT_BYTES) -> None:
        self.max_line, self.max_event = max_line, max_event
        self._buffer = bytearray()
        self._first = True  # a UTF-8 BOM may open the stream
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next is its pair
        self._last_id = ""
        self._reset()

    def _reset(self) -> None:
        self._event, self._data, self._size = "", list[str](), 0
        self._retry: int | None = None
        self._fields = False

    def feed(self, chunk: bytes) -> list[Event]:
        """The events completed by ``chunk``; raises PushError when a bound is crossed."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the second half of a CRLF split between chunks
        self._skip_lf = False
        scanned = len(self._buffer)
        self._buffer += chunk
        events: list[Event] = []
        start = 0
        for end in _EOL.finditer(self._buffer, scanned):
            event = self._line(bytes(self._buffer[start : end.start()]))
            if event is not None:
                events.append(event)
            start = end.end()
        self._skip_lf = self._buffer.endswith(b"\r") and start == len(self._buffer)
        del self._buffer[:start]
        if len(self._buffer) > self.max_line:
            self._buffer.clear()
            raise PushError(
                f"the event stream sent a line longer than {self.max_line} bytes; "
                "the server's stream is broken, reconnecting"
            )
        return events

    def _line(self, raw: bytes) -> Event | None:
        if self._first:
            self._first = False
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw:
            return self._dispatch()
        if raw.startswith(b":"):
            return None
        name, _, value = raw.decode("utf-8", errors="replace").partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._size += len(value) + 1
            if self._size > self.max_event:
                raise PushError(
                    f"the event stream sent an event larger than {self.max_event} bytes; "
                    "the server's stream is broken, reconnecting"
                )
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        else:
            return None
        self._fields = True
        return None

    def _dispatch(self) -> Event | None:
        if not self._fields:
            return None
        event = Event(self._event, "\n".join(self._data), self._last_id, self._retry)
        self._reset()
        return event


@dataclass(frozen=True, slots=True)
class StateChange:
    """The new states (type -> opaque state string) of one account."""

    changed: Mapping[str, str]
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A ``state`` event that could not be understood; ``reason`` is safe to log."""

    event_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class StreamHints:
    """Protocol facts an event carries besides its payload."""

    event_id: str | None  # the last event id seen on this stream so far
    retry_ms: int | None  # the server's `retry:` field, when this event set it
    is_ping: bool


Decoded = StateChange | Malformed | None


def hints(event: Event) -> StreamHints:
    """What an event tells the connection loop (Last-Event-ID, retry, liveness)."""
    return StreamHints(
        event_id=event.id or None,
        retry_ms=event.retry,
        is_ping=event.event == "ping",
    )


def decode_event(event: Event, account_id: str) -> Decoded:
    """The state change for ``account_id`` in ``event``, or None when there is none."""
    if event.event != "state":
        return None
    event_id = event.id or None
    try:
        changed = _account_changes(json.loads(event.data), account_id)
    except (ValueError, TypeError) as exc:
        return Malformed(event_id, _short(f"{type(exc).__name__}: {exc}"))
    if not changed:
        return None
    return StateChange(changed=changed, event_id=event_id)


def _account_changes(payload: Any, account_id: str) -> dict[str, str]:
    if not isinstance(payload, dict):
        raise TypeError(f"data is a JSON {type(payload).__name__}, not an object")
    kind = payload.get("@type", "StateChange")
    if kind != "StateChange":
        raise TypeError(f"@type is {kind!r}, not 'StateChange'")
    changed = payload.get("changed")
    if not isinstance(changed, dict):
        raise TypeError("no `changed` object")
    states = changed.get(account_id)
    if states is None:
        return {}
    if not isinstance(states, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in states.items()
    ):
        raise TypeError(f"changed[{account_id!r}] is not a map of type -> state string")
    return dict(states)


def _short(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
