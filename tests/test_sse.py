"""SSE bytes -> events -> state changes: the bounded WHATWG decoder and our decoding."""

from __future__ import annotations

import json

import pytest

from mailroom.errors import PushError
from mailroom.service.sse import (
    Event,
    EventDecoder,
    Malformed,
    StateChange,
    StreamHints,
    decode_event,
    hints,
)

ACCOUNT = "u1"

CYRUS_STREAM = (
    b'id: 70\nevent: state\ndata: {"@type":"StateChange","changed":{"u1":{"Email":"69"}}}\n\n'
    b'event: ping\ndata: {"interval":30}\n\n'
    b'id: 77\nevent: state\ndata: {"@type":"StateChange","changed":'
    b'{"u1":{"Mailbox":"76","Email":"76"}}}\n\n'
)


def events_from_chunks(chunks: list[bytes], decoder: EventDecoder | None = None) -> list[Event]:
    decoder = decoder or EventDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


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


# -- the decoder's WHATWG rules and bounds ----------------------------------------


def test_a_cr_at_the_end_of_a_chunk_ends_the_line_at_once() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: 1\r\r") == [Event(data="1")]  # not held for a possible LF
    assert decoder.feed(b"\ndata: 2\n\n") == [Event(data="2")]  # that LF is no blank line


def test_every_line_end_and_a_crlf_split_between_chunks() -> None:
    chunks = [b"event: a\r", b"\ndata: 1\r\r", b"event: b\ndata: 2\n", b"\n"]
    found = events_from_chunks(chunks)
    assert [(e.event, e.data) for e in found] == [("a", "1"), ("b", "2")]


def test_one_byte_at_a_time_gives_the_same_events() -> None:
    whole = events_from_chunks([CYRUS_STREAM])
    assert events_from_chunks(split_every(CYRUS_STREAM, 1)) == whole
    assert len(whole) == 3


def test_a_bom_at_the_start_comments_and_unknown_fields_are_skipped() -> None:
    stream = b"\xef\xbb\xbfevent: a\n: a comment\nfoo: bar\ndata:x\n\n"
    assert events_from_chunks([stream]) == [Event(event="a", data="x")]


def test_data_lines_join_with_newlines_and_id_persists() -> None:
    stream = b"id: 5\ndata: a\ndata: b\n\ndata: c\n\n"
    assert events_from_chunks([stream]) == [Event(data="a\nb", id="5"), Event(data="c", id="5")]


def test_retry_counts_only_when_all_digits() -> None:
    stream = b"retry: -1\n\nretry: 1e3\n\nretry: 250\n\n"
    assert [e.retry for e in events_from_chunks([stream])] == [250]


def test_a_line_longer_than_the_bound_is_an_error_and_frees_the_buffer() -> None:
    decoder = EventDecoder(max_line=1000)
    assert decoder.feed(b"data: " + b"x" * 900) == []
    with pytest.raises(PushError, match="a line longer than 1000 bytes"):
        decoder.feed(b"x" * 200)
    assert len(decoder._buffer) == 0


def test_a_line_just_within_the_bound_is_fine() -> None:
    decoder = EventDecoder(max_line=1000)
    line = b"data: " + b"x" * 994
    assert decoder.feed(line) == []
    assert decoder.feed(b"\n\n") == [Event(data="x" * 994)]


def test_an_event_whose_data_lines_add_up_beyond_the_bound_is_an_error() -> None:
    decoder = EventDecoder(max_event=10_000)
    for _ in range(98):
        decoder.feed(b"data: " + b"y" * 100 + b"\n")
    with pytest.raises(PushError, match="an event larger than 10000 bytes"):
        decoder.feed(b"data: " + b"y" * 100 + b"\n" + b"data: " + b"y" * 100 + b"\n")


def test_bad_utf8_is_replaced_not_raised() -> None:
    [event] = events_from_chunks([b"data: \xff\xfe\n\n"])
    assert event.data == "\ufffd\ufffd"
