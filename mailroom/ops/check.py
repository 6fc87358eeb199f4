"""`mailroom check`: is everything in place for triage to run?

It checks the credentials, reaches JMAP and CardDAV with them, looks for every mailbox
and contact group ``mailroom setup`` would create, probes the EventSource, compares
the installed routing rules with the categories (a note where they are the user's) and
judges the routing by where the last week's new mail landed (``ops.routing_check``). Each
problem is one line that says what to do. Push being unavailable is a warning, not a
problem: polling carries triage without it. Exit 0 only when there is no problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx

from mailroom.carddav.client import CardDavClient
from mailroom.clients import open_clients
from mailroom.config import Settings
from mailroom.errors import ConfigError, MailroomError, ServerTooSlow, TransportError
from mailroom.httpbounds import DeadlineExceeded, HttpLimits, budget, new_client
from mailroom.jmap.client import JmapClient, raise_for_status
from mailroom.jmap.models import Mailbox, Session
from mailroom.jmap.session import expand_event_source_url
from mailroom.ops import routing_check, rules, setup
from mailroom.triage.mailboxes import find_mailbox, find_role

Level = Literal["ok", "note", "warning", "problem"]
SETUP_FIX = "run `mailroom setup --apply`"


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    text: str


def ok(text: str) -> Finding:
    return Finding("ok", text)


def problem(text: str) -> Finding:
    return Finding("problem", text)


# -- pure verdicts --------------------------------------------------------------------------


def mailbox_findings(settings: Settings, mailboxes: Sequence[Mailbox]) -> list[Finding]:
    """Missing or ambiguous mailboxes, and a missing Inbox; else one ok line."""
    found = [
        problem(f"mailbox {i.name!r} ({i.why}) is missing: {SETUP_FIX}")
        for i in setup.plan_mailboxes(settings, mailboxes)
        if i.status == "create"
    ]
    for name, _why in setup.needed_mailboxes(settings):
        try:
            find_mailbox(mailboxes, name)
        except ConfigError as exc:
            found += [problem(p) for p in exc.problems if problem(p) not in found]
    if find_role(mailboxes, "inbox") is None:
        found.append(problem("the account has no Inbox (no mailbox with role inbox)"))
    return found or [ok(f"mailboxes: all {len(setup.needed_mailboxes(settings))} exist")]


def group_findings(settings: Settings, group_names: Sequence[str]) -> list[Finding]:
    items = setup.plan_groups(settings, group_names)
    found = [
        problem(f"contact group {i.name!r} ({i.why}) is missing: {SETUP_FIX}")
        for i in items
        if i.status == "create"
    ]
    return found or [ok(f"contact groups: all {len(items)} exist")]


def push_finding(status: int | None, poll_interval: float) -> Finding:
    """200 means push works; anything else means the worker polls on its own."""
    if status == 200:
        return ok("push: the EventSource streams (HTTP 200)")
    why = "the server offers no EventSource" if status is None else f"EventSource HTTP {status}"
    return Finding(
        "warning",
        f"push unavailable ({why}): polling every {poll_interval:g} s carries triage",
    )


# -- the I/O shell ---------------------------------------------------------------------------


PROBE_LIMITS = HttpLimits(connect=10.0, read=10.0, deadline=15.0, max_body=64 * 1024)


def probe_event_source(
    url: str,
    token: str,
    *,
    transport: httpx.BaseTransport | None = None,
    limits: HttpLimits = PROBE_LIMITS,
) -> int:
    """The HTTP status of a GET on the EventSource; only the head is read, then closed.

    Held to ``limits`` like every other request: a server that trickles its head ends
    in ``ServerTooSlow`` at the deadline, not after a read timeout per byte.
    """
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {token}"}
    with new_client(limits, transport) as http, budget(limits) as spent:
        try:
            with http.stream("GET", url, headers=headers) as response:
                if response.status_code in (401, 403):
                    raise_for_status(response)
                return response.status_code
        except DeadlineExceeded as exc:
            raise ServerTooSlow("EventSource", url, limits.deadline) from exc
        except httpx.TimeoutException as exc:
            if spent.expired():
                raise ServerTooSlow("EventSource", url, limits.deadline) from exc
            raise TransportError("EventSource", url, f"timed out: {type(exc).__name__}") from exc
        except httpx.RequestError as exc:
            raise TransportError("EventSource", url, f"{type(exc).__name__}: {exc}") from exc


def check_jmap(settings: Settings, jmap: JmapClient) -> tuple[list[Finding], Session | None]:
    try:
        session = jmap.refresh_session()
        mailboxes, _state = jmap.get_mailboxes()
    except MailroomError as exc:
        return [problem(str(exc))], None
    reached = ok(f"JMAP: reached {settings.jmap_session_url} (account {session.account_id})")
    return [reached, *mailbox_findings(settings, mailboxes)], session


def check_carddav(settings: Settings, carddav: CardDavClient) -> list[Finding]:
    try:
        names = setup.group_names(carddav)
        reached = ok(f"CardDAV: reached {carddav.addressbook_url()}")
    except MailroomError as exc:
        return [problem(str(exc))]
    return [reached, *group_findings(settings, names)]


def check_push(
    settings: Settings, session: Session, *, transport: httpx.BaseTransport | None = None
) -> Finding:
    url = expand_event_source_url(session, types="Email", closeafter="state", ping=0)
    if url is None:
        return push_finding(None, settings.poll_interval)
    try:
        status = probe_event_source(url, settings.credentials().jmap_token, transport=transport)
    except MailroomError as exc:
        return Finding("warning", f"push unavailable ({exc})")
    return push_finding(status, settings.poll_interval)


def run_checks(
    settings: Settings,
    jmap: JmapClient,
    carddav: CardDavClient,
    *,
    push_transport: httpx.BaseTransport | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Every finding, in the order printed; ``now`` (default: the clock) dates the
    window of new mail the routing is judged by."""
    jmap_found, session = check_jmap(settings, jmap)
    carddav_found = check_carddav(settings, carddav)
    found = [*jmap_found, *carddav_found]
    if session is not None:
        found.append(check_push(settings, session, transport=push_transport))
        if carddav_found[0].level == "ok":  # the rules name groups: CardDAV must answer
            found.append(check_rules(settings, jmap, carddav))
            judged = routing_check.check_routing(
                settings, jmap, carddav, now=now or datetime.now(UTC)
            )
            found += [Finding(level, text) for level, text in judged]
    return found


def check_rules(settings: Settings, jmap: JmapClient, carddav: CardDavClient) -> Finding:
    """The routing rules: installed and current where the server runs Sieve; a note
    where they are the user's to make."""
    level, text = rules.check_rules(settings, jmap, carddav)
    return Finding(level, text)


def report(findings: Sequence[Finding]) -> int:
    """Print one line per finding and a verdict; the exit code."""
    for f in findings:
        print(f"{f.level}: {f.text}")
    problems = sum(1 for f in findings if f.level == "problem")
    warnings = sum(1 for f in findings if f.level == "warning")
    if problems:
        print(f"{problems} problem{'s' if problems > 1 else ''} found")
        return 1
    print(f"all good ({warnings} warning{'s' if warnings > 1 else ''})" if warnings else "all good")
    return 0


def main(settings: Settings) -> int:
    """`mailroom check`: 0 only when everything is in place (a ConfigError propagates)."""
    config = ok(f"config: {len(settings.categories)} categories")
    with open_clients(settings) as (jmap, carddav):
        return report([config, *run_checks(settings, jmap, carddav)])
