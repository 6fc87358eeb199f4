"""The scan of a triage pass: every email carrying a triage label, in any mailbox.

One request when idle: Mailbox/get riding along with the label query (Email/query +
Email/get). The mailbox ids are kept between passes and refreshed when the mailboxes
in the answer differ from them, or a label mailbox went missing. At start the
mailboxes are read once, on their own, and the query does not read them again.

Either way the scan keeps what that Mailbox/get saw (``Scan.seen``: the Mailbox state
and every mailbox existing at it): the filing's guard starts from it
(triage/guard.py), so the first write of a pass needs no Mailbox/get of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.config import Settings
from mailroom.errors import JmapError, JmapMethodError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email, MailboxesSeen
from mailroom.jmap.query import ChangedEmails
from mailroom.triage.mailboxes import MailboxIds, resolve


@dataclass(frozen=True, slots=True)
class Scan:
    ids: MailboxIds  # the mailboxes as they were when the labelled mail was read
    emails: tuple[Email, ...]
    email_state: str
    changed: ChangedEmails | None = None  # the new mail, when asked for (routing)
    seen: MailboxesSeen | None = None  # the mailboxes read with ``ids``, and their state

    @property
    def state_read_first(self) -> str:
        """The Email state read before the label query: Email/changes' newState when the
        new mail rode along and came whole (it runs first in the request), else the
        label read's own (its Email/get runs after the query). A label written between
        that query and its Email/get leaves the get's state newer than what the query
        saw; the worker's "seen" rule must not take that label's push for one it read.
        """
        changes = self.changed.changes if self.changed is not None else None
        if changes is None or changes.has_more:
            return self.email_state
        return changes.new_state


def label_filter(ids: MailboxIds) -> dict[str, Any]:
    return {"operator": "OR", "conditions": [{"inMailbox": lid} for lid in ids.labels]}


class Scanner:
    """Scans for labelled email; keeps the mailbox ids between passes."""

    def __init__(self, settings: Settings, jmap: JmapClient) -> None:
        self.settings = settings
        self.jmap = jmap
        self._ids: MailboxIds | None = None

    def _query(self, ids: MailboxIds, seen: MailboxesSeen, since: str | None) -> Scan:
        self._ids = ids
        found = self.jmap.scan_emails([label_filter(ids)], changes_since=since)
        (labelled,) = found.results
        return Scan(ids, labelled.emails, labelled.state, found.changed, seen)

    def _fresh(self, since: str | None) -> Scan:
        mailboxes, state = self.jmap.get_mailboxes()
        seen = MailboxesSeen.of(mailboxes, state)
        return self._query(resolve(self.settings, mailboxes), seen, since)

    def _checked(self, ids: MailboxIds, since: str | None) -> Scan:
        """The scan with the kept ids, read again with new ids when the mailboxes changed."""
        found = self.jmap.scan_emails([label_filter(ids)], with_mailboxes=True, changes_since=since)
        seen = found.seen
        if found.mailboxes is None or seen is None:
            raise JmapError("the JMAP answer lacks the Mailbox/get asked for")
        now = resolve(self.settings, found.mailboxes)
        if now != ids:
            return self._query(now, seen, since)
        (labelled,) = found.results
        return Scan(ids, labelled.emails, labelled.state, found.changed, seen)

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
