"""The routing model and its two renderings (pure): the Fastmail steps and the Sieve script
come from one model, pinned here for the default categories and a three-level hierarchy."""

from __future__ import annotations

from mailroom.categories import DEFAULT_CATEGORIES, category
from mailroom.routing.fastmail import enforce_alternative, fastmail_steps
from mailroom.routing.model import Route, routing
from mailroom.routing.sieve import quote, rules_script, wrapped_by, wrapper_script

DEFAULT = routing(DEFAULT_CATEGORIES, screener_mailbox="Screener")
THREE_LEVELS = routing(
    (
        category("Paper Trail"),
        category("Receipts", parent="Paper Trail"),
        category("Travel", parent="Receipts", add_to_inbox=True),
        category("Feed"),
    ),
    screener_mailbox="Screener",
)
UNTICKED = 'leave "Continue to apply other rules" unticked.'
SENDER = "If the sender is in contact group"
LAST_TWO = [
    'Keep this order and leave "Continue to apply other rules" unticked: a sender triaged to '
    "a child category is also in its parents' groups, so the child's rule comes first and "
    "must be the only one applied.",
    "These rules are yours to make: mailroom cannot install rules on this server. "
    "`mailroom check` judges them by where new mail lands.",
]


def uids(model_groups: tuple[str, ...]) -> dict[str, str]:
    return {g: f"uid-{g.replace(' ', '-').lower()}" for g in model_groups}


def test_the_default_model_routes_children_first_then_the_screener() -> None:
    assert DEFAULT.routes == (
        Route("Person", "Person", ("Person", "Imbox"), keep_in_inbox=False),
        Route("Billboard", "Billboard", ("Billboard", "Paper Trail"), keep_in_inbox=False),
        Route("Truck", "Truck", ("Truck", "Paper Trail"), keep_in_inbox=False),
        Route("Imbox", "Imbox", ("Imbox",), keep_in_inbox=True),
        Route("Feed", "Feed", ("Feed",), keep_in_inbox=False),
        Route("Paper Trail", "Paper Trail", ("Paper Trail",), keep_in_inbox=False),
        Route("Jail", "Jail", ("Jail",), keep_in_inbox=False),
    )
    assert DEFAULT.screener == "Screener"


def test_default_fastmail_steps() -> None:
    arch = f"Archive (skip Inbox); {UNTICKED}"
    assert fastmail_steps(DEFAULT) == [
        "Create these rules in Fastmail (Settings > Filters & Rules), in this order:",
        f'  1. {SENDER} "Person": add labels "Person" and "Imbox"; {arch}',
        f'  2. {SENDER} "Billboard": add labels "Billboard" and "Paper Trail"; {arch}',
        f'  3. {SENDER} "Truck": add labels "Truck" and "Paper Trail"; {arch}',
        f'  4. {SENDER} "Imbox": add label "Imbox"; keep it in the Inbox; {UNTICKED}',
        f'  5. {SENDER} "Feed": add label "Feed"; {arch}',
        f'  6. {SENDER} "Paper Trail": add label "Paper Trail"; {arch}',
        f'  7. {SENDER} "Jail": add label "Jail"; {arch}',
        '  8. Last: if the sender is not in your contacts: move to "Screener".',
        *LAST_TWO,
    ]


def test_default_sieve_script() -> None:
    paths = {"Person": "Imbox/Person"}  # a nested mailbox is filed by its full path
    assert rules_script(DEFAULT, group_uids=uids(DEFAULT.groups), paths=paths) == (
        "# mailroom's routing rules, generated from the categories by `mailroom setup`;\n"
        "# edit the categories, not this script: setup regenerates it.\n"
        'require ["fileinto", "vnd.cyrus.jmapquery"];\n'
        "\n"
        "# Person: contact group Person\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-person\\"}" {\n'
        '  fileinto "Imbox/Person";\n  fileinto "Imbox";\n  stop;\n}\n'
        "\n"
        "# Billboard: contact group Billboard\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-billboard\\"}" {\n'
        '  fileinto "Billboard";\n  fileinto "Paper Trail";\n  stop;\n}\n'
        "\n"
        "# Truck: contact group Truck\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-truck\\"}" {\n'
        '  fileinto "Truck";\n  fileinto "Paper Trail";\n  stop;\n}\n'
        "\n"
        "# Imbox: contact group Imbox\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-imbox\\"}" {\n'
        '  fileinto "Imbox";\n  keep;\n  stop;\n}\n'
        "\n"
        "# Feed: contact group Feed\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-feed\\"}" {\n'
        '  fileinto "Feed";\n  stop;\n}\n'
        "\n"
        "# Paper Trail: contact group Paper Trail\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-paper-trail\\"}" {\n'
        '  fileinto "Paper Trail";\n  stop;\n}\n'
        "\n"
        "# Jail: contact group Jail\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-jail\\"}" {\n'
        '  fileinto "Jail";\n  stop;\n}\n'
        "\n"
        "# not a contact at all: into the Screener only\n"
        'if not jmapquery "{\\"fromAnyContact\\":true}" {\n'
        '  fileinto "Screener";\n  stop;\n}\n'
    )


