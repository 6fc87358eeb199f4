"""`mailroom check` before `setup`: the problems setup fixes in one line with their count."""

from __future__ import annotations

from mailroom.ops.check import SETUP_FIX, Finding, collapse_setup, ok, problem


def before_setup() -> list[Finding]:
    mailboxes = [problem(f"mailbox {n!r} (x) is missing: {SETUP_FIX}") for n in "abc"]
    groups = [problem(f"contact group {n!r} (x) is missing: {SETUP_FIX}") for n in "de"]
    rules = problem(f"routing rules are not installed: {SETUP_FIX}")
    return [ok("config: 7 categories"), ok("JMAP: reached"), *mailboxes, *groups, rules]


def test_every_problem_setup_fixes_becomes_one_line_with_the_count() -> None:
    found = collapse_setup([*before_setup(), Finding("warning", "push unavailable")])
    assert found == [
        ok("config: 7 categories"),
        ok("JMAP: reached"),
        problem(
            "6 things setup makes are missing or stale (3 mailboxes, 2 contact groups, "
            "the routing rules; `mailroom setup` lists them): run `mailroom setup --apply`"
        ),
        Finding("warning", "push unavailable"),
    ]


def test_one_such_problem_and_other_problems_keep_their_own_lines() -> None:
    one = [ok("a"), problem(f"mailbox 'Feed' (x) is missing: {SETUP_FIX}"), problem("bad token")]
    assert collapse_setup(one) == one
    mixed = collapse_setup([problem("bad token"), *before_setup()[2:4]])
    assert mixed[0] == problem("bad token")
    assert len(mixed) == 2
    assert mixed[1].text.startswith("2 things setup makes are missing or stale (2 mailboxes;")
