"""The routing as observed: which rule the mail that arrived shows missing (pure).

`mailroom check` reads the recent arrivals (the last ``WINDOW``, every mailbox, the
newest ``NEWEST``), judges each as it stands now (``judge.py``) and hands the
judgments here. Per contact group, and for strangers (the Screener catch-all), the
newest *screened* arrival decides: routed, the rule works now (an older misroute came
before a fix, or was moved since by ``routing: enforce``); misrouted, one ``Problem``
naming the rule that seems missing or misordered. Mail that is not screened (Junk,
the user's own mailboxes, contacts outside the groups ...) decides nothing.

Under ``enforce`` mailroom moves new mail within about a second of its arrival, so
arrivals younger than ``SETTLE`` are left out: they may not be moved yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from mailroom.routing.judge import Arrival, Judgment, Placement

WINDOW = timedelta(days=7)  # how far back check looks for new mail
NEWEST = 500  # at most this many arrivals judged, newest first (one JMAP page)
SETTLE = timedelta(seconds=60)  # under enforce, younger arrivals may not be moved yet

Suspect = Literal["missing", "misordered", "keeps_inbox", "continues", "wrong"]
Level = Literal["ok", "note", "problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """The newest screened arrival of ``group`` (None: strangers) is misrouted."""

    group: str | None
    arrival: Arrival
    judgment: Judgment
    suspect: Suspect
    instead: str | None = None  # misordered: the group whose rule filed it


@dataclass(frozen=True, slots=True)
class Observed:
    read: int  # arrivals read (at most NEWEST)
    judged: int  # screened arrivals among them
    groups: tuple[str | None, ...]  # the groups with a screened arrival, routing order
    problems: tuple[Problem, ...]  # routing order, strangers last


def utc_date(moment: datetime) -> str:
    """A JMAP UTCDate (RFC 8620 §1.4) of an aware time: ``2026-12-03T13:02:11Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_start(now: datetime) -> str:
    """The ``after`` of check's read: ``WINDOW`` before ``now`` (an aware UTC time)."""
    return utc_date(now - WINDOW)


def settled(arrivals: Iterable[Arrival], *, now: datetime, mode: str) -> list[Arrival]:
    """The arrivals to judge: under ``enforce`` those older than ``SETTLE``, else all."""
    if mode != "enforce":
        return list(arrivals)
    cutoff = utc_date(now - SETTLE)
    return [a for a in arrivals if not a.received_at or a.received_at <= cutoff]


def newest_first(judged: Iterable[tuple[Arrival, Judgment]]) -> list[tuple[Arrival, Judgment]]:
    """By ``receivedAt``, newest first. ``receivedAt`` counts whole seconds: among
    arrivals of the same second a misrouted one comes first, so a rule missing now is
    not hidden behind an email routed (or moved) in the same second."""
    return sorted(
        judged, key=lambda pair: (pair[0].received_at, pair[1].verdict == "misrouted"), reverse=True
    )


def observe(judged: Sequence[tuple[Arrival, Judgment]], view: Placement) -> Observed:
    """Per group and for strangers, the newest screened arrival decides."""
    newest: dict[str | None, tuple[Arrival, Judgment]] = {}
    for arrival, judgment in newest_first(judged):
        if judgment.screened:
            newest.setdefault(judgment.group, (arrival, judgment))
    order = [*view.groups, None]
    seen = tuple(g for g in order if g in newest)
    problems = tuple(
        suspect(arrival, judgment, view)
        for arrival, judgment in (newest[g] for g in seen)
        if judgment.verdict == "misrouted"
    )
    judged_count = sum(1 for _a, j in judged if j.screened)
    return Observed(len(judged), judged_count, seen, problems)


def suspect(arrival: Arrival, judgment: Judgment, view: Placement) -> Problem:
    """What the misroute says about the rules, from where the email landed."""
    landed, want = judgment.landed, judgment.want
    if landed == {view.inbox}:
        return Problem(judgment.group, arrival, judgment, "missing")
    for route in view.routes:
        filed = {*route.mailbox_ids, *([view.inbox] if route.keep_in_inbox else [])}
        if route.group != judgment.group and landed == filed:
            return Problem(judgment.group, arrival, judgment, "misordered", route.group)
    if want < landed:
        kept = landed - want == {view.inbox}
        return Problem(judgment.group, arrival, judgment, "keeps_inbox" if kept else "continues")
    return Problem(judgment.group, arrival, judgment, "wrong")


# -- text -------------------------------------------------------------------------------------


def rule_name(group: str | None) -> str:
    return "the Screener catch-all" if group is None else f"the rule for contact group {group}"


def _who(group: str | None) -> str:
    return "a stranger" if group is None else f"contact group {group}"


def _when(received_at: str) -> str:
    try:
        moment = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return received_at or "unknown time"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _names(ids: Iterable[str], view: Placement) -> str:
    return ", ".join(view.named(ids)) or "no mailbox"


def _diagnosis(p: Problem) -> str:
    rule = rule_name(p.group)
    if p.suspect == "missing":
        return f"{rule} seems missing"
    if p.suspect == "misordered":
        return f"{rule} seems misordered: {rule_name(p.instead)} filed it first"
    if p.suspect == "keeps_inbox":
        return f"{rule} seems to keep it in the Inbox instead of archiving it"
    if p.suspect == "continues":
        return f'{rule} seems to let other rules apply too ("Continue to apply other rules")'
    return f"{rule} seems missing or misordered"


def fix_hint(mode: str) -> str:
    if mode == "enforce":
        return "under routing: enforce mailroom moves it: is `mailroom run` running?"
    return (
        "`mailroom setup` shows the rules, or set MAILROOM_ROUTING=enforce to have "
        "mailroom route new mail itself"
    )


def problem_text(p: Problem, view: Placement, mode: str) -> str:
    """One line: whose newest email landed where instead of where, which rule, the fix."""
    j = p.judgment
    return (
        f"routing: the newest email from {_who(p.group)} ({j.sender}, "
        f"{_when(p.arrival.received_at)}) is in {_names(j.landed, view)}, "
        f"not {_names(j.want, view)}: {_diagnosis(p)}; {fix_hint(mode)}"
    )


def _groups_text(groups: Sequence[str | None]) -> str:
    named = [f"contact group {g}" for g in groups if g is not None]
    if None in groups:
        named.append("strangers")
    if len(named) == 1:
        return named[0]
    return f"{', '.join(named[:-1])} and {named[-1]}"


def findings(seen: Observed, view: Placement, mode: str) -> list[tuple[Level, str]]:
    """check's lines: one problem per misrouted group, else one ok (or a note)."""
    days = WINDOW.days
    capped = " (the newest ones)" if seen.read >= NEWEST else ""
    if seen.problems:
        return [("problem", problem_text(p, view, mode)) for p in seen.problems]
    if not seen.judged:
        return [
            (
                "note",
                f"routing: no screened mail arrived in the last {days} days "
                f"({seen.read} emails read), so the rules are not judged yet",
            )
        ]
    enforced = "; routing: enforce moves what they miss" if mode == "enforce" else ""
    return [
        (
            "ok",
            f"routing: the newest email from {_groups_text(seen.groups)} is where the rules "
            f"put it ({seen.judged} of {seen.read} emails of the last {days} days{capped} "
            f"screened){enforced}",
        )
    ]
