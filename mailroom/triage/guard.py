"""Filing writes tied to the mailboxes as they are: mail never goes into a mailbox that is gone.

Cyrus 3.6 answers ``updated`` to an Email/set that moves mail into a mailbox id
destroyed a moment before, and the mail can then no longer be read (Email/get:
notFound). So every filing write goes out as ``JmapClient.guarded_update``: the
server runs the Email/set only if no mailbox changed since the Mailbox state this
writer last saw, and that state was read together with the proof that every mailbox
the write adds mail to exists. A refused guard is answered with the mailboxes as they
are now: if one the write adds to is gone, ``MailboxGone`` names it (the filing puts
the senders concerned on hold); otherwise someone else changed a mailbox (new mail
changes the counts) and the write is sent again with the new state, a few times.

The same request reads the mailboxes again after the write. If they all still exist,
the mail put in them can be read: they existed at the guard, and an id is never
reused. If one is gone (deleted between the guard and the Email/set), the written
emails are read back: an email that lost a mailbox the write gave it is put back in
the Screener with the error label (and named in ``unfiled``); one that can no longer
be read at all is named in ``lost``. Reading back only then keeps a 4,000-email
write at one request (an Email/get of every written email cost Cyrus as much again).

A writer may start from ``seen``: the pass's scan read every mailbox and the Mailbox
state together, so its first guard checks that state and needs no Mailbox/get of its
own. A mailbox the write adds to that the scan did not see is read first, as without
``seen``. If anything changed since the scan (new mail changes the counts), the guard
is refused and answered with the mailboxes as they are now, as above.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import structlog

from mailroom.errors import JmapMethodError, MailboxGone
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email, EmailChange, EmailPatch, MailboxesSeen, SetResult

log = structlog.get_logger("mailroom.triage")

Update = Mapping[str, EmailChange]
GUARD_TRIES = 4  # a write refused this often because other mailboxes keep changing fails


def misfiled(update: Update, after: Sequence[Email]) -> tuple[set[str], set[str]]:
    """The written emails that cannot be read (lost) and those missing a mailbox they were
    given (unfiled), from what the server held right after the write."""
    now = {e.id: e for e in after}
    lost = {eid for eid in update if eid not in now}
    unfiled = {
        eid
        for eid, change in update.items()
        if eid in now and (not now[eid].mailbox_ids or not change.joins <= now[eid].mailbox_ids)
    }
    return lost, unfiled


class Writer:
    """Every filing write of one pass; keeps the Mailbox state the next guard checks."""

    def __init__(
        self,
        jmap: JmapClient,
        *,
        screener: str,
        error: str | None,
        seen: MailboxesSeen | None = None,
    ) -> None:
        """``screener`` (and the ``error`` label, if any) is where mail that lost a
        mailbox the write gave it is put back. ``seen``: every mailbox existing at a
        Mailbox state (the scan's), what the first guard checks."""
        self.jmap = jmap
        self._back = EmailPatch(add=frozenset(mid for mid in (screener, error) if mid))
        self._state: str | None = None  # the Mailbox state the next guard checks
        self._known: dict[str, bool] = {}  # mailbox id -> it exists at that state
        if seen is not None:  # only what exists is known: a mailbox not seen is read
            self._state, self._known = seen.state, dict.fromkeys(seen.ids, True)
        self.lost: set[str] = set()
        self.unfiled: set[str] = set()

    def update(self, update: Update, *, if_in_state: str | None = None) -> list[SetResult]:
        """``update`` in guarded chunks; MailboxGone (nothing of that chunk written) when a
        mailbox it adds mail to is gone. With ``if_in_state`` each chunk is also guarded by
        the Email state the one before left, as ``JmapClient.update_emails`` does."""
        results: list[SetResult] = []
        state = if_in_state
        for chunk in _chunks(update, self.jmap.session.max_objects_in_set):
            result = self._write(chunk, state)
            results.append(result)
            state = result.new_state if if_in_state is not None else None
        return results

    def _write(self, chunk: Update, if_in_state: str | None, *, check: bool = True) -> SetResult:
        boxes = sorted(frozenset().union(*(c.joins for c in chunk.values())))
        for _ in range(GUARD_TRIES):
            if self._state is None or not set(boxes) <= self._known.keys():
                self._read(boxes)
            gone = {b for b in boxes if not self._known[b]}
            if gone:
                raise MailboxGone(gone)  # seen gone at the state the guard would check
            assert self._state is not None
            answer = self.jmap.guarded_update(
                chunk, mailboxes=boxes, mailbox_state=self._state, if_in_state=if_in_state
            )
            self._learn(answer.mailbox_state, boxes, answer.present)
            if answer.result is not None:
                if check and not set(boxes) <= answer.present:
                    self._check(chunk)
                return answer.result
        raise JmapMethodError(
            "Mailbox/set",
            "stateMismatch",
            f"the mailboxes changed before each of {GUARD_TRIES} guarded writes; "
            "the next pass tries again",
        )

    def _read(self, boxes: Sequence[str]) -> None:
        """The Mailbox state, read with the mailboxes a write adds mail to."""
        found, state = self.jmap.get_mailboxes(boxes)
        self._learn(state, boxes, frozenset(m.id for m in found))

    def _learn(self, state: str, asked: Sequence[str], present: frozenset[str]) -> None:
        """What the server said at ``state``: only that is known for the next guard."""
        self._state = state
        self._known = {b: b in present for b in asked}

    def _check(self, chunk: Update) -> None:
        """A mailbox went during the write: read the mail back; what lost it goes back."""
        lost, unfiled = misfiled(chunk, self.jmap.get_emails(list(chunk)))
        if lost:
            self.lost |= lost
            log.error("emails_lost", email_ids=sorted(lost), count=len(lost))
        if unfiled:
            self.unfiled |= unfiled
            self._write(dict.fromkeys(sorted(unfiled), self._back), None, check=False)
            log.error(
                "emails_put_back",
                email_ids=sorted(unfiled),
                count=len(unfiled),
                mailboxes=sorted(self._back.add),
            )


def _chunks(update: Update, size: int) -> Iterator[dict[str, EmailChange]]:
    items = list(update.items())
    for start in range(0, len(items), size):
        yield dict(items[start : start + size])
