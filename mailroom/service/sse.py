"""JMAP state changes from Server-Sent Events (RFC 8620 section 7.3). Pure.

The byte stream is parsed by httpx-sse (WHATWG rules: ``event:state`` without a
space, data spanning lines, ``:`` comments, ``\\r\\n``/``\\r``/``\\n`` line ends);
this module turns its events into values. Two payload shapes exist for ``state``
events::

    {"@type": "StateChange", "changed": {"<account>": {"Email": "72"}}}   RFC 8620 (Cyrus)
    {"changed": {"<account>": {...}}, "type": "connect" | "change"}       Fastmail

Pings and any other event name are ignored; a ``state`` event whose data is not one
of these shapes becomes a :class:`Malformed` value for the caller to log and skip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from httpx_sse import ServerSentEvent

MAX_REASON_CHARS = 200


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


def hints(event: ServerSentEvent) -> StreamHints:
    """What an event tells the connection loop (Last-Event-ID, retry, liveness)."""
    return StreamHints(
        event_id=event.id or None,
        retry_ms=event.retry,
        is_ping=event.event == "ping",
    )


def decode_event(event: ServerSentEvent, account_id: str) -> Decoded:
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
