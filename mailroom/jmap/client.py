"""JmapClient: the thin I/O shell around the pure session and method modules.

One ``httpx.Client``, Bearer auth on every request, chunking by the session's limits,
paging that never trusts ``total``. httpx errors are translated here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from mailroom.errors import (
    JmapError,
    JmapMethodError,
    JmapRequestError,
)
from mailroom.httpbounds import HttpLimits, new_client
from mailroom.httpfaults import common_fault, send
from mailroom.jmap import methods as m
from mailroom.jmap import query as q
from mailroom.jmap.models import (
    Email,
    EmailUpdate,
    GuardedSet,
    Mailbox,
    MailboxesSeen,
    Session,
    SetResult,
)
from mailroom.jmap.session import (
    CORE,
    MAIL,
    expand_download_url,
    expand_upload_url,
    parse_session,
)

SERVICE = "JMAP"
AUTH_HINT = (
    "check MAILROOM_JMAP_TOKEN; on Fastmail, create an API token with Mail access "
    "(Settings > Privacy & Security > API tokens)"
)
JMAP_LIMITS = HttpLimits()  # 60 s per request, 32 MiB per answer (docs/decisions.md)
MAX_CHANGES = 500  # new emails judged per round: a flood is read in batches this size


@dataclass(frozen=True, slots=True)
class ScanAnswer:
    """What ``scan_emails`` read: per filter, the mailboxes and the new mail if asked."""

    results: list[q.EmailQueryResult]
    mailboxes: list[Mailbox] | None
    changed: q.ChangedEmails | None
    mailbox_state: str | None = None  # the Mailbox state ``mailboxes`` were read in

    @property
    def seen(self) -> MailboxesSeen | None:
        """The mailboxes read along and their state, for the filing's guard."""
        if self.mailboxes is None or self.mailbox_state is None:
            return None
        return MailboxesSeen.of(self.mailboxes, self.mailbox_state)


