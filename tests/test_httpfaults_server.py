"""The JMAP and CardDAV clients against a hostile server (tests/faultserver.py): a
trickling answer ends at the request's deadline, an oversized one at the size cap.

Each test states the bound as what it costs: one request, and how many bytes the
server managed to send. The time bound is the test's timeout: a client that waited
for the server would hang there (the stalled servers send nothing more for 10 minutes).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailroom.carddav.client import CardDavClient
from mailroom.errors import ResponseTooLarge, ServerTooSlow, TransportError
from mailroom.httpbounds import MIB, HttpLimits, new_client
from mailroom.httpfaults import send
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Session
from mailroom_dev.faultserver import TOKEN, Answer, AnswerServer

SHORT = HttpLimits(connect=5, read=10, deadline=1.0, max_body=1 * MIB)
STALLED = 600.0  # seconds between bytes: far beyond any timeout of these tests
HUGE = 256 * MIB

Call = Callable[[AnswerServer, HttpLimits], object]


def jmap_session(server: AnswerServer, limits: HttpLimits) -> Session:
    with JmapClient(server.url("/jmap/session"), TOKEN, limits=limits) as client:
        return client.session


def jmap_call(server: AnswerServer, limits: HttpLimits) -> object:
    with JmapClient(server.url("/jmap/session"), TOKEN, limits=limits) as client:
        return client.get_mailboxes()


def carddav_report(server: AnswerServer, limits: HttpLimits) -> object:
    with CardDavClient(server.url("/dav/book/"), "u", "p", limits=limits) as client:
        return client.find_by_email("ann@example.com")


CALLS: dict[str, tuple[str, Call]] = {
    "jmap-session": ("/jmap/session", jmap_session),
    "jmap-api": ("/jmap/api", jmap_call),
    "carddav-propfind": ("/dav/book/", carddav_report),
}


def run_against(
    answer: Answer, which: str, limits: HttpLimits = SHORT
) -> tuple[AnswerServer, BaseException]:
    path, call = CALLS[which]
    with AnswerServer({path: answer}) as server:
        with pytest.raises(TransportError) as caught:
            call(server, limits)
        server.wait_idle()
    return server, caught.value


@pytest.mark.timeout(30)
@pytest.mark.parametrize("which", sorted(CALLS))
def test_a_body_trickling_faster_than_the_read_timeout_ends_at_the_deadline(which: str) -> None:
    # one byte every 50 ms: no read ever waits 10 s, so only the total deadline ends it
    answer = Answer(size=10_000, trickle=0.05)
    server, error = run_against(answer, which)
    assert isinstance(error, ServerTooSlow)
    assert error.deadline == 1.0
    assert "did not finish its answer within 1 s" in str(error)
    assert isinstance(error, TransportError)  # retried next pass like any transport fault
    assert server.requests == 1
    assert server.sent < 1_000  # of 10,000 body bytes: it stopped reading


@pytest.mark.timeout(30)
@pytest.mark.parametrize("which", sorted(CALLS))
def test_a_read_blocked_past_the_deadline_is_cut_at_the_deadline(which: str) -> None:
    # the first byte of the status line, then nothing for 10 minutes; reads may wait
    # 120 s, so only the deadline cutting the blocked read ends it within the test timeout
    answer = Answer(size=10, trickle=STALLED, trickle_head=True)
    limits = HttpLimits(read=120, deadline=1.0)
    server, error = run_against(answer, which, limits)
    assert isinstance(error, ServerTooSlow)
    assert server.requests == 1
    assert server.sent == 1


@pytest.mark.timeout(30)
def test_a_silent_server_ends_at_the_read_timeout_as_before() -> None:
    answer = Answer(size=10, trickle=STALLED, trickle_head=True)
    limits = HttpLimits(read=0.5, deadline=20)
    _, error = run_against(answer, "jmap-session", limits)
    assert not isinstance(error, ServerTooSlow)
    assert "timed out: ReadTimeout" in str(error)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("which", sorted(CALLS))
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_an_oversized_answer_is_an_error_after_at_most_the_cap(which: str, declared: bool) -> None:
    answer = Answer(size=HUGE, declare_length=declared)
    limits = HttpLimits(deadline=30, max_body=1 * MIB)
    server, error = run_against(answer, which, limits)
    assert isinstance(error, ResponseTooLarge)
    assert error.limit == 1 * MIB
    assert "sent an answer over 1 MiB" in str(error)
    assert server.requests == 1
    # what the socket buffers took before the client closed, far short of the 256 MiB
    assert server.sent < 32 * MIB


@pytest.mark.timeout(30)
def test_an_answer_within_the_bounds_is_read_whole() -> None:
    with AnswerServer({}) as server:
        session = jmap_session(server, SHORT)
    assert session.api_url == server.url("/jmap/api")
    assert session.account_id == "acct1"


@pytest.mark.timeout(30)
def test_the_client_still_works_after_a_request_ran_out_of_time_or_room() -> None:
    answers = {
        "/slow": Answer(size=100, trickle=0.05),
        "/huge": Answer(size=HUGE, declare_length=False),
    }
    with AnswerServer(answers) as server, new_client(SHORT) as http:
        with pytest.raises(ServerTooSlow):
            send(http, "JMAP", "GET", server.url("/slow"), limits=SHORT)
        with pytest.raises(ResponseTooLarge):
            send(http, "JMAP", "GET", server.url("/huge"), limits=SHORT)
        response = send(http, "JMAP", "GET", server.url("/jmap/session"), limits=SHORT)
        assert response.json()["apiUrl"] == "/jmap/api"
        server.wait_idle()
    assert server.requests == 2
