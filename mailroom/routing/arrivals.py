"""New mail in the worker: judge each arrival by the routing model; under ``enforce``, move it.

Wrapped around a triage pass (``ArrivalRouter.run_pass``): the pass's label scan reads
the mail created since the Email state last judged in the same request
(``Triager.arrivals_since``), so a quiet pass stays one request. Then, per batch of at
most ``MAX_CHANGES`` new emails: one CardDAV REPORT for the senders' contacts and the
group cards, the judgment (``judge.py``), a log line per misroute, and under
``enforce`` one batched Email/set moving each misrouted email to exactly where the model
puts it. The moves join the pass's writes, so the worker's echo rule knows them as its
own. A flood is read batch by batch (``hasMoreChanges``), never all at once.

Where judging resumes: the Email state judged last, kept in worker.json's ``routing``
section (``resume_state``), so mail delivered while mailroom was stopped is judged at
start. With no state (the first start) judging begins at the current state; when the
server cannot calculate changes since it, the arrivals are read again by ``receivedAt``
since the last judging (bounded by ``LOOKBACK_S``), and that is logged once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings
from mailroom.errors import JmapSetError, MailboxGone, MailroomError, PassDeadline
from mailroom.jmap import methods as m
from mailroom.jmap import query as q
from mailroom.jmap.client import MAX_CHANGES, JmapClient
from mailroom.jmap.models import Email, MailboxesSeen
from mailroom.routing.judge import (
    Arrival,
    Judgment,
    Placement,
    judge,
    move_patch,
    placement,
    unscreened_by_mail,
)
from mailroom.routing.model import routing
from mailroom.triage.engine import Triager
from mailroom.triage.guard import Writer
from mailroom.triage.lookup import contact_groups
from mailroom.triage.report import PassReport
from mailroom.triage.sender import SenderId

log = structlog.get_logger("mailroom.routing")

Mode = Literal["audit", "enforce", "off"]
RECENT_KEPT = 20  # worker.json keeps the newest misroutes
LOOKBACK_S = 86400.0  # the fallback by receivedAt reads at most a day back
SKEW_S = 60.0  # and a minute before the last judging, for clocks that disagree


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def parse_iso(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts since the worker started, and the newest misroutes (pure)."""

    routed: int = 0
    misrouted: int = 0
    moved: int = 0
    not_screened: int = 0
    recent: tuple[Mapping[str, Any], ...] = ()

    def after(
        self, judgments: Sequence[Judgment], moved: int, view: Placement, now: float
    ) -> Tally:
        misrouted = [j for j in judgments if j.verdict == "misrouted"]
        entries = tuple(misroute_entry(j, view, now) for j in misrouted)
        return Tally(
            routed=self.routed + sum(j.verdict == "routed" for j in judgments),
            misrouted=self.misrouted + len(misrouted),
            moved=self.moved + moved,
            not_screened=self.not_screened + sum(not j.screened for j in judgments),
            recent=(*self.recent, *entries)[-RECENT_KEPT:],
        )

    def doc(self, mode: str, state: str | None, judged_at: float | None) -> dict[str, Any]:
        """worker.json's ``routing`` section (/healthz passes it through)."""
        return {
            "mode": mode,
            "routed": self.routed,
            "misrouted": self.misrouted,
            "moved": self.moved,
            "not_screened": self.not_screened,
            "recent": [dict(e) for e in self.recent],
            "email_state": state,
            "judged_at": None if judged_at is None else iso(judged_at),
        }


def misroute_entry(j: Judgment, view: Placement, now: float) -> dict[str, Any]:
    """One misroute for worker.json: who, by which rule, where: no message content."""
    return {
        "group": j.group,
        "sender": str(j.sender),
        "wanted": view.named(j.want),
        "landed": view.named(j.landed),
        "time": iso(now),
    }


