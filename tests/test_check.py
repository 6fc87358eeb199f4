"""`mailroom check`: the verdicts, the EventSource probe (fake transport) and the report."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mailroom.categories import category
from mailroom.config import Settings
from mailroom.errors import AuthError, ServerTooSlow, TransportError
from mailroom.httpbounds import HttpLimits
from mailroom.jmap.models import Mailbox, Session
from mailroom.ops.check import (
    Finding,
    check_push,
    group_findings,
    mailbox_findings,
    probe_event_source,
    push_finding,
    report,
)
from mailroom.procsettings import process_settings
from mailroom.redaction import Secret
from mailroom_dev.faultserver import Answer, AnswerServer

FIX = "run `mailroom setup --apply`"
ONE = Settings(categories=(category("Feed"),), warnings_enabled=False)
SIGNED_IN = Settings(
    categories=(category("Feed"),),
    process=process_settings({"jmap_token": Secret("tok-push")}),
    carddav_username="u",
    carddav_password="pw",
)
INBOX = Mailbox("in", "Inbox", None, "inbox")


def boxes(*names: str) -> list[Mailbox]:
    return [INBOX, *(Mailbox(f"id-{n}", n, None, None) for n in names)]


def session(event_source_url: str | None) -> Session:
    return Session(
        session_url="http://127.0.0.1:1/jmap/",
        api_url="http://127.0.0.1:1/jmap/",
        event_source_url=event_source_url,
        upload_url=None,
        account_id="a",
        max_objects_in_get=500,
        max_objects_in_set=500,
        max_calls_in_request=16,
    )


def test_every_missing_mailbox_is_one_line_with_the_fix() -> None:
    assert mailbox_findings(ONE, boxes("Feed")) == [
        Finding("problem", f"mailbox 'Screener' (the Screener) is missing: {FIX}"),
        Finding("problem", f"mailbox '@ToFeed' (triage label of Feed) is missing: {FIX}"),
        Finding("problem", f"mailbox '@MailroomError' (error label) is missing: {FIX}"),
    ]


def test_all_mailboxes_present_is_one_ok_line() -> None:
    found = mailbox_findings(ONE, boxes("Screener", "Feed", "@ToFeed", "@MailroomError"))
    assert found == [Finding("ok", "mailboxes: all 4 exist")]


def test_an_ambiguous_name_and_a_missing_inbox_are_problems() -> None:
    mailboxes = [
        Mailbox("a", "Archive", None, None),
        Mailbox("f1", "Feed", None, None),
        Mailbox("f2", "Feed", "a", None),
        *boxes("Screener", "@ToFeed", "@MailroomError")[1:],
    ]
    found = mailbox_findings(ONE, mailboxes)
    assert [f.level for f in found] == ["problem", "problem"]
    assert "more than one mailbox is called 'Feed'" in found[0].text
    assert found[1].text == "the account has no Inbox (no mailbox with role inbox)"


def test_missing_groups_are_named_and_present_ones_are_not() -> None:
    assert group_findings(ONE, ["Feed", "Other"]) == [
        Finding("problem", f"contact group 'Mailroom' (provenance group) is missing: {FIX}")
    ]
    assert group_findings(ONE, ["Feed", "Mailroom"]) == [
        Finding("ok", "contact groups: all 2 exist")
    ]


def test_push_verdicts() -> None:
    assert push_finding(200, 60).level == "ok"
    assert push_finding(204, 60) == Finding(
        "warning", "push unavailable (EventSource HTTP 204): polling every 60 s carries triage"
    )
    assert push_finding(None, 12.5) == Finding(
        "warning",
        "push unavailable (the server offers no EventSource): polling every 12.5 s carries triage",
    )


def test_probe_sends_the_token_and_asks_for_an_event_stream() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    status = probe_event_source("http://es/x", "tok", transport=httpx.MockTransport(answer))
    assert status == 204
    assert seen[0].headers["Accept"] == "text/event-stream"
    assert seen[0].headers["Authorization"] == "Bearer tok"


def test_probe_reads_only_the_head_of_a_stream() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b": ping\n\n"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    assert probe_event_source("http://es/x", "t", transport=httpx.MockTransport(answer)) == 200


def test_probe_translates_refusal_and_unreachable() -> None:
    with pytest.raises(AuthError):
        probe_event_source(
            "http://es/x", "t", transport=httpx.MockTransport(lambda r: httpx.Response(401))
        )

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransportError, match="cannot reach the EventSource server"):
        probe_event_source("http://es/x", "t", transport=httpx.MockTransport(down))


def test_check_push_expands_the_template_to_return_quickly() -> None:
    urls: list[str] = []

    tokens: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        tokens.append(request.headers["Authorization"])
        return httpx.Response(200)

    template = "http://127.0.0.1:1/es/?types={types}&closeafter={closeafter}&ping={ping}"
    finding = check_push(SIGNED_IN, session(template), transport=httpx.MockTransport(answer))
    assert finding.level == "ok"
    assert urls == ["http://127.0.0.1:1/es/?types=Email&closeafter=state&ping=0"]
    assert tokens == ["Bearer tok-push"]
    assert check_push(SIGNED_IN, session(None)).level == "warning"


def test_probe_ends_a_trickling_head_at_its_deadline() -> None:
    """A server sending its status line a byte a second: ServerTooSlow at the deadline,
    not one read timeout per byte (the answer would take a minute)."""
    short = HttpLimits(connect=2.0, read=2.0, deadline=1.5)
    with AnswerServer({"/es": Answer(size=64, trickle=1.0, trickle_head=True)}) as server:
        with pytest.raises(ServerTooSlow, match=r"within 1\.5 s"):
            probe_event_source(server.url("/es"), "t", limits=short)
        server.wait_idle()


def test_report_counts_problems_and_passes_with_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert report([Finding("ok", "a"), Finding("warning", "w")]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok: a", "warning: w", "all good (1 warning)"]
    assert report([Finding("ok", "a")]) == 0
    assert capsys.readouterr().out.splitlines() == ["ok: a", "all good"]
    assert report([Finding("problem", "p"), Finding("problem", "q")]) == 1
    assert capsys.readouterr().out.splitlines() == ["problem: p", "problem: q", "2 problems found"]
