"""The routing as `mailroom check` observes it (pure): per group, and for strangers, the
newest judged arrival decides; each misrouted one is one problem naming the rule."""

from __future__ import annotations

from datetime import UTC, datetime

from mailroom.categories import DEFAULT_CATEGORIES
from mailroom.jmap.models import Mailbox
from mailroom.routing import observed
from mailroom.routing.judge import Arrival, Judgment, judge, placement
from mailroom.routing.model import routing
from mailroom.triage.sender import SenderId

MODEL = routing(DEFAULT_CATEGORIES, screener_mailbox="Screener")
ROLES = {"Inbox": "inbox", "Junk": "junk", "Trash": "trash"}
NAMES = (*ROLES, "Screener", "Imbox", "Feed", "Paper Trail", "Jail", "Person", "Billboard")
VIEW = placement(
    MODEL,
    [Mailbox(f"id-{n}", n, None, ROLES.get(n)) for n in (*NAMES, "Truck", "Receipts2024")],
)
NOW = datetime(2026, 12, 3, 13, 0, 0, tzinfo=UTC)
GROUPS = {"feed@x.example": "Feed", "person@x.example": "Person", "imbox@x.example": "Imbox"}


def ids(*names: str) -> frozenset[str]:
    return frozenset(f"id-{n}" for n in names)


def judged(sender: str, minute: int, *boxes: str) -> tuple[Arrival, Judgment]:
    """An arrival at 12:``minute`` from ``sender`` (a stranger unless in GROUPS), judged."""
    a = Arrival(
        f"e-{sender}-{minute}", SenderId.of(sender), ids(*boxes), f"2026-12-03T12:{minute:02}:00Z"
    )
    groups = frozenset({GROUPS[sender]}) if sender in GROUPS else None
    return a, judge(a, groups, VIEW)


def lines(*pairs: tuple[Arrival, Judgment], mode: str = "audit") -> list[tuple[str, str]]:
    return [
        (level, text)
        for level, text in observed.findings(observed.observe(pairs, VIEW), VIEW, mode)
    ]


def test_a_strangers_newest_mail_in_the_inbox_is_the_missing_screener_catch_all() -> None:
    ((level, text),) = lines(judged("who@nowhere.example", 5, "Inbox"))
    assert level == "problem"
    assert text == (
        "routing: the newest email from a stranger (who@nowhere.example, 2026-12-03 12:05 UTC) "
        "is in Inbox, not Screener: the Screener catch-all seems missing; `mailroom setup` "
        "shows the rules, or set MAILROOM_ROUTING=enforce to have mailroom route new mail itself"
    )


def test_a_triaged_senders_newest_mail_in_the_inbox_names_the_rule_for_its_group() -> None:
    ((level, text),) = lines(judged("feed@x.example", 5, "Inbox"))
    assert level == "problem"
    assert "the newest email from contact group Feed (feed@x.example, " in text
    assert "is in Inbox, not Feed: the rule for contact group Feed seems missing;" in text


def test_the_newest_arrival_of_a_group_decides() -> None:
    older_misrouted = judged("feed@x.example", 1, "Inbox")
    newer_routed = judged("feed@x.example", 2, "Feed")
    assert [level for level, _ in lines(newer_routed, older_misrouted)] == ["ok"]
    assert [level for level, _ in lines(older_misrouted, newer_routed)] == ["ok"]  # by time
    older_routed = judged("feed@x.example", 1, "Feed")
    newer_misrouted = judged("feed@x.example", 2, "Inbox")
    assert [level for level, _ in lines(older_routed, newer_misrouted)] == ["problem"]


def test_within_one_second_a_misrouted_arrival_decides() -> None:
    routed, misrouted = judged("feed@x.example", 2, "Feed"), judged("feed@x.example", 2, "Inbox")
    assert [level for level, _ in lines(routed, misrouted)] == ["problem"]
    assert [level for level, _ in lines(misrouted, routed)] == ["problem"]


def test_mail_that_is_not_screened_decides_nothing() -> None:
    misrouted = judged("feed@x.example", 1, "Inbox")
    newer_unscreened = [
        judged("feed@x.example", 2, "Junk"),  # in Junk
        judged("feed@x.example", 3, "Receipts2024"),  # filed by a rule of the user's
        judged("feed@x.example", 4, "Trash"),
    ]
    ((level, text),) = lines(misrouted, *newer_unscreened)
    assert level == "problem"
    assert "(feed@x.example, 2026-12-03 12:01 UTC)" in text