def resume_point(previous: Mapping[str, Any] | None) -> tuple[str | None, float | None]:
    """The Email state and time judged last, from a previous worker.json (tolerant).

    Without a state the last successful pass of a previous worker is the time to
    read arrivals from (by ``receivedAt``); without either, judging starts now.
    """
    section = (previous or {}).get("routing")
    if not isinstance(section, Mapping) or not section.get("email_state"):
        return None, parse_iso((previous or {}).get("last_successful_poll"))
    state = section.get("email_state")
    return (state if isinstance(state, str) and state else None), parse_iso(
        section.get("judged_at")
    )


def arrival_of(email: Email) -> Arrival:
    return Arrival(email.id, SenderId.of_email(email), email.mailbox_ids, email.received_at or "")


class ArrivalRouter:
    """Judges (and under ``enforce`` routes) the new mail after each triage pass."""

    def __init__(
        self,
        settings: Settings,
        jmap: JmapClient,
        carddav: CardDavClient,
        triager: Triager,
        *,
        previous: Mapping[str, Any] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.mode: Mode = settings.routing
        self._settings, self._jmap, self._carddav, self._triager = settings, jmap, carddav, triager
        self._wall = wall
        self._since, self._judged_at = resume_point(previous)
        self._view: Placement | None = None
        self._tally = Tally()
        self._fallback_logged = False
        self._own: list[str] | None = None  # the account's identities, read once

    @property
    def doc(self) -> dict[str, Any]:
        return self._tally.doc(self.mode, self._since, self._judged_at)

    def run_pass(self, trigger: str) -> PassReport:
        """The triage pass, then the arrivals; the moves join the pass's writes."""
        if self.mode == "off":
            return replace(self._triager.run_pass(trigger), routing={"mode": "off"})
        self._triager.arrivals_since = self._since
        report = self._triager.run_pass(trigger)
        try:
            self._route(report)
        except PassDeadline:
            raise
        except MailroomError as exc:  # judged again next pass: the state did not advance
            self._view = None
            log.error("routing_failed", error=f"{type(exc).__name__}: {exc}")
        return replace(report, writes=(*report.writes, *self._jmap.take_writes()), routing=self.doc)

    # ----------------------------------------------------------------- reading
    def _route(self, report: PassReport) -> None:
        now = self._wall()
        if self._since is None and self._judged_at is None:
            self._since, self._judged_at = report.email_state_scanned, now
            log.info("routing_started", mode=self.mode, email_state=self._since)
            return
        changed = report.arrivals
        if self._since is None or changed is None or changed.changes is None:
            why = "no_saved_state" if self._since is None else "changes"
            self._by_time(now, why, report.mailboxes_seen)
            return
        fresh = bool(report.writes)  # triage moved mail since the read: read it again
        while changed.changes is not None:
            emails = self._reread(changed.emails) if fresh else changed.emails
            self._judge(emails, now, report.mailboxes_seen)
            self._since, self._judged_at = changed.changes.new_state, now
            if not changed.changes.has_more:
                return
            changed, fresh = self._jmap.changed_emails(self._since), False
        self._by_time(now, "changes", report.mailboxes_seen)

    def _reread(self, emails: Sequence[Email]) -> tuple[Email, ...]:
        """The emails as they are now; those that carried a triage label when the pass
        read them stay as read (not screened: triage handled them, its filing stands)."""
        labels = self._placement(emails).labels
        labelled = tuple(e for e in emails if e.mailbox_ids & labels)
        ids = [e.id for e in emails if not e.mailbox_ids & labels]
        return (*labelled, *self._jmap.get_emails(ids, properties=m.ARRIVAL_PROPERTIES))

    def _by_time(self, now: float, why: str, seen: MailboxesSeen | None) -> None:
        """The fallback: every email received since the last judging (bounded), paged."""
        since = max(self._judged_at or now, now - LOOKBACK_S + SKEW_S) - SKEW_S
        filter = {"after": iso(since).replace("+00:00", "Z")}
        if not self._fallback_logged:
            self._fallback_logged = True
            log.warning("routing_fallback", reason=why, received_after=filter["after"])
        limit = min(MAX_CHANGES, self._jmap.session.max_objects_in_get)
        position, pages, state = 0, 0, None
        while True:
            page = self._jmap.query_page(
                filter, position=position, limit=limit, properties=m.ARRIVAL_PROPERTIES
            )
            state = state or page.state
            self._judge(page.emails, now, seen)
            pages += 1
            if q.is_last_page(page.page, limit):
                break
            q.check_page_count(pages, filter)
            position = q.next_position(page.page)
        self._since, self._judged_at = state, now

    # ---------------------------------------------------------------- judging
    def _placement(self, emails: Sequence[Email]) -> Placement:
        seen = {box for e in emails for box in e.mailbox_ids}
        if self._view is None or not seen <= self._view.names.keys():
            mailboxes, _ = self._jmap.get_mailboxes()
            model = routing(
                self._settings.categories, screener_mailbox=self._settings.screener_mailbox
            )
            self._view = placement(
                model,
                mailboxes,
                labels=[c.label for c in self._settings.categories],
                identities=self._identities(),
            )
        return self._view

    def _identities(self) -> list[str]:
        if self._own is None:
            self._own = self._jmap.identities()
        return self._own

    def _judge(
        self,
        emails: Sequence[Email],
        now: float,
        seen: MailboxesSeen | None,
    ) -> None:
        """``seen``: the mailboxes the pass's scan read, where the move's guard starts."""
        if not emails:
            return
        view = self._placement(emails)
        arrivals = [arrival_of(e) for e in emails]
        asked = [a for a in arrivals if unscreened_by_mail(a, view) is None]
        senders = sorted({a.sender for a in asked if a.sender is not None})
        groups = contact_groups(self._carddav, senders, view.groups)
        judgments = [
            judge(a, groups.get(a.sender) if a.sender is not None else None, view) for a in arrivals
        ]
        moved = self._move(judgments, view, seen)
        self._tally = self._tally.after(judgments, moved, view, now)
        log.info(
            "arrivals_judged",
            arrivals=len(judgments),
            routed=sum(j.verdict == "routed" for j in judgments),
            misrouted=sum(j.verdict == "misrouted" for j in judgments),
            not_screened=sum(not j.screened for j in judgments),
            moved=moved,
        )

    # ----------------------------------------------------------------- moving
    def _move(
        self,
        judgments: Sequence[Judgment],
        view: Placement,
        seen: MailboxesSeen | None,
    ) -> int:
        """Under ``enforce`` one batched Email/set; every refused email is logged as an error."""
        misrouted = [j for j in judgments if j.verdict == "misrouted"]
        refused: set[str] = set()
        if self.mode == "enforce" and misrouted:
            # Guarded like triage's filing (triage/guard.py): never into a mailbox gone
            # from the mailboxes the pass's scan saw (a guard refused if any changed since)
            writer = Writer(self._jmap, screener=view.screener, error=None, seen=seen)
            try:
                writer.update({j.email_id: move_patch(j) for j in misrouted})
            except JmapSetError as exc:
                refused = set(exc.failures)
                for email_id, why in exc.failures.items():
                    log.error("arrival_move_refused", email_id=email_id, error=str(why.get("type")))
            except MailboxGone as exc:  # nothing moved: the mail stays where it landed
                refused = {j.email_id for j in misrouted}
                log.error("arrival_move_refused", emails=len(refused), error=str(exc))
            refused |= writer.unfiled | writer.lost
        for j in misrouted:
            moved = self.mode == "enforce" and j.email_id not in refused
            (log.info if moved else log.warning)(
                "arrival_misrouted",
                sender=str(j.sender),
                group=j.group,
                wanted=view.named(j.want),
                landed=view.named(j.landed),
                moved=moved,
            )
        return len(misrouted) - len(refused) if self.mode == "enforce" else 0
