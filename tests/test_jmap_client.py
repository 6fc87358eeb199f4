"""JmapClient against a fake JMAP server at the HTTP transport (pytest-httpx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from mailroom.errors import (
    AuthError,
    JmapError,
    JmapMethodError,
    JmapRequestError,
    JmapSetError,
    ServerError,
    TransportError,
)
from mailroom.httpfaults import parse_retry_after
from mailroom.jmap import query
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import (
    Address,
    Email,
    EmailPatch,
    Mailbox,
    MailboxesSeen,
    SetResult,
    WholeMailboxes,
)

TOKEN = "tok-very-secret-123"
SESSION_URL = "http://jmap.test/jmap/"
API_URL = "http://jmap.test/jmap/"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]


def session_doc(*, max_get: int = 3, max_set: int = 2) -> dict[str, Any]:
    """A Cyrus-style session: relative URLs, small limits so chunking shows."""
    return {
        "apiUrl": "/jmap/",
        "uploadUrl": "/jmap/upload/{accountId}/",
        "eventSourceUrl": "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
        "capabilities": {
            "urn:ietf:params:jmap:core": {
                "maxObjectsInGet": max_get,
                "maxObjectsInSet": max_set,
                "maxCallsInRequest": 50,
            }
        },
        "primaryAccounts": {"urn:ietf:params:jmap:mail": "acct"},
    }


def answer(*responses: list[Any]) -> httpx.Response:
    return httpx.Response(200, json={"methodResponses": list(responses), "sessionState": "0"})


def sent_calls(request: httpx.Request) -> list[list[Any]]:
    body = json.loads(request.content)
    assert body["using"] == USING
    calls: list[list[Any]] = body["methodCalls"]
    return calls


class FakeQueries:
    """Email/query (+ Email/get by back-reference) over lists of ids; may clamp `limit`.

    ``ids`` answers every filter; ``by_mailbox`` answers ``{"inMailbox": m}`` by ``m``.
    With ``endless`` every page is full, for ever (a broken server).
    """

    def __init__(
        self,
        ids: list[str] | None = None,
        *,
        by_mailbox: dict[str, list[str]] | None = None,
        clamp: int | None = None,
        total: int | None = None,
        endless: bool = False,
    ):
        self.ids = ids or []
        self.by_mailbox = by_mailbox
        self.clamp = clamp
        self.total = total
        self.endless = endless
        self.positions: list[int] = []
        self.requests = 0

    def _ids(self, query: dict[str, Any]) -> list[str]:
        if self.by_mailbox is None:
            return self.ids
        return self.by_mailbox[query["filter"]["inMailbox"]]

    def _page(self, query: dict[str, Any], call_id: str) -> list[Any]:
        position, limit = query["position"], query["limit"]
        self.positions.append(position)
        used = min(limit, self.clamp) if self.clamp else limit
        if self.endless:
            page = [f"E{position + i}" for i in range(used)]
        else:
            page = self._ids(query)[position : position + used]
        args: dict[str, Any] = {"accountId": "acct", "position": position, "ids": page}
        args["queryState"] = "qs"
        if self.clamp:
            args["limit"] = used
        if self.total is not None:
            args["total"] = self.total
        return ["Email/query", args, call_id]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        pages: dict[str, list[str]] = {}
        responses = []
        for name, args, call_id in sent_calls(request):
            if name == "Email/query":
                responses.append(self._page(args, call_id))
                pages[call_id] = responses[-1][1]["ids"]
            elif name == "Email/get":
                ref = args["#ids"]
                assert (ref["name"], ref["path"]) == ("Email/query", "/ids")
                listed = [
                    {"id": i, "from": None, "mailboxIds": {"mb": True}}
                    for i in pages[ref["resultOf"]]
                ]
                state = f"s{self.requests}"
                get = {"state": state, "list": listed, "notFound": []}
                responses.append(["Email/get", get, call_id])
            else:
                mailboxes = {"state": "m1", "list": [{"id": "mb", "name": "Screener"}]}
                responses.append(["Mailbox/get", mailboxes, call_id])
        return answer(*responses)


@pytest.fixture
def client() -> Iterator[JmapClient]:
    with JmapClient(SESSION_URL, TOKEN) as c:
        yield c


@pytest.fixture
def with_session(httpx_mock: HTTPXMock) -> HTTPXMock:
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=session_doc())
    return httpx_mock


def test_session_is_fetched_once_and_every_request_carries_the_bearer_token(
    client: JmapClient, with_session: HTTPXMock
):
    with_session.add_callback(
        lambda r: answer(["Mailbox/get", {"state": "9", "list": []}, "m"]),
        method="POST",
        url=API_URL,
        is_reusable=True,
    )

    client.get_mailboxes()
    client.get_mailboxes()

    requests = with_session.get_requests()
    assert [r.method for r in requests] == ["GET", "POST", "POST"]
    assert {r.headers["Authorization"] for r in requests} == {f"Bearer {TOKEN}"}
    assert client.requests_made == 3


def test_relative_session_urls_are_resolved_after_the_well_known_redirect(
    httpx_mock: HTTPXMock,
):
    httpx_mock.add_response(
        url="http://jmap.test/.well-known/jmap",
        status_code=301,
        headers={"Location": "http://jmap.test/jmap"},
    )
    httpx_mock.add_response(url="http://jmap.test/jmap", json=session_doc())

    with JmapClient("http://jmap.test/.well-known/jmap", TOKEN) as client:
        session = client.session

    assert session.api_url == "http://jmap.test/jmap/"
    assert session.upload_url == "http://jmap.test/jmap/upload/{accountId}/"
    assert (session.account_id, session.max_objects_in_get) == ("acct", 3)
    assert client.requests_made == 2


def test_refresh_session_fetches_again(client: JmapClient, httpx_mock: HTTPXMock):
    httpx_mock.add_response(url=SESSION_URL, json=session_doc(), is_reusable=True)

    first = client.session
    second = client.refresh_session()

    assert first == second
    assert client.requests_made == 2


def test_call_sends_one_post_with_core_and_mail(client: JmapClient, with_session: HTTPXMock):
    with_session.add_response(
        method="POST",
        url=API_URL,
        json={"methodResponses": [["Mailbox/get", {"state": "1", "list": []}, "a"]]},
    )

    answers = client.call([("Mailbox/get", {"accountId": "acct", "ids": None}, "a")])

    body = json.loads(with_session.get_requests(method="POST")[0].content)
    assert body == {
        "using": USING,
        "methodCalls": [["Mailbox/get", {"accountId": "acct", "ids": None}, "a"]],
    }
    assert answers == [("Mailbox/get", {"state": "1", "list": []}, "a")]


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_raise_auth_error_with_a_hint_and_no_token(
    client: JmapClient, httpx_mock: HTTPXMock, status: int
):
    httpx_mock.add_response(url=SESSION_URL, status_code=status)

    with pytest.raises(AuthError) as info:
        _ = client.session

    assert info.value.status == status
    assert "MAILROOM_JMAP_TOKEN" in str(info.value)
    assert "API token with Mail access" in str(info.value)
    assert "\n" not in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_carries_retry_after(client: JmapClient, with_session: HTTPXMock, status: int):
    with_session.add_response(
        method="POST", url=API_URL, status_code=status, headers={"Retry-After": "7"}
    )

    with pytest.raises(ServerError) as info:
        client.get_mailboxes()

    assert (info.value.status, info.value.retry_after) == (status, 7.0)


def test_too_many_requests_without_retry_after(client: JmapClient, with_session: HTTPXMock):
    with_session.add_response(method="POST", url=API_URL, status_code=429)

    with pytest.raises(ServerError) as info:
        client.get_mailboxes()

    assert (info.value.status, info.value.retry_after) == (429, None)


def test_retry_after_as_an_http_date_counts_from_now():
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sun, 22 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None


def test_connect_error_raises_transport_error(client: JmapClient, httpx_mock: HTTPXMock):
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"), url=SESSION_URL)

    with pytest.raises(TransportError) as info:
        _ = client.session

    assert info.value.url == SESSION_URL
    assert "Connection refused" in str(info.value)
    assert TOKEN not in str(info.value)


def test_timeout_raises_transport_error(client: JmapClient, with_session: HTTPXMock):
    with_session.add_exception(httpx.ReadTimeout("read timed out"), url=API_URL)

    with pytest.raises(TransportError, match="timed out"):
        client.get_mailboxes()


def test_request_level_problem_raises_request_error(client: JmapClient, with_session: HTTPXMock):
    problem = {
        "type": "urn:ietf:params:jmap:error:unknownCapability",
        "status": 400,
        "detail": "unknown capability",
    }
    with_session.add_response(method="POST", url=API_URL, status_code=400, json=problem)

    with pytest.raises(JmapRequestError) as info:
        client.get_mailboxes()

    assert info.value.status == 400
    assert info.value.problem_type == "urn:ietf:params:jmap:error:unknownCapability"


def test_an_answer_that_is_not_json_is_a_jmap_error(client: JmapClient, with_session: HTTPXMock):
    with_session.add_response(method="POST", url=API_URL, text="<html>hello</html>")

    with pytest.raises(JmapError, match="without JSON"):
        client.get_mailboxes()


def test_method_error_names_the_method_it_answers(client: JmapClient, with_session: HTTPXMock):
    error = {"type": "invalidArguments", "arguments": ["filter/inMailbox"]}
    with_session.add_response(
        method="POST",
        url=API_URL,
        json={"methodResponses": [["error", error, "q0"], ["error", error, "g0"]]},
    )

    with pytest.raises(JmapMethodError) as info:
        client.query_emails({"inMailbox": "nope"})

    assert (info.value.method, info.value.error_type) == ("Email/query", "invalidArguments")


def test_query_ids_pages_until_a_short_page(client: JmapClient, with_session: HTTPXMock):
    fake = FakeQueries([f"M{i}" for i in range(7)], total=1)  # a wrong total is ignored
    with_session.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    ids = client.query_ids({"inMailbox": "mb"})

    assert ids == [f"M{i}" for i in range(7)]
    assert fake.positions == [0, 3, 6]


def test_query_ids_ends_on_an_empty_page_after_an_exact_multiple(
    client: JmapClient, with_session: HTTPXMock
):
    fake = FakeQueries([f"M{i}" for i in range(6)])
    with_session.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    assert len(client.query_ids({})) == 6
    assert fake.positions == [0, 3, 6]


def test_a_clamped_limit_keeps_paging_by_the_ids_received(
    client: JmapClient, with_session: HTTPXMock
):
    fake = FakeQueries([f"M{i}" for i in range(5)], clamp=2)
    with_session.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    emails, state = client.query_emails({"inMailbox": "mb"})

    assert [e.id for e in emails] == [f"M{i}" for i in range(5)]
    assert fake.positions == [0, 2, 4]
    assert state == "s1"  # the state of the first page
    assert client.requests_made == 1 + 3


def test_query_emails_is_one_post_per_page_with_a_back_reference(
    client: JmapClient, with_session: HTTPXMock
):
    fake = FakeQueries(["Ma", "Mb"])
    with_session.add_callback(fake, method="POST", url=API_URL)

    emails, state = client.query_emails({"inMailbox": "mb"})

    calls = sent_calls(with_session.get_requests(method="POST")[0])
    # the wire form of the pair is pinned in tests/test_jmap_query.py
    pair = query.query_get("acct", {"inMailbox": "mb"}, position=0, limit=3, tag="0")
    assert calls == [list(call) for call in pair]
    assert emails == [Email("Ma", None, frozenset({"mb"})), Email("Mb", None, frozenset({"mb"}))]
    assert state == "s1"


def test_page_size_overrides_the_session_limit(httpx_mock: HTTPXMock):
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=session_doc())
    fake = FakeQueries([f"M{i}" for i in range(3)])
    httpx_mock.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    with JmapClient(SESSION_URL, TOKEN, page_size=1) as client:
        assert client.query_ids({}) == ["M0", "M1", "M2"]

    assert fake.positions == [0, 1, 2, 3]


def test_get_emails_chunks_by_max_objects_in_get(client: JmapClient, with_session: HTTPXMock):
    def email_get(request: httpx.Request) -> httpx.Response:
        ids = sent_calls(request)[0][1]["ids"]
        listed = [
            {"id": i, "from": [{"name": "A", "email": "a@x.org"}], "mailboxIds": {}} for i in ids
        ]
        return answer(["Email/get", {"state": "5", "list": listed}, "g"])

    with_session.add_callback(email_get, method="POST", url=API_URL, is_reusable=True)

    emails = client.get_emails(["M1", "M2", "M3", "M4"])

    assert [e.id for e in emails] == ["M1", "M2", "M3", "M4"]
    assert emails[0].sender == Address("a@x.org", "A")
    chunks = [sent_calls(r)[0][1]["ids"] for r in with_session.get_requests(method="POST")]
    assert chunks == [["M1", "M2", "M3"], ["M4"]]


def test_update_emails_chunks_by_max_objects_in_set_and_reads_null_maps(
    client: JmapClient, with_session: HTTPXMock
):
    states = iter(range(10, 20))

    def email_set(request: httpx.Request) -> httpx.Response:
        update = sent_calls(request)[0][1]["update"]
        old = next(states)
        args = {
            "oldState": str(old),
            "newState": str(old + 1),
            "created": None,
            "updated": dict.fromkeys(update),
            "destroyed": None,
            "notCreated": None,
            "notUpdated": None,
            "notDestroyed": None,
        }
        return answer(["Email/set", args, "s"])

    with_session.add_callback(email_set, method="POST", url=API_URL, is_reusable=True)
    patch = EmailPatch(add=frozenset({"a"}), remove=frozenset({"b"}))

    results = client.update_emails({f"M{i}": patch for i in range(5)})

    assert results == [
        SetResult("10", "11", {}),
        SetResult("11", "12", {}),
        SetResult("12", "13", {}),
    ]
    chunks = [sent_calls(r)[0][1]["update"] for r in with_session.get_requests(method="POST")]
    assert [list(c) for c in chunks] == [["M0", "M1"], ["M2", "M3"], ["M4"]]
    assert chunks[0]["M0"] == {"mailboxIds/a": True, "mailboxIds/b": None}


def test_the_client_hands_over_each_email_set_answer_once(
    client: JmapClient, with_session: HTTPXMock
):
    states = iter(range(10, 20))

    def email_set(request: httpx.Request) -> httpx.Response:
        old = next(states)
        args = {"oldState": str(old), "newState": str(old + 1), "updated": None}
        return answer(["Email/set", args, "s"])

    with_session.add_callback(email_set, method="POST", url=API_URL, is_reusable=True)
    patch = EmailPatch(add=frozenset({"a"}))
    client.update_emails({f"M{i}": patch for i in range(5)})  # three chunks of two

    assert client.take_writes() == (
        SetResult("10", "11", {}),
        SetResult("11", "12", {}),
        SetResult("12", "13", {}),
    )
    assert client.take_writes() == ()
    client.update_emails({"M9": patch})
    assert client.take_writes() == (SetResult("13", "14", {}),)


def test_any_not_updated_raises_set_error(client: JmapClient, with_session: HTTPXMock):
    args = {
        "oldState": "1",
        "newState": "2",
        "updated": {"Ma": None},
        "notUpdated": {"Mzz": {"type": "notFound"}},
    }
    with_session.add_response(
        method="POST", url=API_URL, json={"methodResponses": [["Email/set", args, "s"]]}
    )

    seen = EmailPatch(set_keywords=frozenset({"$seen"}))
    with pytest.raises(JmapSetError) as info:
        client.update_emails({"Ma": seen, "Mzz": seen})

    assert info.value.failures == {"Mzz": {"type": "notFound"}}


def test_update_or_get_nothing_sends_nothing(client: JmapClient, httpx_mock: HTTPXMock):
    assert client.update_emails({}) == []
    assert client.get_emails([]) == []
    assert client.requests_made == 0


def test_get_and_create_mailboxes(client: JmapClient, with_session: HTTPXMock):
    with_session.add_response(
        method="POST",
        url=API_URL,
        json={
            "methodResponses": [
                [
                    "Mailbox/get",
                    {
                        "state": "4",
                        "list": [{"id": "i", "name": "Inbox", "parentId": None, "role": "inbox"}],
                    },
                    "m",
                ]
            ]
        },
    )
    with_session.add_response(
        method="POST",
        url=API_URL,
        json={
            "methodResponses": [
                [
                    "Mailbox/set",
                    {
                        "oldState": "4",
                        "newState": "5",
                        "created": {"c": {"id": "new1"}},
                        "notCreated": None,
                    },
                    "c",
                ]
            ]
        },
    )

    assert client.get_mailboxes() == ([Mailbox("i", "Inbox", None, "inbox")], "4")
    assert client.create_mailbox("Screener", parent_id="i") == "new1"

    create = sent_calls(with_session.get_requests(method="POST")[1])[0]
    assert create == [
        "Mailbox/set",
        {"accountId": "acct", "create": {"c": {"name": "Screener", "parentId": "i"}}},
        "c",
    ]


def test_import_email_uploads_then_imports(client: JmapClient, with_session: HTTPXMock):
    upload_url = "http://jmap.test/jmap/upload/acct/"
    with_session.add_response(
        method="POST", url=upload_url, status_code=201, json={"blobId": "G1", "size": 5}
    )
    with_session.add_response(
        method="POST",
        url=API_URL,
        json={
            "methodResponses": [
                [
                    "Email/import",
                    {
                        "created": {"e": {"id": "M9", "blobId": "G1"}},
                        "notCreated": {},
                    },
                    "i",
                ]
            ]
        },
    )

    email_id = client.import_email(b"raw\r\n", ["mb1"], keywords={"$seen": True})

    upload, imp = with_session.get_requests(method="POST")
    assert (upload.content, upload.headers["Content-Type"]) == (b"raw\r\n", "message/rfc822")
    assert sent_calls(imp) == [
        [
            "Email/import",
            {
                "accountId": "acct",
                "emails": {
                    "e": {"blobId": "G1", "mailboxIds": {"mb1": True}, "keywords": {"$seen": True}}
                },
            },
            "i",
        ]
    ]
    assert email_id == "M9"
    assert client.requests_made == 3


def test_repr_does_not_show_the_token(client: JmapClient):
    assert TOKEN not in repr(client)
    assert SESSION_URL in repr(client)


def test_many_filters_go_out_together_batched_by_max_calls_in_request(httpx_mock: HTTPXMock):
    doc = session_doc()
    doc["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"] = 5
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=doc)
    fake = FakeQueries(by_mailbox={"a": ["A1"], "b": ["B1", "B2", "B3", "B4"], "c": []})
    httpx_mock.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    with JmapClient(SESSION_URL, TOKEN) as client:
        filters = [{"inMailbox": "a"}, {"inMailbox": "b"}, {"inMailbox": "c"}]
        results, boxes = client.query_emails_many(filters, with_mailboxes=True)

    assert [[e.id for e in r.emails] for r in results] == [["A1"], ["B1", "B2", "B3", "B4"], []]
    assert [r.state for r in results] == ["s1", "s1", "s2"]
    assert boxes == [Mailbox("mb", "Screener", None, None)]
    sent = [sent_calls(r) for r in httpx_mock.get_requests(method="POST")]
    # (5 - 1 for the Mailbox/get) // 2 = 2 pairs a request; then b's second page alone
    assert [[c[2] for c in calls] for calls in sent] == [
        ["m", "q0", "g0", "q1", "g1"],
        ["q2", "g2"],
        ["q1", "g1"],
    ]
    assert sent[0][0] == [
        "Mailbox/get",
        {"accountId": "acct", "ids": None, "properties": ["id", "name", "parentId", "role"]},
        "m",
    ]
    assert sent[2][0][1]["position"] == 3
    assert sent[2][1][1]["#ids"] == {"resultOf": "q1", "name": "Email/query", "path": "/ids"}


def test_the_mailboxes_read_along_keep_their_state_for_the_filing_guard(httpx_mock: HTTPXMock):
    httpx_mock.add_response(method="GET", url=SESSION_URL, json=session_doc())
    fake = FakeQueries(by_mailbox={"a": ["A1"]})
    httpx_mock.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    with JmapClient(SESSION_URL, TOKEN) as client:
        found = client.scan_emails([{"inMailbox": "a"}], with_mailboxes=True)
        without = client.scan_emails([{"inMailbox": "a"}])

    assert (found.mailbox_state, found.seen) == ("m1", MailboxesSeen("m1", frozenset({"mb"})))
    assert (without.mailboxes, without.seen) == (None, None)


def test_a_server_that_never_ends_a_page_sequence_is_an_error_not_a_loop(
    client: JmapClient, with_session: HTTPXMock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("mailroom.jmap.query.MAX_PAGES", 4)
    fake = FakeQueries(endless=True)
    with_session.add_callback(fake, method="POST", url=API_URL, is_reusable=True)

    with pytest.raises(JmapError, match="4 full pages") as info:
        client.query_emails({"inMailbox": "mb"})
    assert "never a last one" in str(info.value)
    assert fake.positions == [0, 3, 6, 9]

    with pytest.raises(JmapError, match="4 full pages"):
        client.query_ids({"inMailbox": "mb"})
    assert fake.positions[4:] == [0, 3, 6, 9]


def test_update_emails_guarded_by_a_state_chains_each_chunk_to_the_state_before(
    client: JmapClient, with_session: HTTPXMock
):
    states = iter(range(20, 30))

    def email_set(request: httpx.Request) -> httpx.Response:
        old = next(states)
        args = {"oldState": str(old), "newState": str(old + 1), "updated": None}
        return answer(["Email/set", args, "s"])

    with_session.add_callback(email_set, method="POST", url=API_URL, is_reusable=True)
    whole = WholeMailboxes(frozenset({"a"}))
    wire = {"mailboxIds": {"a": True}}

    client.update_emails({f"M{i}": whole for i in range(3)}, if_in_state="20")

    sent = [sent_calls(r)[0] for r in with_session.get_requests(method="POST")]
    assert sent[0] == [
        "Email/set",
        {"accountId": "acct", "ifInState": "20", "update": {"M0": wire, "M1": wire}},
        "s",
    ]
    assert sent[1][1]["ifInState"] == "21"  # the state the first chunk left


def test_a_state_mismatch_is_a_method_error(client: JmapClient, with_session: HTTPXMock):
    with_session.add_response(
        method="POST",
        url=API_URL,
        json={"methodResponses": [["error", {"type": "stateMismatch"}, "s"]]},
    )
    with pytest.raises(JmapMethodError) as info:
        client.update_emails({"M0": WholeMailboxes(frozenset({"a"}))}, if_in_state="1")
    assert (info.value.method, info.value.error_type) == ("Email/set", "stateMismatch")


def test_a_guarded_update_sends_the_guard_the_set_and_the_mailboxes_in_one_request(
    client: JmapClient, with_session: HTTPXMock
):
    def guarded(request: httpx.Request) -> httpx.Response:
        return answer(
            ["error", {"type": "stateMismatch"}, "ms"],
            ["error", {"type": "resultReference"}, "s"],
            ["Mailbox/get", {"state": "42", "list": [], "notFound": ["F"]}, "mb"],
        )

    with_session.add_callback(guarded, method="POST", url=API_URL)

    result = client.guarded_update(
        {"M1": EmailPatch(add=frozenset({"F"}))}, mailboxes=["F"], mailbox_state="41"
    )

    (request,) = with_session.get_requests(method="POST")
    assert [c[0] for c in sent_calls(request)] == ["Mailbox/set", "Email/set", "Mailbox/get"]
    assert sent_calls(request)[1][1]["#accountId"]["resultOf"] == "ms"
    assert (result.result, result.present, result.mailbox_state) == (None, frozenset(), "42")
