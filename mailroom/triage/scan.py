"""The scan of a triage pass: every email carrying a triage label, in any mailbox.

One request when idle: Mailbox/get riding along with the label query (Email/query +
Email/get). The mailbox ids are kept between passes and refreshed when the mailboxes
in the answer differ from them, or a label mailbox went missing. At start the
mailboxes are read once, on their own, and the query does not read them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.config import Settings
from mailroom.errors import JmapError, JmapMethodError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email
from mailroom.triage.mailboxes import MailboxIds, resolve


@dataclass(frozen=True, slots=True)
class Scan:
    ids: MailboxIds  # the mailboxes as they were when the labelled mail was read
    emails: tuple[Email, ...]
    email_state: str


def label_filter(ids: MailboxIds) -> dict[str, Any]:
    return {"operator": "OR", "conditions": [{"inMailbox": lid} for lid in ids.labels]}


class Scanner:
    """Scans for labelled email; keeps the mailbox ids between passes."""

    def __init__(self, settings: Settings, jmap: JmapClient) -> None:
        self.settings = settings
        self.jmap = jmap
        self._ids: MailboxIds | None = None

    def _query(self, ids: MailboxIds) -> Scan:
        self._ids = ids
        (found,), _ = self.jmap.query_emails_many([label_filter(ids)])
        return Scan(ids, found.emails, found.state)

    def _fresh(self) -> Scan:
        mailboxes, _ = self.jmap.get_mailboxes()
        return self._query(resolve(self.settings, mailboxes))

    def _checked(self, ids: MailboxIds) -> Scan:
        """The scan with the kept ids, read again with new ids when the mailboxes changed."""
        (found,), mailboxes = self.jmap.query_emails_many([label_filter(ids)], with_mailboxes=True)
        if mailboxes is None:
            raise JmapError("the JMAP answer lacks the Mailbox/get asked for")
        now = resolve(self.settings, mailboxes)
        return Scan(ids, found.emails, found.state) if now == ids else self._query(now)

    def scan(self) -> Scan:
        """Every email carrying a triage label, in any mailbox; one request when idle."""
        if self._ids is None:
            return self._fresh()
        try:
            return self._checked(self._ids)
        except JmapMethodError as exc:
            if exc.error_type != "invalidArguments":
                raise
            return self._fresh()  # a label mailbox went missing
