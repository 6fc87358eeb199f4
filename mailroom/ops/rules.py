"""The Fastmail rules the user creates by hand, as text (pure).

mailroom files a sender into contact groups; Fastmail's own rules then route every
future email of that sender. A sender triaged to a child category is in the child's
group AND every ancestor's group, so each group gets its own rule and every rule must
let the others run too ("Continue to apply other rules"), or the additive parent
labels never fire. The Screener catch-all comes last.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailroom.categories import Category, is_ancestor

HEADER = "Create these rules in Fastmail (Settings > Filters & Rules), in this order:"
CONTINUE = "Continue to apply other rules"


def rule_groups(categories: Sequence[Category]) -> list[Category]:
    """One category per contact group, in config order.

    Validation lets a group be shared only along a parent chain; its rule then files
    to the ancestor's mailbox, which is right for every member of that group.
    """
    parents = {c.name: c.parent for c in categories}
    chosen: dict[str, Category] = {}
    for c in categories:
        held = chosen.get(c.contact_group)
        if held is None or is_ancestor(c.name, held.name, parents):
            chosen[c.contact_group] = c
    return list(chosen.values())


def _group_rule(number: int, c: Category) -> str:
    inbox = "keep it in the Inbox" if c.add_to_inbox else "Archive (skip Inbox)"
    return (
        f'  {number}. If the sender is in contact group "{c.contact_group}": '
        f'add label "{c.destination_mailbox}"; {inbox}; tick "{CONTINUE}".'
    )


def rule_lines(categories: Sequence[Category], *, screener_mailbox: str) -> list[str]:
    """The rules, one line each, then why "Continue to apply other rules" matters."""
    groups = rule_groups(categories)
    lines = [HEADER]
    lines += [_group_rule(n, c) for n, c in enumerate(groups, start=1)]
    lines.append(
        f"  {len(groups) + 1}. Last: if the sender is not in any contact group: "
        f'move to "{screener_mailbox}".'
    )
    which = "rule 1" if len(groups) == 1 else f"rules 1-{len(groups)}"
    lines.append(
        f'Tick "{CONTINUE}" on {which}: a sender triaged to a child category '
        "is in its own group AND its parents' groups, and without it Fastmail stops at the "
        "first matching rule, so the parents' labels are never added."
    )
    return lines