class JmapClient:
    """A JMAP client for one account; ``requests_made`` counts every HTTP request, and
    ``take_writes`` hands over every Email/set answer since it was last called."""

    # Called before every HTTP request; may raise to stop a pass between two requests.
    before_request: Callable[[], None] | None = None

    def __init__(
        self,
        session_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        limits: HttpLimits = JMAP_LIMITS,
        page_size: int | None = None,
    ) -> None:
        self._session_url = session_url
        self._page_size = page_size  # overrides maxObjectsInGet for reads (tests)
        self._session: Session | None = None
        self._limits = limits
        self.requests_made = 0
        self._writes: list[SetResult] = []  # every Email/set answer since take_writes()
        self._http = new_client(
            limits,
            transport,
            headers={"Authorization": f"Bearer {token}"},  # httpx masks it in reprs
            event_hooks={"request": [self._count]},
        )

    def __repr__(self) -> str:
        return f"JmapClient(session_url={self._session_url!r})"

    def take_writes(self) -> tuple[SetResult, ...]:
        """Every Email/set answer since the last call, in order (what a pass wrote; the
        worker's echo rule reads their states)."""
        taken, self._writes = tuple(self._writes), []
        return taken

    def _count(self, request: httpx.Request) -> None:
        if self.before_request is not None:
            self.before_request()
        self.requests_made += 1

    # -- session -----------------------------------------------------------------

    @property
    def session(self) -> Session:
        if self._session is None:
            return self.refresh_session()
        return self._session

    def refresh_session(self) -> Session:
        """Fetch the session resource again (following /.well-known/jmap's redirect)."""
        response = self._send("GET", self._session_url, follow_redirects=True)
        self._session = parse_session(_json(response), str(response.url))
        return self._session

    # -- the one POST ------------------------------------------------------------

    def call(
        self,
        calls: Sequence[m.Invocation],
        *,
        using: Sequence[str] = (CORE, MAIL),
        tolerate: Collection[str] = (),
    ) -> list[m.Invocation]:
        """Send ``calls`` in ONE request; any ``error`` answer raises JmapMethodError,
        but those to the call ids in ``tolerate``, which are returned for the caller."""
        body = {"using": list(using), "methodCalls": [list(inv) for inv in calls]}
        response = self._send("POST", self.session.api_url, json=body)
        answers = _json(response).get("methodResponses")
        if not isinstance(answers, list):
            raise JmapError("the JMAP answer has no methodResponses; the server is not JMAP")
        asked = {call_id: name for name, _args, call_id in calls}
        result: list[m.Invocation] = []
        for name, args, call_id in answers:
            if name == "error" and call_id not in tolerate:
                method = asked.get(call_id, "?")
                raise JmapMethodError(
                    method, str(args.get("type", "unknown")), str(args.get("description", ""))
                )
            result.append((name, args, call_id))
        return result

    def _call_one(self, inv: m.Invocation) -> dict[str, Any]:
        return q.answer_to(q.by_call_id(self.call([inv])), inv[2], inv[0])

    # -- mailboxes ---------------------------------------------------------------

    def get_mailboxes(self, ids: Sequence[str] | None = None) -> tuple[list[Mailbox], str]:
        """Every mailbox (or those of ``ids`` that exist) and the Mailbox state."""
        return m.parse_mailbox_get(self._call_one(m.mailbox_get(self.session.account_id, ids)))

    def create_mailbox(self, name: str, parent_id: str | None = None) -> str:
        inv = m.mailbox_set_create(
            self.session.account_id, {"c": {"name": name, "parentId": parent_id}}
        )
        return m.parse_set("Mailbox/set", self._call_one(inv)).created["c"]

    # -- emails ------------------------------------------------------------------

    @property
    def _read_size(self) -> int:
        return self._page_size or self.session.max_objects_in_get

    def query_ids(self, filter: Mapping[str, Any]) -> list[str]:
        """All ids matching ``filter``, page by page until the last page."""
        ids: list[str] = []
        position, pages = 0, 0
        while True:
            inv = m.email_query(
                self.session.account_id, filter, position=position, limit=self._read_size
            )
            page = m.parse_email_query(self._call_one(inv))
            ids.extend(page.ids)
            pages += 1
            if q.is_last_page(page, self._read_size):
                return ids
            q.check_page_count(pages, filter)
            position = q.next_position(page)

    def query_emails(self, filter: Mapping[str, Any]) -> tuple[list[Email], str]:
        """Emails matching ``filter`` and the Email state of the first page."""
        (result,), _ = self.query_emails_many([filter])
        return list(result.emails), result.state

    def query_emails_many(
        self, filters: Sequence[Mapping[str, Any]], *, with_mailboxes: bool = False
    ) -> tuple[list[q.EmailQueryResult], list[Mailbox] | None]:
        """Every email each filter matches, one result per filter (``scan_emails``)."""
        found = self.scan_emails(filters, with_mailboxes=with_mailboxes)
        return found.results, found.mailboxes

    def scan_emails(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        with_mailboxes: bool = False,
        changes_since: str | None = None,
        max_changes: int = MAX_CHANGES,
    ) -> ScanAnswer:
        """Every email each filter matches, one result per filter, in few requests.

        Each page is an Email/query + Email/get pair; the pairs of all filters still
        paging go out together, as many per request as ``maxCallsInRequest`` allows.
        With ``with_mailboxes`` a Mailbox/get rides along in the first request; with
        ``changes_since`` the Email/changes + Email/get of the mail created since then.
        """
        paging = q.Paging(filters)
        boxes: list[Mailbox] | None = None
        box_state: str | None = None
        changed: q.ChangedEmails | None = None
        first = []
        if with_mailboxes:
            first.append(m.mailbox_get(self.session.account_id))
        if changes_since is not None:
            most = min(max_changes, self._read_size)  # the Email/get reads them all
            first += q.changes_get(self.session.account_id, changes_since, max_changes=most)
        per_request = max(1, (self.session.max_calls_in_request - len(first)) // 2)
        while paging.pending:
            for chunk in _chunks(paging.pending, per_request):
                calls, first = first, []
                riders = {call_id for _n, _a, call_id in calls}
                for i in chunk:
                    calls += paging.calls(i, self.session.account_id, self._read_size)
                answers = q.by_call_id(self.call(calls, tolerate=q.changes_call_ids() & riders))
                if "m" in riders:
                    boxes, box_state = m.parse_mailbox_get(q.answer_to(answers, "m", "Mailbox/get"))
                if q.changes_call_ids() <= riders:
                    changed = q.parse_changes_get(answers)
                for i in chunk:
                    paging.took(i, q.parse_query_get(answers, str(i)), self._read_size)
        return ScanAnswer(paging.results(), boxes, changed, box_state)

    def newest_emails(self, after: str, *, limit: int) -> tuple[list[Email], list[Mailbox]]:
        """At most ``limit`` of the newest emails received after ``after`` (a UTCDate), in
        every mailbox, newest first, with ``received_at``; and the account's mailboxes.

        ONE request (Mailbox/get, Email/query, Email/get), one page: a bounded look, not
        a listing. A server that uses a smaller limit than asked gives fewer.
        """
        account = self.session.account_id
        calls = [
            m.mailbox_get(account),
            *q.newest_get(account, after, limit=min(limit, self._read_size), tag="0"),
        ]
        answers = q.by_call_id(self.call(calls))
        boxes = m.parse_mailbox_get(q.answer_to(answers, "m", "Mailbox/get"))[0]
        return list(q.parse_query_get(answers, "0").emails), boxes

    def changed_emails(
        self, since_state: str, *, max_changes: int = MAX_CHANGES
    ) -> q.ChangedEmails:
        """The mail created since ``since_state`` (one request): Email/changes + Email/get."""
        most = min(max_changes, self._read_size)
        calls = q.changes_get(self.session.account_id, since_state, max_changes=most)
        return q.parse_changes_get(q.by_call_id(self.call(calls, tolerate=q.changes_call_ids())))

    def query_page(
        self, filter: Mapping[str, Any], *, position: int, limit: int, properties: Sequence[str]
    ) -> q.EmailPage:
        """One page of one filter, read with ``properties`` (one request)."""
        calls = q.query_get(
            self.session.account_id,
            filter,
            position=position,
            limit=limit,
            tag="0",
            properties=properties,
        )
        return q.parse_query_get(q.by_call_id(self.call(calls)), "0")

    def identities(self) -> list[str]:
        """The addresses the account sends as; none when the server offers no submission."""
        if m.SUBMISSION not in self.session.capabilities:
            return []
        inv = m.identity_get(self.session.account_id)
        answers = q.by_call_id(self.call([inv], using=(CORE, MAIL, m.SUBMISSION)))
        return m.parse_identity_get(q.answer_to(answers, inv[2], inv[0]))

    def get_emails(
        self, ids: Sequence[str], *, properties: Sequence[str] = m.EMAIL_PROPERTIES
    ) -> list[Email]:
        emails: list[Email] = []
        if not ids:
            return emails
        for chunk in _chunks(list(ids), self._read_size):
            inv = m.email_get(self.session.account_id, chunk, properties=properties)
            emails.extend(m.parse_email_get(self._call_one(inv))[0])
        return emails

    def update_emails(
        self, update: EmailUpdate, *, if_in_state: str | None = None
    ) -> list[SetResult]:
        """Email/set in chunks of maxObjectsInSet, one POST each; a SetResult per chunk.

        With ``if_in_state`` each chunk is guarded by the state the one before left
        (the first by ``if_in_state``): a change by anyone else in between makes the
        server refuse the chunk (JmapMethodError ``stateMismatch``).
        """
        results: list[SetResult] = []
        if not update:
            return results
        state = if_in_state
        for chunk in _chunks(list(update.items()), self.session.max_objects_in_set):
            if if_in_state is not None and state is None:
                raise JmapError("an Email/set answer has no newState to guard the next one by")
            inv = m.email_set(self.session.account_id, dict(chunk), if_in_state=state)
            results.append(m.parse_set("Email/set", self._call_one(inv)))
            self._writes.append(results[-1])
            state = results[-1].new_state
        return results

    def guarded_update(
        self,
        update: EmailUpdate,
        *,
        mailboxes: Sequence[str],
        mailbox_state: str,
        if_in_state: str | None = None,
    ) -> GuardedSet:
        """One Email/set tied to the mailboxes as they were at ``mailbox_state``: ONE request.

        Three calls, run by the server in order: a Mailbox/set changing nothing, guarded
        by ``ifInState``; the Email/set, whose ``accountId`` refers back to it, so that it
        runs only if no mailbox changed since ``mailbox_state`` (Cyrus 3.6 accepts mail
        into a mailbox destroyed a moment before, and the mail can no longer be read);
        then a Mailbox/get of ``mailboxes``: which of them exist after the write, and the
        Mailbox state that says so. ``update`` must fit one Email/set.
        """
        account = self.session.account_id
        calls = [
            m.mailbox_set_guard(account, mailbox_state),
            m.email_set(
                m.result_ref("ms", "Mailbox/set", "/accountId"), update, if_in_state=if_in_state
            ),
            m.mailbox_get(account, mailboxes, call_id="mb"),
        ]
        answers = q.by_call_id(self.call(calls, tolerate=("ms", "s")))
        boxes, state = m.parse_mailbox_get(q.answer_to(answers, "mb", "Mailbox/get"))
        try:
            q.answer_to(answers, "ms", "Mailbox/set")
        except JmapMethodError as exc:
            if exc.error_type != "stateMismatch":
                raise
            result = None
        else:
            result = m.parse_set("Email/set", q.answer_to(answers, "s", "Email/set"))
            self._writes.append(result)
        return GuardedSet(result, frozenset(b.id for b in boxes), state)

    def import_email(
        self,
        raw: bytes,
        mailbox_ids: Sequence[str],
        *,
        keywords: Mapping[str, bool] | None = None,
    ) -> str:
        """Upload ``raw`` (RFC 5322) and Email/import it; the new email's id."""
        url = expand_upload_url(self.session)
        if url is None:
            raise JmapError("the JMAP session offers no uploadUrl; this server cannot import mail")
        headers = {"Content-Type": "message/rfc822"}
        blob_id = _json(self._send("POST", url, content=raw, headers=headers)).get("blobId")
        if not blob_id:
            raise JmapError(f"the upload to {url} answered without a blobId")
        entry = {
            "blobId": blob_id,
            "mailboxIds": {box: True for box in mailbox_ids},
            "keywords": dict(keywords or {}),
        }
        inv = m.email_import(self.session.account_id, {"e": entry})
        return m.parse_set("Email/import", self._call_one(inv)).created["e"]

    # -- blobs (RFC 8620 §6) -----------------------------------------------------

    def upload(self, data: bytes, content_type: str) -> str:
        """Upload ``data``; the blobId the server gave it."""
        url = expand_upload_url(self.session)
        if url is None:
            raise JmapError("the JMAP session offers no uploadUrl; this server takes no uploads")
        answer = _json(
            self._send("POST", url, content=data, headers={"Content-Type": content_type})
        )
        blob_id = answer.get("blobId")
        if not blob_id:
            raise JmapError(f"the upload to {url} answered without a blobId")
        return str(blob_id)

    def download(self, blob_id: str, *, type: str, name: str) -> bytes:
        """The bytes of one blob."""
        url = expand_download_url(self.session, blob_id, type=type, name=name)
        if url is None:
            raise JmapError("the JMAP session offers no downloadUrl; blobs cannot be read")
        return self._send("GET", url).content

    # -- HTTP --------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = send(self._http, SERVICE, method, url, limits=self._limits, **kwargs)
        raise_for_status(response)
        return response

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JmapClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def raise_for_status(response: httpx.Response, *, now: datetime | None = None) -> None:
    """Translate an HTTP failure into mailroom's error tree; 2xx passes."""
    status = response.status_code
    if status < 300:
        return
    fault = common_fault(response, SERVICE, AUTH_HINT, now=now)
    if fault is not None:
        raise fault
    url = str(response.request.url)
    problem = _problem(response)
    raise JmapRequestError(
        status,
        str(problem.get("type", "no problem details")),
        str(problem.get("detail") or f"{response.request.method} {url} was refused"),
    )


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise JmapError(
            f"{response.request.url} answered HTTP {response.status_code} without JSON; "
            "check MAILROOM_JMAP_SESSION_URL"
        ) from exc
    if not isinstance(data, dict):
        raise JmapError(f"{response.request.url} answered JSON that is not an object")
    return data


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
