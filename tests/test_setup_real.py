"""`mailroom setup` against the real Cyrus: dry run, apply, idempotence, nested names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailroom.carddav.groups import new_group_card
from mailroom.config import load_settings
from mailroom.ops import setup
from mailroom_dev.realserver import Account

REPO = Path(__file__).resolve().parent.parent
MAILBOXES = {
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
}
GROUPS = {"Imbox", "Feed", "Paper Trail", "Jail", "Person", "Billboard", "Truck", "Mailroom"}


def item_lines(out: str) -> list[str]:
    return [
        line
        for line in out.splitlines()
        if line.startswith("  mailbox ") or line.startswith("  group ")
    ]


@pytest.mark.real
def test_dry_run_changes_nothing(account: Account, capsys: pytest.CaptureFixture[str]) -> None:
    account.create_mailbox("Feed")
    before = (account.mailboxes(), sorted(account.cards()))
    assert setup.main(load_settings(account.env()), apply=False) == 0
    assert (account.mailboxes(), sorted(account.cards())) == before
    out = capsys.readouterr().out
    lines = item_lines(out)
    assert len(lines) == len(MAILBOXES) + len(GROUPS)
    assert sum("would create" in line for line in lines) == len(lines) - 1
    assert any(line.split()[:3] == ["mailbox", "Feed", "exists"] for line in lines)
    assert "Plan: 24 to create, 1 exist (dry run)." in out


@pytest.mark.real
def test_apply_creates_everything_and_a_second_apply_creates_nothing(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(account.env())
    assert setup.main(settings, apply=True) == 0
    first = capsys.readouterr().out
    assert set(account.mailbox_ids()) >= MAILBOXES
    assert set(account.groups()) == GROUPS
    assert all(members == set() for members in account.groups().values())
    assert "Applied: 25 created, 0 exist, 0 failed." in first

    mailboxes, cards = account.mailboxes(), sorted(account.cards())
    assert setup.main(settings, apply=True) == 0
    second = capsys.readouterr().out
    assert (account.mailboxes(), sorted(account.cards())) == (mailboxes, cards)
    assert all("  exists " in line for line in item_lines(second))
    assert "Applied: 0 created, 25 exist, 0 failed." in second


@pytest.mark.real
def test_rules_are_printed_after_the_plan(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.main(load_settings(account.env()), apply=False) == 0
    out = capsys.readouterr().out.splitlines()
    # this Cyrus runs Sieve: the rules are mailroom's to install, once the rest exists
    start = out.index("Server-side rules (Sieve on this server, from the categories):")
    assert out[start + 1 :] == ["  would install once the mailboxes and groups exist"]


@pytest.mark.real
def test_nested_names_are_created_under_their_parents(
    account: Account, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "screener_mailbox: Inbox/Screener\n"
        "categories:\n"
        "  - {name: Receipts, destination_mailbox: Money/Bills/Receipts}\n"
        "  - {name: Bank, destination_mailbox: Money/Bank}\n"
    )
    settings = load_settings({**account.env(), "MAILROOM_CONFIG": str(config)})
    assert setup.main(settings, apply=True) == 0
    by_id = {m.id: m for m in account.mailboxes()}

    def path(name: str) -> str:
        (box,) = [m for m in by_id.values() if m.name == name]
        parts = [box.name]
        while box.parent_id:
            box = by_id[box.parent_id]
            parts.append(box.name)
        return "/".join(reversed(parts))

    assert path("Screener") == "Inbox/Screener"
    assert path("Receipts") == "Money/Bills/Receipts"
    assert path("Bank") == "Money/Bank"
    assert [m.name for m in by_id.values()].count("Money") == 1
    capsys.readouterr()
    assert setup.main(settings, apply=True) == 0
    assert "Applied: 0 created" in capsys.readouterr().out


@pytest.mark.real
def test_a_refused_mailbox_is_reported_failed_and_exits_1(
    account: Account, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("categories: [Feed]\n")
    settings = load_settings({**account.env(), "MAILROOM_CONFIG": str(config)})
    bad = settings.model_copy(update={"error_label": "x" * 600})  # too long for the server
    assert setup.main(bad, apply=True) == 1
    out = capsys.readouterr().out
    failed = [line for line in item_lines(out) if "failed:" in line]
    assert len(failed) == 1
    assert failed[0].split()[:2] == ["mailbox", "x" * 600]
    assert "1 failed." in out
    assert "Feed" in account.mailbox_ids()  # the others were still created
    assert set(account.groups()) == {"Feed", "Mailroom"}


@pytest.mark.real
def test_setup_apply_from_the_command_line(account: Account) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    result = subprocess.run(
        [sys.executable, "-m", "mailroom", "setup", "--apply"],
        env={**base, **account.env()},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(account.mailbox_ids()) >= MAILBOXES
    assert set(account.groups()) == GROUPS
    for secret in (account.token, account.password):
        assert secret not in result.stdout + result.stderr


@pytest.mark.real
def test_a_renamed_group_is_not_duplicated_but_reported(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = setup.group_uid("Feed")
    account.put_card(new_group_card(uid=uid, name="Newsletters"), uid)
    assert setup.main(load_settings(account.env()), apply=True) == 1
    out = capsys.readouterr().out
    (failed,) = [line for line in item_lines(out) if "failed:" in line]
    assert failed.split()[:2] == ["group", "Feed"]
    assert "rename that group back to 'Feed' or delete it" in failed
    assert set(account.groups()) == GROUPS - {"Feed"} | {"Newsletters"}
