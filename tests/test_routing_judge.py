"""The judgment of a new email against the routing model (pure): every verdict, every
reason an arrival is not screened, every route shape, and the move of a misrouted one."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.categories import DEFAULT_CATEGORIES
from mailroom.errors import SetupNeededError
from mailroom.jmap.methods import email_update
from mailroom.jmap.models import Mailbox
from mailroom.routing import judge as judging
from mailroom.routing.judge import (
    Arrival,
    Judgment,
    RouteIds,
    judge,
    placement,
    unscreened_by_mail,
)
from mailroom.routing.model import routing
from mailroom.triage.sender import SenderId

MODEL = routing(DEFAULT_CATEGORIES, screener_mailbox="Screener")
ROLES = {"Inbox": "inbox", "Junk": "junk", "Trash": "trash", "Sent": "sent", "Drafts": "drafts"}
NAMES = (
    *ROLES,
    "Screener",
    "Imbox",
    "Feed",
    "Paper Trail",
    "Jail",
    "Person",
    "Billboard",
    "Truck",
    "Archive",
    "Receipts2024",
    "@ToFeed",
)
MAILBOXES = [Mailbox(f"id-{n}", n, None, ROLES.get(n)) for n in NAMES]
VIEW = placement(MODEL, MAILBOXES, labels=["@ToFeed"], identities=[" Me@Example.COM "])
STRANGER = None  # no contact


def move_patch(j: Judgment) -> dict[str, Any]:
    """The move as the JMAP client writes it."""
    return email_update(judging.move_patch(j))


def ids(*names: str) -> frozenset[str]:
    return frozenset(f"id-{n}" for n in names)


def arrival(*boxes: str, sender: str | None = "bob@example.com") -> Arrival:
    return Arrival(
        "e1", SenderId.of(sender) if sender else None, ids(*boxes), "2026-12-03T10:00:00Z"
    )


def test_the_placement_resolves_every_route_in_routing_order() -> None:
    assert VIEW.routes[0] == RouteIds("Person", ("id-Person", "id-Imbox"), keep_in_inbox=False)
    assert VIEW.routes[3] == RouteIds("Imbox", ("id-Imbox",), keep_in_inbox=True)
    assert VIEW.groups == MODEL.groups
    assert (VIEW.screener, VIEW.inbox) == ("id-Screener", "id-Inbox")
    assert VIEW.special == ids("Junk", "Trash", "Sent", "Drafts")
    assert VIEW.labels == ids("@ToFeed")
    assert VIEW.identities == {SenderId("me@example.com")}
    assert VIEW.managed == ids(
        "Inbox", "Screener", "Imbox", "Feed", "Paper Trail", "Jail", "Person", "Billboard", "Truck"
    )


def test_the_placement_names_every_missing_mailbox() -> None:
    without = [m for m in MAILBOXES if m.name not in ("Feed", "Screener", "Inbox")]
    with pytest.raises(SetupNeededError) as caught:
        placement(MODEL, without)
    assert "'Feed'" in str(caught.value)
    assert "'Screener'" in str(caught.value)
    assert "the Inbox (role inbox)" in str(caught.value)


def test_a_strangers_mail_in_the_screener_only_is_routed() -> None:
    j = judge(arrival("Screener"), STRANGER, VIEW)
    assert j == Judgment(
        "e1", SenderId("bob@example.com"), "routed", ids("Screener"), ids("Screener"), None
    )


def test_a_strangers_mail_left_in_the_inbox_is_misrouted_to_the_screener() -> None:
    j = judge(arrival("Inbox"), STRANGER, VIEW)
    assert (j.verdict, j.want, j.landed, j.group) == (
        "misrouted",
        ids("Screener"),
        ids("Inbox"),
        None,
    )
    assert move_patch(j) == {"mailboxIds/id-Screener": True, "mailboxIds/id-Inbox": None}


def test_a_strangers_mail_in_the_screener_and_the_inbox_is_misrouted() -> None:
    j = judge(arrival("Screener", "Inbox"), STRANGER, VIEW)
    assert j.verdict == "misrouted"
    assert move_patch(j) == {"mailboxIds/id-Inbox": None}


@pytest.mark.parametrize(
    ("groups", "group", "want"),
    [
        pytest.param({"Feed"}, "Feed", ("Feed",), id="root"),
        pytest.param({"Jail"}, "Jail", ("Jail",), id="jail"),
        pytest.param(
            {"Billboard", "Paper Trail"}, "Billboard", ("Billboard", "Paper Trail"), id="child"
        ),
        pytest.param({"Person", "Imbox"}, "Person", ("Person", "Imbox"), id="child-of-kept"),
        pytest.param({"Imbox"}, "Imbox", ("Imbox", "Inbox"), id="add_to_inbox"),
    ],
)
def test_each_route_shape_wants_its_mailboxes_and_the_inbox_only_when_kept(
    groups: set[str], group: str, want: tuple[str, ...]
) -> None:
    landed = judge(arrival(*want), frozenset(groups), VIEW)
    assert (landed.verdict, landed.group, landed.want) == ("routed", group, ids(*want))
    inboxed = judge(arrival("Inbox"), frozenset(groups), VIEW)
    assert (inboxed.verdict, inboxed.group, inboxed.want) == ("misrouted", group, ids(*want))
    expected = {f"mailboxIds/id-{n}": True for n in want if n != "Inbox"}
    if "Inbox" not in want:
        expected["mailboxIds/id-Inbox"] = None
    assert move_patch(inboxed) == expected


def test_the_first_route_in_routing_order_wins_over_an_ancestors() -> None:
    """A child's sender is in the parent's group too; the child's route applies."""
    j = judge(arrival("Paper Trail"), frozenset({"Paper Trail", "Truck"}), VIEW)
    assert (j.verdict, j.group, j.want) == ("misrouted", "Truck", ids("Truck", "Paper Trail"))
    assert move_patch(j) == {"mailboxIds/id-Truck": True}


