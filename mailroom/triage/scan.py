"""The scan of a triage pass: every email carrying a triage label, in any mailbox.

One request when idle: Mailbox/get, Email/query over the label mailboxes and Email/get
by back-reference, together. The mailbox ids are kept between passes and refreshed
when the mailboxes in the answer differ from them, or a label mailbox went missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.config import Settings
from mailroom.errors import JmapMethodError
from mailroom.jmap import methods
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email, QueryPage
from mailroom.triage.mailboxes import MailboxIds, resolve


@dataclass(frozen=True, slots=True)
class _ScanPage:
    ids: MailboxIds  # the mailboxes as they were when the page was read
    page: QueryPage
    emails: list[Email]
    email_state: str


class Scanner:
    """Scans for labelled email; keeps the mailbox ids between passes."""

    def __init__(self, settings: Settings, jmap: JmapClient) -> None:
        self.settings = settings
        self.jmap = jmap
        self._ids: MailboxIds | None = None

    def _load_mailboxes(self) -> MailboxIds:
        mailboxes, _ = self.jmap.get_mailboxes()
        self._ids = resolve(self.settings, mailboxes)
        return self._ids

    def _scan_page(self, ids: MailboxIds, position: int) -> _ScanPage:
        session = self.jmap.session
        acct = session.account_id
        conditions = [{"inMailbox": lid} for lid in ids.labels]
        calls = [
            methods.mailbox_get(acct, None, call_id="m"),
            methods.email_query(
                acct,
                {"operator": "OR", "conditions": conditions},
                position=position,
                limit=session.max_objects_in_get,
                call_id="q",
            ),
            methods.email_get(acct, methods.result_ref("q", "Email/query", "/ids"), call_id="g"),
        ]
        m, q, g = self.jmap.call(calls)
        mailboxes, _ = methods.parse_mailbox_get(methods.raise_for_invocation(m, "Mailbox/get"))
        page = methods.parse_email_query(methods.raise_for_invocation(q, "Email/query"))
        emails, state = methods.parse_email_get(methods.raise_for_invocation(g, "Email/get"))
        return _ScanPage(resolve(self.settings, mailboxes), page, emails, state)

    def scan(self) -> tuple[MailboxIds, list[Email], str]:
        """Every email carrying a triage label, in any mailbox; one request when idle.

        The mailboxes (id, name, parent, role: a few bytes each) ride along with the
        query, so a rename, a deletion or a new mailbox is seen at once, and new mail
        changing only the counts costs nothing extra.
        """
        ids = self._ids or self._load_mailboxes()
        try:
            first = self._scan_page(ids, 0)
        except JmapMethodError as exc:
            if exc.error_type != "invalidArguments":
                raise
            ids = self._load_mailboxes()  # a label mailbox went missing
            first = self._scan_page(ids, 0)
        if first.ids != ids:  # mailboxes changed: the query may have used stale ids
            self._ids = ids = first.ids
            first = self._scan_page(ids, 0)
        page, emails, state = first.page, list(first.emails), first.email_state
        limit = self.jmap.session.max_objects_in_get
        while page.ids and len(page.ids) >= (page.limit or limit):
            more = self._scan_page(ids, page.position + len(page.ids))
            page, state = more.page, more.email_state
            emails.extend(more.emails)
        return ids, emails, state
