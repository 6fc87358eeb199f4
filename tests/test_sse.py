"""SSE bytes -> state changes: the real parser (httpx-sse) under our decoding."""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import EventSource, ServerSentEvent

from mailroom.service.sse import Malformed, StateChange, StreamHints, decode_event, hints

ACCOUNT = "u1"

CYRUS_STREAM = (
    b'id: 70\nevent: state\ndata: {"@type":"StateChange","changed":{"u1":{"Email":"69"}}}\n\n'
    b'event: ping\ndata: {"interval":30}\n\n'
    b'id: 77\nevent: state\ndata: {"@type":"StateChange","changed":'
    b'{"u1":{"Mailbox":"76","Email":"76"}}}\n\n'
)


def events_from_chunks(chunks: list[bytes]) -> list[ServerSentEvent]:
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
    )
    return list(EventSource(response).iter_sse())


def decoded(chunks: list[bytes]) -> list[StateChange | Malformed | None]:
    return [decode_event(e, ACCOUNT) for e in events_from_chunks(chunks)]


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


EXPECTED_CYRUS = [
    StateChange(changed={"Email": "69"}, event_id="70"),
    None,
    StateChange(changed={"Mailbox": "76", "Email": "76"}, event_id="77"),
]


def test_cyrus_stream_in_one_chunk_gives_two_changes_and_ignores_the_ping() -> None:
    assert decoded([CYRUS_STREAM]) == EXPECTED_CYRUS


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64])
def test_stream_split_at_any_byte_gives_the_same_changes(size: int) -> None:
    assert decoded(split_every(CYRUS_STREAM, size)) == EXPECTED_CYRUS


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_ends_split_between_cr_and_lf(newline: bytes) -> None:
    stream = CYRUS_STREAM.replace(b"\n", newline)
    assert decoded(split_every(stream, 5)) == EXPECTED_CYRUS


def test_field_without_space_and_data_over_several_lines_and_comments() -> None:
    stream = (
        b": hello, this is a comment\n"
        b"id:5\n"
        b"event:state\n"
        b'data:{"@type":"StateChange",\n'
        b'data: "changed":{"u1":{"Email":"s\xc3\xa9"}}}\n'
        b"\n"
    )
    # the multi-byte UTF-8 character is split across chunks too
    cut = stream.index(b"\xa9")
    assert decoded([stream[:cut], stream[cut:]]) == [
        StateChange(changed={"Email": "sé"}, event_id="5")
    ]


def test_fastmail_shape_connect_and_change_are_state_changes() -> None:
    connect = {"changed": {"u1": {"Email": "a1", "Mailbox": "b1"}}, "type": "connect"}
    change = {"changed": {"u1": {"Email": "a2"}}, "type": "change"}
    stream = b"".join(
        b"event: state\ndata: " + json.dumps(p).encode() + b"\n\n" for p in (connect, change)
    )
    assert decoded([stream]) == [
        StateChange(changed={"Email": "a1", "Mailbox": "b1"}, event_id=None),
        StateChange(changed={"Email": "a2"}, event_id=None),
    ]


def test_changes_for_other_accounts_only_are_ignored() -> None:
    data = {"@type": "StateChange", "changed": {"someone-else": {"Email": "9"}}}
    assert decoded([b"event: state\ndata: " + json.dumps(data).encode() + b"\n\n"]) == [None]


@pytest.mark.parametrize(
    "data",
    [
        b"not json at all",
        b"[1, 2]",
        b'{"@type":"Other","changed":{}}',
        b'{"changed":"nope"}',
        b'{"changed":{"u1":{"Email":72}}}',
        b'{"changed":{"u1":["Email"]}}',
        b'{"changed":{"u1":{"Email":"1"}}',  # truncated
    ],
)
def test_garbage_state_data_is_malformed_not_an_exception(data: bytes) -> None:
    [result] = decoded([b"id: 3\nevent: state\ndata: " + data + b"\n\n"])
    assert isinstance(result, Malformed)
    assert result.event_id == "3"
    assert result.reason


def test_unknown_event_names_and_bare_messages_are_ignored() -> None:
    stream = b'event: calendar\ndata: {"x":1}\n\ndata: {"changed":{"u1":{"Email":"1"}}}\n\n'
    assert decoded([stream]) == [None, None]


def test_hints_report_last_event_id_retry_and_ping() -> None:
    stream = b"retry: 2500\n\nid: 9\nevent: ping\ndata: {}\n\nevent: ping\ndata: {}\n\n"
    assert [hints(e) for e in events_from_chunks([stream])] == [
        StreamHints(event_id=None, retry_ms=2500, is_ping=False),
        StreamHints(event_id="9", retry_ms=None, is_ping=True),
        StreamHints(event_id="9", retry_ms=None, is_ping=True),  # the id persists
    ]
