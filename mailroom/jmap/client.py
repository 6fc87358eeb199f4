"""JmapClient: the thin I/O shell around the pure session and method modules.

One ``httpx.Client``, Bearer auth on every request, chunking by the session's limits,
paging that never trusts ``total``. httpx errors are translated here, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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
from mailroom.jmap.models import Email, Mailbox, QueryPage, Session, SetResult
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


class JmapClient:
    """A JMAP client for one account; ``requests_made`` counts every HTTP request."""

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
        self._http = new_client(
            limits,
            transport,
            headers={"Authorization": f"Bearer {token}"},  # httpx masks it in reprs
            event_hooks={"request": [self._count]},
        )

    def __repr__(self) -> str:
        return f"JmapClient(session_url={self._session_url!r})"

    def _count(self, request: httpx.Request) -> None:
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
        self, calls: Sequence[m.Invocation], *, using: Sequence[str] = (CORE, MAIL)
    ) -> list[m.Invocation]:
        """Send ``calls`` in ONE request; any ``error`` answer raises JmapMethodError."""
        body = {"using": list(using), "methodCalls": [list(inv) for inv in calls]}
        response = self._send("POST", self.session.api_url, json=body)
        answers = _json(response).get("methodResponses")
        if not isinstance(answers, list):
            raise JmapError("the JMAP answer has no methodResponses; the server is not JMAP")
        asked = {call_id: name for name, _args, call_id in calls}
        result: list[m.Invocation] = []
        for name, args, call_id in answers:
            if name == "error":
                method = asked.get(call_id, "?")
                raise JmapMethodError(
                    method, str(args.get("type", "unknown")), str(args.get("description", ""))
                )
            result.append((name, args, call_id))
        return result

    def _call_one(self, inv: m.Invocation) -> dict[str, Any]:
        answers = {answer[2]: answer for answer in self.call([inv])}
        return m.raise_for_invocation(_answer(answers, inv[2]), inv[0])

    # -- mailboxes ---------------------------------------------------------------

    def get_mailboxes(self) -> tuple[list[Mailbox], str]:
        return m.parse_mailbox_get(self._call_one(m.mailbox_get(self.session.account_id)))

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
        """All ids matching ``filter``, page by page until a short page."""
        ids: list[str] = []
        while True:
            inv = m.email_query(
                self.session.account_id, filter, position=len(ids), limit=self._read_size
            )
            page = m.parse_email_query(self._call_one(inv))
            ids.extend(page.ids)
            if _last_page(page.ids, page.limit, self._read_size):
                return ids

    def query_emails(self, filter: Mapping[str, Any]) -> tuple[list[Email], str]:
        """Emails matching ``filter`` and the Email state of the first page.

        One POST per page: Email/query, then Email/get through a back-reference.
        """
        emails: list[Email] = []
        states: list[str] = []
        position = 0
        while True:
            page, got, state = self._query_page(filter, position)
            emails.extend(got)
            states.append(state)
            position += len(page.ids)
            if _last_page(page.ids, page.limit, self._read_size):
                return emails, states[0]

    def _query_page(
        self, filter: Mapping[str, Any], position: int
    ) -> tuple[QueryPage, list[Email], str]:
        account = self.session.account_id
        query = m.email_query(account, filter, position=position, limit=self._read_size)
        get = m.email_get(account, m.result_ref("q", "Email/query", "/ids"))
        answers = {
            call_id: (name, args, call_id) for name, args, call_id in self.call([query, get])
        }
        page = m.parse_email_query(m.raise_for_invocation(_answer(answers, "q"), "Email/query"))
        got, state = m.parse_email_get(m.raise_for_invocation(_answer(answers, "g"), "Email/get"))
        return page, got, state

    def get_emails(self, ids: Sequence[str]) -> list[Email]:
        emails: list[Email] = []
        if not ids:
            return emails
        for chunk in _chunks(list(ids), self._read_size):
            inv = m.email_get(self.session.account_id, chunk)
            emails.extend(m.parse_email_get(self._call_one(inv))[0])
        return emails

    def update_emails(self, update: Mapping[str, Mapping[str, bool | None]]) -> list[SetResult]:
        """Email/set in chunks of maxObjectsInSet, one POST each; a SetResult per chunk."""
        results: list[SetResult] = []
        if not update:
            return results
        for chunk in _chunks(list(update.items()), self.session.max_objects_in_set):
            inv = m.email_set(self.session.account_id, dict(chunk))
            results.append(m.parse_set("Email/set", self._call_one(inv)))
        return results

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


def _answer(answers: Mapping[str, m.Invocation], call_id: str) -> m.Invocation:
    if call_id not in answers:
        raise JmapError(f"the JMAP answer lacks a response to call {call_id!r}")
    return answers[call_id]


def _last_page(ids: Sequence[str], server_limit: int | None, asked: int) -> bool:
    """A page shorter than the limit the server used ends the query (RFC 8620 §5.5)."""
    used = server_limit if server_limit else asked
    return len(ids) < min(used, asked)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
