"""`mailroom setup`: the pure plan and the Mailbox/set it sends (rules: test_routing.py)."""

from __future__ import annotations

from mailroom.categories import category
from mailroom.config import Settings
from mailroom.jmap.models import Mailbox
from mailroom.ops.setup import Item, mailbox_creates, plan, print_plan

DEFAULT_MAILBOXES = [
    "Screener",
    "Imbox",
    "Feed",
    "Paper Trail",
    "Jail",
    "Person",
    "Billboard",
    "Truck",
    "@ToImbox",
    "@ToFeed",
    "@ToPaperTrail",
    "@ToJail",
    "@ToPerson",
    "@ToBillboard",
    "@ToTruck",
    "@MailroomError",
    "@MailroomWarning",
]
DEFAULT_GROUPS = [
    "Imbox",
    "Feed",
    "Paper Trail",
    "Jail",
    "Person",
    "Billboard",
    "Truck",
    "Mailroom",
]


def boxes(*names: str, parent: str | None = None) -> list[Mailbox]:
    return [Mailbox(f"id-{n}", n, parent, None) for n in names]


def statuses(items: tuple[Item, ...]) -> dict[str, str]:
    return {i.name: i.status for i in items}


def test_nothing_exists_plans_every_mailbox_and_group_in_order() -> None:
    p = plan(Settings(), boxes("Inbox"), [])
    assert [i.name for i in p.of_kind("mailbox")] == DEFAULT_MAILBOXES
    assert [i.name for i in p.of_kind("group")] == DEFAULT_GROUPS
    assert all(i.status == "create" for i in p.items)
    assert p.items[0] == Item("mailbox", "Screener", "create", "the Screener")
    assert Item("mailbox", "@ToFeed", "create", "triage label of Feed") in p.items
    assert Item("group", "Mailroom", "create", "provenance group") in p.items


def test_everything_exists_plans_nothing_to_create() -> None:
    p = plan(Settings(), boxes("Inbox", *DEFAULT_MAILBOXES), DEFAULT_GROUPS)
    assert p.to_create == ()
    assert len(p.items) == len(DEFAULT_MAILBOXES) + len(DEFAULT_GROUPS)


def test_partial_plans_only_the_missing() -> None:
    existing = [*boxes("Inbox", "Feed", "@ToFeed"), Mailbox("s", "Screener", "id-Inbox", None)]
    p = plan(Settings(), existing, ["Feed", "Unrelated"])
    got = statuses(p.of_kind("mailbox"))
    assert got["Screener"] == "exists"  # nested Inbox/Screener is found by leaf name
    assert got["Feed"] == got["@ToFeed"] == "exists"
    assert got["Imbox"] == got["@MailroomError"] == "create"
    groups = statuses(p.of_kind("group"))
    assert groups["Feed"] == "exists"
    assert groups["Imbox"] == groups["Mailroom"] == "create"
    assert "Unrelated" not in groups


def test_warning_label_is_not_planned_when_warnings_are_disabled() -> None:
    p = plan(Settings(warnings_enabled=False), [], [])
    assert "@MailroomWarning" not in statuses(p.items)


def test_shared_names_are_planned_once() -> None:
    cats = (
        category("Paper Trail"),
        category("Receipts", parent="Paper Trail", contact_group="Paper Trail"),
    )
    p = plan(Settings(categories=cats, screener_mailbox="Paper Trail"), [], [])
    assert [i.name for i in p.of_kind("group")] == ["Paper Trail", "Mailroom"]
    assert [i.name for i in p.of_kind("mailbox")].count("Paper Trail") == 1


def test_nested_names_plan_their_missing_parents_first() -> None:
    cats = (category("Receipts", destination_mailbox="Archive/Money/Receipts"),)
    settings = Settings(categories=cats, screener_mailbox="Inbox/Screener")
    p = plan(settings, boxes("Inbox", "Archive"), [])
    names = [(i.name, i.status) for i in p.of_kind("mailbox")]
    assert names[:2] == [("Inbox", "exists"), ("Inbox/Screener", "create")]
    assert names[2:5] == [
        ("Archive", "exists"),
        ("Archive/Money", "create"),
        ("Archive/Money/Receipts", "create"),
    ]
    assert Item("mailbox", "Archive/Money", "create", "parent of Archive/Money/Receipts") in p.items


def test_nested_name_exists_only_at_that_path() -> None:
    cats = (category("Receipts", destination_mailbox="Archive/Receipts"),)
    existing = boxes("Archive", "Receipts")  # a top-level Receipts is not Archive/Receipts
    p = plan(Settings(categories=cats), existing, [])
    assert statuses(p.items)["Archive/Receipts"] == "create"
    existing.append(Mailbox("r2", "Receipts", "id-Archive", None))
    assert statuses(plan(Settings(categories=cats), existing, []).items)["Archive/Receipts"] == (
        "exists"
    )


def test_one_mailbox_set_creates_parents_before_children_by_reference() -> None:
    cats = (category("Receipts", destination_mailbox="Archive/Money/Receipts"),)
    existing = boxes("Archive")
    p = plan(Settings(categories=cats, warnings_enabled=False), existing, [])
    creates = mailbox_creates(p.items, existing)
    assert creates == {
        "mb0": {"name": "Screener", "parentId": None},
        "mb1": {"name": "Money", "parentId": "id-Archive"},
        "mb2": {"name": "Receipts", "parentId": "#mb1"},
        "mb3": {"name": "@ToReceipts", "parentId": None},
        "mb4": {"name": "@MailroomError", "parentId": None},
    }


def test_dry_run_prints_would_create_and_a_summary(capsys: object) -> None:
    p = plan(Settings(categories=(category("Feed"),)), boxes("Feed"), ["Feed"])
    assert print_plan(p, [], apply=False) == 0
    out = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    assert [line.split()[:3] for line in out[:-1]] == [
        ["mailbox", "Screener", "would"],
        ["mailbox", "Feed", "exists"],
        ["mailbox", "@ToFeed", "would"],
        ["mailbox", "@MailroomError", "would"],
        ["mailbox", "@MailroomWarning", "would"],
        ["group", "Feed", "exists"],
        ["group", "Mailroom", "would"],
    ]
    assert (
        out[-1]
        == "Plan: 5 to create, 2 exist (dry run). Run `mailroom setup --apply` to create them."
    )