def test_only_unscreened_mail_is_a_note_not_a_verdict() -> None:
    a = Arrival("e1", SenderId.of("friend@old.example"), ids("Inbox"), "2026-12-03T12:00:00Z")
    outside = (a, judge(a, frozenset(), VIEW))  # a contact in none of the groups
    junk = judged("who@nowhere.example", 1, "Junk")
    ((level, text),) = lines(outside, junk)
    assert level == "note"
    assert text == (
        "routing: no screened mail arrived in the last 7 days (2 emails read), "
        "so the rules are not judged yet"
    )


def test_one_problem_per_group_in_routing_order_strangers_last() -> None:
    found = lines(
        judged("who@nowhere.example", 9, "Inbox"),
        judged("feed@x.example", 8, "Inbox"),
        judged("feed@x.example", 7, "Inbox"),
        judged("person@x.example", 6, "Inbox"),
        judged("imbox@x.example", 5, "Imbox", "Inbox"),  # routed: Imbox keeps the Inbox
    )
    assert [level for level, _ in found] == ["problem"] * 3
    assert ["rule for contact group Person" in t for _, t in found] == [True, False, False]
    assert ["rule for contact group Feed" in t for _, t in found] == [False, True, False]
    assert "the Screener catch-all" in found[2][1]


def test_mail_filed_as_another_groups_rule_files_it_is_a_misordered_rule() -> None:
    ((_, text),) = lines(judged("person@x.example", 1, "Imbox", "Inbox"))
    assert (
        "is in Imbox, Inbox, not Imbox, Person: the rule for contact group Person seems "
        "misordered: the rule for contact group Imbox filed it first;"
    ) in text


def test_a_rule_that_does_not_archive_keeps_the_mail_in_the_inbox() -> None:
    ((_, text),) = lines(judged("feed@x.example", 1, "Feed", "Inbox"))
    assert "the rule for contact group Feed seems to keep it in the Inbox" in text


def test_mail_in_another_of_mailrooms_mailboxes_is_a_missing_or_misordered_rule() -> None:
    ((_, text),) = lines(judged("feed@x.example", 1, "Screener"))
    assert (
        "is in Screener, not Feed: the rule for contact group Feed seems missing or misordered;"
    ) in text


def test_mail_in_what_another_groups_rule_files_names_that_rule() -> None:
    ((_, text),) = lines(judged("feed@x.example", 1, "Jail"))
    assert "the rule for contact group Jail filed it first" in text


def test_a_rule_that_lets_others_apply_after_it_adds_their_mailboxes() -> None:
    ((_, text),) = lines(judged("feed@x.example", 1, "Feed", "Jail"))
    assert 'seems to let other rules apply too ("Continue to apply other rules")' in text


def test_all_routed_is_one_ok_line_naming_what_was_judged() -> None:
    ((level, text),) = lines(
        judged("feed@x.example", 3, "Feed"),
        judged("who@nowhere.example", 2, "Screener"),
        judged("imbox@x.example", 1, "Imbox", "Inbox"),
        judged("someone@x.example", 0, "Junk"),
    )
    assert level == "ok"
    assert text == (
        "routing: the newest email from contact group Imbox, contact group Feed and strangers "
        "is where the rules put it (3 of 4 emails of the last 7 days screened)"
    )


def test_under_enforce_the_fix_is_the_running_service() -> None:
    ((_, text),) = lines(judged("feed@x.example", 1, "Inbox"), mode="enforce")
    assert text.endswith("under routing: enforce mailroom moves it: is `mailroom run` running?")
    ((level, text),) = lines(judged("feed@x.example", 1, "Feed"), mode="enforce")
    assert level == "ok"
    assert text.endswith("; routing: enforce moves what they miss")


def test_under_enforce_arrivals_younger_than_a_minute_are_not_judged_yet() -> None:
    def at(stamp: str) -> Arrival:
        return Arrival(stamp, SenderId.of("a@x.example"), ids("Inbox"), stamp)

    young, old = at("2026-12-03T12:59:30Z"), at("2026-12-03T12:58:59Z")
    assert observed.settled([young, old], now=NOW, mode="enforce") == [old]
    assert observed.settled([young, old], now=NOW, mode="audit") == [young, old]


def test_the_window_is_the_last_seven_days_as_a_utc_date() -> None:
    assert observed.window_start(NOW) == "2026-11-26T13:00:00Z"
