"""The one query+get builder/parser and the one last-page rule, pinned with exact JSON."""

from __future__ import annotations

import pytest

from mailroom.errors import JmapError
from mailroom.jmap import query
from mailroom.jmap.models import Email, QueryPage


def page(n: int, *, position: int = 0, limit: int | None = None) -> QueryPage:
    return QueryPage(tuple(f"M{i}" for i in range(n)), position, limit, None, "qs")


def test_query_get_is_a_query_and_a_get_reading_its_ids_by_back_reference() -> None:
    calls = query.query_get("acct", {"inMailbox": "S"}, position=500, limit=500, tag="7")
    assert calls == [
        (
            "Email/query",
            {
                "accountId": "acct",
                "filter": {"inMailbox": "S"},
                "sort": [{"property": "receivedAt", "isAscending": True}],
                "position": 500,
                "limit": 500,
            },
            "q7",
        ),
        (
            "Email/get",
            {
                "accountId": "acct",
                "#ids": {"resultOf": "q7", "name": "Email/query", "path": "/ids"},
                "properties": ["from", "mailboxIds"],
            },
            "g7",
        ),
    ]


def test_newest_get_is_one_page_newest_first_after_a_date_with_when_each_arrived() -> None:
    calls = query.newest_get("acct", "2026-11-26T13:00:00Z", limit=500, tag="0")
    assert calls == [
        (
            "Email/query",
            {
                "accountId": "acct",
                "filter": {"after": "2026-11-26T13:00:00Z"},
                "sort": [{"property": "receivedAt", "isAscending": False}],
                "position": 0,
                "limit": 500,
            },
            "q0",
        ),
        (
            "Email/get",
            {
                "accountId": "acct",
                "#ids": {"resultOf": "q0", "name": "Email/query", "path": "/ids"},
                "properties": ["from", "mailboxIds", "receivedAt"],
            },
            "g0",
        ),
    ]
    item = {"id": "M1", "mailboxIds": {"I": True}, "receivedAt": "2026-12-03T13:00:00Z"}
    answers = query.by_call_id(
        [
            ("Email/query", {"ids": ["M1"]}, "q0"),
            ("Email/get", {"state": "s", "list": [item]}, "g0"),
        ]
    )
    (email,) = query.parse_query_get(answers, "0").emails
    assert email == Email("M1", None, frozenset({"I"}), "2026-12-03T13:00:00Z")


def test_answers_are_paired_with_calls_by_call_id_not_by_order() -> None:
    answers = query.by_call_id(
        [
            ("Email/get", {"state": "s9", "list": [{"id": "M1", "mailboxIds": {"S": True}}]}, "g3"),
            ("Email/query", {"ids": ["M1"], "position": 0}, "q3"),
        ]
    )
    got = query.parse_query_get(answers, "3")
    assert got == query.EmailPage(
        QueryPage(("M1",), 0, None, None, None), (Email("M1", None, frozenset({"S"})),), "s9"
    )


def test_a_missing_answer_is_named() -> None:
    with pytest.raises(JmapError, match="lacks a response to call 'g3'"):
        query.parse_query_get(query.by_call_id([("Email/query", {"ids": []}, "q3")]), "3")


@pytest.mark.parametrize(
    ("got", "asked", "last"),
    [
        (page(0), 3, True),  # an empty page ends it, even after an exact multiple
        (page(2), 3, True),  # short of the limit asked for
        (page(3), 3, False),  # a full page: ask for the next
        (page(2, limit=2), 3, False),  # the server clamped to 2: 2 is a full page
        (page(1, limit=2), 3, True),  # ... and 1 is short of it
        (page(3, limit=9), 3, False),  # a limit above the one asked for is not believed
        (page(2, limit=9), 3, True),
    ],
)
def test_the_one_last_page_rule(got: QueryPage, asked: int, last: bool) -> None:
    assert query.is_last_page(got, asked) is last


def test_the_next_page_starts_where_the_server_put_this_one_plus_its_length() -> None:
    assert query.next_position(page(3, position=6)) == 9


def test_paging_stops_a_filter_at_its_last_page_and_caps_a_filter_that_never_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(query, "MAX_PAGES", 2)
    paging = query.Paging([{"inMailbox": "A"}, {"inMailbox": "B"}])
    assert paging.pending == [0, 1]
    paging.took(0, query.EmailPage(page(1), (), "s1"), 3)
    paging.took(1, query.EmailPage(page(3), (), "s1"), 3)
    assert paging.pending == [1]
    assert paging.calls(1, "acct", 3)[0][1]["position"] == 3
    with pytest.raises(JmapError, match="2 full pages for Email/query"):
        paging.took(1, query.EmailPage(page(3, position=3), (), "s2"), 3)
