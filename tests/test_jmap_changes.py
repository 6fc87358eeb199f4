"""New mail over JMAP: the Email/changes and Identity/get pairs against exact JSON, the
changes riding along with the label scan in one request, and the answers a real server
will not give on demand (cannotCalculateChanges, hasMoreChanges) faked at the transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from test_jmap_client import API_URL, SESSION_URL, answer, sent_calls, session_doc

from mailroom.errors import JmapMethodError
from mailroom.jmap import methods, query
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Address, Changes, Email


def test_email_changes_asks_for_at_most_max_changes_since_a_state() -> None:
    assert methods.email_changes("acct", "s41", max_changes=500) == (
        "Email/changes",
        {"accountId": "acct", "sinceState": "s41", "maxChanges": 500},
        "c",
    )


def test_parse_email_changes_keeps_the_created_ids_and_cyrus_nulls_are_empty() -> None:
    got = methods.parse_email_changes(
        {
            "accountId": "acct",
            "oldState": "41",
            "newState": "44",
            "hasMoreChanges": True,
            "created": ["Ma", "Mb"],
            "updated": ["Mc"],
            "destroyed": None,
        }
    )
    assert got == Changes("41", "44", True, ("Ma", "Mb"))
    quiet = {"oldState": "44", "newState": "44", "created": None}
    assert methods.parse_email_changes(quiet) == Changes("44", "44", False, ())


def test_identity_get_and_its_addresses() -> None:
    assert methods.identity_get("acct") == ("Identity/get", {"accountId": "acct", "ids": None}, "i")
    listed = {"list": [{"id": "I1", "email": "me@x.com"}, {"id": "I2", "email": ""}], "state": "1"}
    assert methods.parse_identity_get(listed) == ["me@x.com"]


def test_changes_get_reads_the_created_ids_by_back_reference_with_their_arrival() -> None:
    assert query.changes_get("acct", "s41", max_changes=500) == [
        (
            "Email/changes",
            {"accountId": "acct", "sinceState": "s41", "maxChanges": 500},
            "ca",
        ),
        (
            "Email/get",
            {
                "accountId": "acct",
                "#ids": {"resultOf": "ca", "name": "Email/changes", "path": "/created"},
                "properties": ["from", "mailboxIds", "receivedAt"],
            },
            "da",
        ),
    ]


def test_parse_changes_get_reads_the_new_emails() -> None:
    answers = query.by_call_id(
        [
            ("Email/changes", {"oldState": "41", "newState": "42", "created": ["Ma"]}, "ca"),
            (
                "Email/get",
                {
                    "state": "42",
                    "list": [
                        {
                            "id": "Ma",
                            "from": [{"email": "Bob@X.com", "name": "Bob"}],
                            "mailboxIds": {"inbox": True},
                            "receivedAt": "2026-12-03T10:00:00Z",
                        }
                    ],
                },
                "da",
            ),
        ]
    )
    got = query.parse_changes_get(answers)
    email = Email("Ma", Address("Bob@X.com", "Bob"), frozenset({"inbox"}), "2026-12-03T10:00:00Z")
    assert got == query.ChangedEmails(Changes("41", "42", False, ("Ma",)), (email,), "42")


@pytest.mark.parametrize("error", ["cannotCalculateChanges", "invalidArguments"])
def test_a_state_the_server_cannot_calculate_from_is_an_answer(error: str) -> None:
    answers = query.by_call_id(
        [
            ("error", {"type": error}, "ca"),
            ("error", {"type": "invalidResultReference"}, "da"),
        ]
    )
    assert query.parse_changes_get(answers) == query.ChangedEmails(None, (), "")


def test_any_other_error_of_the_changes_raises() -> None:
    answers = query.by_call_id([("error", {"type": "serverFail"}, "ca")])
    with pytest.raises(JmapMethodError, match="serverFail"):
        query.parse_changes_get(answers)


# ---------------------------------------------------------------- the client


@pytest.fixture
def client() -> Iterator[JmapClient]:
    with JmapClient(SESSION_URL, "t0ken") as c:
        yield c


def label_answers(calls: list[list[Any]]) -> list[list[Any]]:
    """The label query finds nothing; the changes answer as ``changes`` says."""
    out: list[list[Any]] = []
    for name, _args, call_id in calls:
        if name == "Email/query":
            out.append(["Email/query", {"ids": [], "position": 0}, call_id])
        elif name == "Email/get" and call_id.startswith("g"):
            out.append(["Email/get", {"state": "50", "list": []}, call_id])
    return out


def test_the_changes_ride_along_in_the_scans_one_request(
    client: JmapClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=session_doc(max_get=500))

    def reply(request: httpx.Request) -> httpx.Response:
        calls = sent_calls(request)
        changes = ["Email/changes", {"oldState": "49", "newState": "50", "created": []}, "ca"]
        return answer(
            changes, ["Email/get", {"state": "50", "list": []}, "da"], *label_answers(calls)
        )

    httpx_mock.add_callback(reply, method="POST", url=API_URL)
    found = client.scan_emails([{"inMailbox": "L"}], changes_since="49")
    (request,) = httpx_mock.get_requests(method="POST")
    calls = sent_calls(request)
    assert calls[:2] == [list(c) for c in query.changes_get("acct", "49", max_changes=500)]
    assert [c[0] for c in calls[2:]] == ["Email/query", "Email/get"]
    assert found.changed == query.ChangedEmails(Changes("49", "50", False, ()), (), "50")
    assert found.results[0].emails == ()


def test_cannot_calculate_changes_does_not_fail_the_label_scan(
    client: JmapClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=session_doc(max_get=500))

    def reply(request: httpx.Request) -> httpx.Response:
        errors = [
            ["error", {"type": "cannotCalculateChanges"}, "ca"],
            ["error", {"type": "invalidResultReference"}, "da"],
        ]
        return answer(*errors, *label_answers(sent_calls(request)))

    httpx_mock.add_callback(reply, method="POST", url=API_URL)
    found = client.scan_emails([{"inMailbox": "L"}], changes_since="1")
    assert found.changed == query.ChangedEmails(None, (), "")
    assert found.results[0].state == "50"


def test_max_changes_is_never_more_than_one_get_can_read(
    client: JmapClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=session_doc(max_get=3))
    changes = ["Email/changes", {"oldState": "1", "newState": "2", "created": []}, "ca"]
    httpx_mock.add_response(
        method="POST",
        url=API_URL,
        json={"methodResponses": [changes, ["Email/get", {"state": "2", "list": []}, "da"]]},
    )
    client.changed_emails("1")
    (request,) = httpx_mock.get_requests(method="POST")
    assert sent_calls(request)[0][1]["maxChanges"] == 3