def test_three_levels_fastmail_steps() -> None:
    assert fastmail_steps(THREE_LEVELS) == [
        "Create these rules in Fastmail (Settings > Filters & Rules), in this order:",
        f'  1. {SENDER} "Travel": add labels "Travel", "Receipts" and "Paper Trail"; '
        f"keep it in the Inbox; {UNTICKED}",
        f'  2. {SENDER} "Receipts": add labels "Receipts" and "Paper Trail"; '
        f"Archive (skip Inbox); {UNTICKED}",
        f'  3. {SENDER} "Paper Trail": add label "Paper Trail"; Archive (skip Inbox); {UNTICKED}',
        f'  4. {SENDER} "Feed": add label "Feed"; Archive (skip Inbox); {UNTICKED}',
        '  5. Last: if the sender is not in your contacts: move to "Screener".',
        *LAST_TWO,
    ]


def test_three_levels_sieve_script() -> None:
    script = rules_script(THREE_LEVELS, group_uids=uids(THREE_LEVELS.groups), paths={})
    body = script.split("\n\n", 1)[1]
    assert body == (
        "# Travel: contact group Travel\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-travel\\"}" {\n'
        '  fileinto "Travel";\n  fileinto "Receipts";\n  fileinto "Paper Trail";\n'
        "  keep;\n  stop;\n}\n"
        "\n"
        "# Receipts: contact group Receipts\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-receipts\\"}" {\n'
        '  fileinto "Receipts";\n  fileinto "Paper Trail";\n  stop;\n}\n'
        "\n"
        "# Paper Trail: contact group Paper Trail\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-paper-trail\\"}" {\n'
        '  fileinto "Paper Trail";\n  stop;\n}\n'
        "\n"
        "# Feed: contact group Feed\n"
        'if jmapquery "{\\"fromContactGroupId\\":\\"uid-feed\\"}" {\n'
        '  fileinto "Feed";\n  stop;\n}\n'
        "\n"
        "# not a contact at all: into the Screener only\n"
        'if not jmapquery "{\\"fromAnyContact\\":true}" {\n'
        '  fileinto "Screener";\n  stop;\n}\n'
    )


def test_both_renderings_list_the_same_routes_in_the_same_order() -> None:
    for model in (DEFAULT, THREE_LEVELS):
        steps = [line for line in fastmail_steps(model) if SENDER in line]
        script = rules_script(model, group_uids=uids(model.groups), paths={})
        blocks = [b for b in script.split("\n\n") if "fromContactGroupId" in b]
        assert len(steps) == len(blocks) == len(model.routes)
        for step, block, route in zip(steps, blocks, model.routes, strict=True):
            assert f'"{route.group}"' in step
            assert uids(model.groups)[route.group] in block
            filed = [line.split('"')[1] for line in block.splitlines() if "fileinto" in line]
            assert filed == list(route.mailboxes)
            assert ("keep;" in block) == ("keep it in the Inbox" in step) == route.keep_in_inbox


def test_a_group_shared_along_a_chain_routes_as_the_ancestor() -> None:
    model = routing(
        (
            category("Receipts", parent="Paper Trail", contact_group="Paper Trail"),
            category("Paper Trail"),
        ),
        screener_mailbox="Inbox/Screener",
    )
    assert model.routes == (Route("Paper Trail", "Paper Trail", ("Paper Trail",), False),)
    assert fastmail_steps(model)[2] == (
        '  2. Last: if the sender is not in your contacts: move to "Inbox/Screener".'
    )


def test_names_with_quotes_and_backslashes_are_escaped() -> None:
    model = routing((category('Say "hi"\\now'),), screener_mailbox="Screener")
    script = rules_script(model, group_uids={'Say "hi"\\now': "u1"}, paths={})
    assert 'fileinto "Say \\"hi\\"\\\\now";' in script
    assert quote('a"b') == '"a\\"b"'


def test_the_wrapper_names_the_script_it_runs_first() -> None:
    assert wrapper_script('my "old" rules') == (
        "# mailroom: the active script, installed by `mailroom setup`.\n"
        '# It runs your script "my \\"old\\" rules" first, unchanged, then mailroom\'s rules;\n'
        '# `mailroom reset` makes "my \\"old\\" rules" active again.\n'
        'require ["include"];\n'
        'include :personal "my \\"old\\" rules";\n'
        'include :personal "mailroom-rules";\n'
    )
    assert wrapped_by(wrapper_script('my "old" rules')) == 'my "old" rules'
    assert wrapped_by(wrapper_script(None)) is None


def test_the_steps_are_followed_by_the_enforce_alternative_and_its_cost() -> None:
    (line,) = enforce_alternative("audit")
    assert line.startswith("Or, instead of these rules: MAILROOM_ROUTING=enforce")
    assert "without any rule" in line
    assert "lands in the Inbox for about a second first" in line
    assert "a phone may notify" in line
    assert "Sieve" not in line  # nothing said about what Fastmail accepts as a script
    assert enforce_alternative("off") == [line]


def test_under_enforce_the_rules_are_optional() -> None:
    (line,) = enforce_alternative("enforce")
    assert line.startswith("routing: enforce is set: mailroom routes each new email itself")
    assert "rules are optional" in line
    assert "in the Inbox for about a second first" in line
