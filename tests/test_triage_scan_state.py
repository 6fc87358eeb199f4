"""The Email state a pass reports as scanned: the one read before the label query."""

from __future__ import annotations

from mailroom.jmap.models import Changes
from mailroom.jmap.query import ChangedEmails
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.scan import Scan

IDS = MailboxIds(
    screener="S",
    inbox="I",
    trash=None,
    junk=None,
    error="E",
    warning=None,
    labels={"L": "Feed"},
    destinations={"Feed": "F"},
)


def scan(changes: Changes | None) -> Scan:
    changed = None if changes is None else ChangedEmails(changes, (), "after-get")
    return Scan(IDS, (), "after-query", changed)


def test_the_state_read_before_the_label_query_is_the_one_scanned() -> None:
    whole = Changes("old", "before-query", has_more=False, created=())
    assert scan(whole).state_read_first == "before-query"


def test_without_whole_changes_the_label_reads_own_state_is_used() -> None:
    partial = Changes("old", "part-way", has_more=True, created=())
    assert scan(partial).state_read_first == "after-query"
    assert scan(None).state_read_first == "after-query"
