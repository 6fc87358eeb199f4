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
from mailroom.jmap.query import ChangedEmails
from mailroom.triage.mailboxes import MailboxIds, resolve


@dataclass(frozen=True, slots=True)
class Scan:
    ids: MailboxIds  # the mailboxes as they were when the labelled mail was read
    emails: tuple[Email, ...]
    email_state: str
    changed: ChangedEmails | None = None  # the new mail, when asked for (routing)


def label_filter(ids: MailboxIds) -> dict[str, Any]:
    return {"operator": "OR", "conditions": [{"inMailbox": lid} for lid in ids.labels]}


class Scanner:
    """Scans for labelled email; keeps the mailbox ids between passes."""

    def __init__(self, settings: Settings, jmap: JmapClient) -> None:
        self.settings = settings
        self.jmap = jmap
        self._ids: MailboxIds | None = None

    def _query(self, ids: MailboxIds, since: str | None) -> Scan:
        self._ids = ids
        found = self.jmap.scan_emails([label_filter(ids)], changes_since=since)
        (labelled,) = found.results
        return Scan(ids, labelled.emails, labelled.state, found.changed)

    def _fresh(self, since: str | None) -> Scan:
        mailboxes, _ = self.jmap.get_mailboxes()
        return self._query(resolve(self.settings, mailboxes), since)

    def _checked(self, ids: MailboxIds, since: str | None) -> Scan:
        """The scan with the kept ids, read again with new ids when the mailboxes changed."""
        found = self.jmap.scan_emails([label_filter(ids)], with_mailboxes=True, changes_since=since)
        if found.mailboxes is None:
            raise JmapError("the JMAP answer lacks the Mailbox/get asked for")
        now = resolve(self.settings, found.mailboxes)
        if now != ids:
            return self._query(now, since)
        (labelled,) = found.results
        return Scan(ids, labelled.emails, labelled.state, found.changed)

    def scan(self, since: str | None = None) -> Scan:
        """Every email carrying a triage label, in any mailbox; one request when idle.

        With ``since`` (an Email state) the mail created since then rides along.
        """
        if self._ids is None:
            return self._fresh(since)
        try:
            return self._checked(self._ids, since)
        except JmapMethodError as exc:
            if exc.error_type != "invalidArguments":
                raise
            return self._fresh(since)  # a label mailbox went missing
