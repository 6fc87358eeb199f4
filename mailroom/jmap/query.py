"""Email/query + Email/get in one request, and the one rule for when paging ends.

Pure: ``query_get`` builds the pair of calls for one page of one filter (the get reads
the query's ids through a back-reference, RFC 8620 §3.7); ``parse_query_get`` pairs the
answers with the calls by call id; ``is_last_page`` says whether to ask for the next
page. ``JmapClient.scan_emails`` is the only loop that sends them. ``changes_get`` is
the Email/changes + Email/get pair that rides along in its first request (new mail).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.errors import JmapError, JmapMethodError
from mailroom.jmap import methods as m
from mailroom.jmap.models import Changes, Email, QueryPage

# A server that answers full pages for ever is an error, not a loop: at the smallest
# page a server may use (500) this is 100,000 emails for one filter.
MAX_PAGES = 200


@dataclass(frozen=True, slots=True)
class EmailPage:
    """One page of one filter: where the server put it, and the emails on it."""

    page: QueryPage
    emails: tuple[Email, ...]
    state: str  # the Email state the get read


@dataclass(frozen=True, slots=True)
class EmailQueryResult:
    """Every email one filter matched, oldest first, and the state of its first page."""

    emails: tuple[Email, ...]
    state: str


def query_get(
    account_id: str,
    filter: Mapping[str, Any],
    *,
    position: int,
    limit: int,
    tag: str,
    sort: Sequence[Mapping[str, Any]] = m.EMAIL_SORT,
    properties: Sequence[str] = m.EMAIL_PROPERTIES,
) -> list[m.Invocation]:
    """The two calls for one page: call ids ``q<tag>`` and ``g<tag>``."""
    query = m.email_query(
        account_id, filter, position=position, limit=limit, call_id=f"q{tag}", sort=sort
    )
    ref = m.result_ref(f"q{tag}", "Email/query", "/ids")
    return [query, m.email_get(account_id, ref, properties=properties, call_id=f"g{tag}")]


def newest_get(account_id: str, after: str, *, limit: int, tag: str) -> list[m.Invocation]:
    """One page of the newest emails received after ``after`` (a UTCDate), in every
    mailbox, newest first, with when each arrived: a bounded look at recent arrivals."""
    return query_get(
        account_id,
        {"after": after},
        position=0,
        limit=limit,
        tag=tag,
        sort=m.NEWEST_FIRST,
        properties=m.ARRIVAL_PROPERTIES,
    )


@dataclass(frozen=True, slots=True)
class ChangedEmails:
    """The emails created since a state, read with their sender, mailboxes and arrival.

    ``changes`` is None when the server cannot calculate changes since that state
    (``cannotCalculateChanges``; or ``invalidArguments``, which Cyrus answers for a
    state it never issued): the caller falls back to a query by ``receivedAt``.
    """

    changes: Changes | None
    emails: tuple[Email, ...]
    state: str  # the Email state the get read; "" when changes is None


CANNOT_CALCULATE = frozenset({"cannotCalculateChanges", "invalidArguments"})


def changes_get(
    account_id: str, since_state: str, *, max_changes: int, tag: str = "a"
) -> list[m.Invocation]:
    """Email/changes and the Email/get of its created ids: call ids ``c<tag>``, ``d<tag>``."""
    changes = m.email_changes(account_id, since_state, max_changes=max_changes, call_id=f"c{tag}")
    ref = m.result_ref(f"c{tag}", "Email/changes", "/created")
    get = m.email_get(account_id, ref, properties=m.ARRIVAL_PROPERTIES, call_id=f"d{tag}")
    return [changes, get]


def changes_call_ids(tag: str = "a") -> frozenset[str]:
    """The calls of ``changes_get`` whose error answers ``parse_changes_get`` reads."""
    return frozenset({f"c{tag}", f"d{tag}"})


def parse_changes_get(answers: Mapping[str, m.Invocation], tag: str = "a") -> ChangedEmails:
    """The created emails; "cannot calculate" is an answer, any other error raises."""
    try:
        changes = m.parse_email_changes(answer_to(answers, f"c{tag}", "Email/changes"))
    except JmapMethodError as exc:
        if exc.error_type not in CANNOT_CALCULATE:
            raise
        return ChangedEmails(None, (), "")
    emails, state = m.parse_email_get(answer_to(answers, f"d{tag}", "Email/get"))
    return ChangedEmails(changes, tuple(emails), state)


def by_call_id(answers: Sequence[m.Invocation]) -> dict[str, m.Invocation]:
    return {call_id: (name, args, call_id) for name, args, call_id in answers}


def answer_to(answers: Mapping[str, m.Invocation], call_id: str, method: str) -> dict[str, Any]:
    """The arguments answering call ``call_id``; a missing or wrong answer raises."""
    if call_id not in answers:
        raise JmapError(f"the JMAP answer lacks a response to call {call_id!r}")
    return m.raise_for_invocation(answers[call_id], method)


def parse_query_get(answers: Mapping[str, m.Invocation], tag: str) -> EmailPage:
    page = m.parse_email_query(answer_to(answers, f"q{tag}", "Email/query"))
    emails, state = m.parse_email_get(answer_to(answers, f"g{tag}", "Email/get"))
    return EmailPage(page, tuple(emails), state)


def is_last_page(page: QueryPage, asked: int) -> bool:
    """A page shorter than the limit in force ends the query (RFC 8620 §5.5).

    The limit in force is the one asked for, or the smaller one the server says it
    used; ``total`` is never trusted. An empty page always ends it.
    """
    used = min(page.limit, asked) if page.limit else asked
    return len(page.ids) < used


def next_position(page: QueryPage) -> int:
    return page.position + len(page.ids)


def check_page_count(pages: int, filter: Mapping[str, Any]) -> None:
    """Raise once a filter has had ``MAX_PAGES`` full pages: the server never ends it."""
    if pages >= MAX_PAGES:
        raise JmapError(
            f"the server answered {pages} full pages for Email/query {dict(filter)!r} and "
            "never a last one; the server is misbehaving, mailroom will retry next pass"
        )


class Paging:
    """Where each filter's paging stands; fed pages, says which filters need another."""

    def __init__(self, filters: Sequence[Mapping[str, Any]]) -> None:
        self._filters = list(filters)
        self._position = dict.fromkeys(range(len(self._filters)), 0)
        self._pages = dict.fromkeys(range(len(self._filters)), 0)
        self._emails: list[list[Email]] = [[] for _ in self._filters]
        self._states: dict[int, str] = {}

    @property
    def pending(self) -> list[int]:
        """The filters that still need a page, by index."""
        return sorted(self._position)

    def calls(self, index: int, account_id: str, limit: int) -> list[m.Invocation]:
        position = self._position[index]
        return query_get(
            account_id, self._filters[index], position=position, limit=limit, tag=str(index)
        )

    def took(self, index: int, got: EmailPage, limit: int) -> None:
        self._emails[index].extend(got.emails)
        self._states.setdefault(index, got.state)
        self._pages[index] += 1
        if is_last_page(got.page, limit):
            del self._position[index]
            return
        check_page_count(self._pages[index], self._filters[index])
        self._position[index] = next_position(got.page)

    def results(self) -> list[EmailQueryResult]:
        return [
            EmailQueryResult(tuple(emails), self._states.get(i, ""))
            for i, emails in enumerate(self._emails)
        ]