def test_a_triaged_senders_mail_in_the_screener_is_misrouted() -> None:
    j = judge(arrival("Screener"), frozenset({"Feed"}), VIEW)
    assert (j.verdict, j.want) == ("misrouted", ids("Feed"))
    assert move_patch(j) == {"mailboxIds/id-Feed": True, "mailboxIds/id-Screener": None}


def test_a_kept_routes_mail_without_the_inbox_is_misrouted() -> None:
    j = judge(arrival("Imbox"), frozenset({"Imbox"}), VIEW)
    assert j.verdict == "misrouted"
    assert move_patch(j) == {"mailboxIds/id-Inbox": True}


def test_unmanaged_groups_do_not_count_only_mailrooms_do() -> None:
    j = judge(arrival("Inbox"), frozenset({"Friends", "Feed"}), VIEW)
    assert (j.verdict, j.group) == ("misrouted", "Feed")


@pytest.mark.parametrize(
    ("boxes", "groups", "sender", "reason"),
    [
        pytest.param(("Inbox",), frozenset({"Friends"}), "bob@x.com", "contact_outside_groups"),
        pytest.param(("Inbox",), frozenset(), "bob@x.com", "contact_outside_groups", id="no-group"),
        pytest.param(("Receipts2024",), STRANGER, "bob@x.com", "filed_by_user_rule"),
        pytest.param(("Archive", "Inbox"), frozenset({"Feed"}), "bob@x.com", "filed_by_user_rule"),
        pytest.param((), STRANGER, "bob@x.com", "filed_by_user_rule", id="no-mailbox"),
        pytest.param(("Junk",), STRANGER, "bob@x.com", "special_mailbox", id="junk"),
        pytest.param(("Trash",), frozenset({"Feed"}), "bob@x.com", "special_mailbox", id="trash"),
        pytest.param(("Sent",), STRANGER, "bob@x.com", "special_mailbox", id="sent"),
        pytest.param(("Drafts", "Inbox"), STRANGER, "bob@x.com", "special_mailbox", id="drafts"),
        pytest.param(("@ToFeed", "Inbox"), STRANGER, "bob@x.com", "triage_label", id="label"),
        pytest.param(("Inbox",), STRANGER, "ME@example.com", "own_identity"),
        pytest.param(("Inbox",), STRANGER, None, "no_from"),
        pytest.param(("Junk",), STRANGER, None, "no_from", id="no-from-first"),
    ],
)
def test_not_screened_arrivals_want_nothing_and_say_why(
    boxes: tuple[str, ...], groups: frozenset[str] | None, sender: str | None, reason: str
) -> None:
    j = judge(arrival(*boxes, sender=sender), groups, VIEW)
    assert (j.verdict, j.reason, j.want, j.group) == ("not_screened", reason, frozenset(), None)
    assert j.landed == ids(*boxes)
    assert not j.screened
    with pytest.raises(ValueError, match="only a misrouted arrival"):
        move_patch(j)


def test_a_routed_arrival_has_no_move() -> None:
    j = judge(arrival("Feed"), frozenset({"Feed"}), VIEW)
    assert j.screened
    assert j.reason is None
    with pytest.raises(ValueError, match="only a misrouted arrival"):
        move_patch(j)


def test_a_move_never_leaves_an_email_without_a_mailbox() -> None:
    empty = Judgment("e1", None, "misrouted", frozenset(), ids("Inbox"), None)
    with pytest.raises(ValueError, match="at least one mailbox"):
        move_patch(empty)


def test_names_are_for_logs_and_fall_back_to_the_id() -> None:
    assert VIEW.named(ids("Inbox", "Feed") | {"gone"}) == ["Feed", "Inbox", "gone"]


def test_an_account_without_the_special_roles_judges_the_same() -> None:
    bare = [m for m in MAILBOXES if m.role in (None, "inbox")]
    view = placement(MODEL, bare)
    assert view.special == frozenset()
    assert view.labels == frozenset()
    assert judge(arrival("Inbox"), STRANGER, view).verdict == "misrouted"


def test_only_arrivals_screened_by_mail_need_their_sender_looked_up() -> None:
    assert unscreened_by_mail(arrival("Inbox"), VIEW) is None
    assert unscreened_by_mail(arrival("Feed", "Paper Trail"), VIEW) is None
    assert unscreened_by_mail(arrival("Junk"), VIEW) == "special_mailbox"
    assert unscreened_by_mail(arrival("Archive"), VIEW) == "filed_by_user_rule"
    assert unscreened_by_mail(arrival("Inbox", sender=None), VIEW) == "no_from"
