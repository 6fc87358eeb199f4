"""Apple-style contact groups as vCard 3.0 text: build, read, change members (pure).

A group is a card with ``X-ADDRESSBOOKSERVER-KIND:group`` and one
``X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:<uid>`` line per member. A member change keeps
every other line of the card as it was (see ``cardlines``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailroom.carddav.cardlines import (
    PRODID,
    add_property,
    clean_display_name,
    decode_line,
    end_index,
    first_value,
    flat_value,
    join_lines,
    new_card,
    property_name,
    read_card,
    render_line,
    split_lines,
    structured_name,
)

KIND = "X-ADDRESSBOOKSERVER-KIND"
MEMBER = "X-ADDRESSBOOKSERVER-MEMBER"


@dataclass(frozen=True, slots=True)
class Group:
    uid: str | None
    name: str
    member_uids: frozenset[str]


def _member_uid(value: str) -> str:
    value = value.strip()
    return value[9:] if value.lower().startswith("urn:uuid:") else value


def parse_group(text: str) -> Group | None:
    """The group a card describes, or None when it is not an Apple-style group."""
    card = read_card(text)
    if first_value(card, KIND.lower()).lower() != "group":
        return None
    names = card.contents.get("n", [])
    members = card.contents.get(MEMBER.lower(), [])
    family = getattr(names[0].value, "family", "") if names else ""
    return Group(
        uid=first_value(card, "uid") or None,
        name=first_value(card, "fn") or flat_value(family),
        member_uids=frozenset(_member_uid(str(line.value)) for line in members),
    )


def new_group_card(*, uid: str, name: str) -> str:
    name = clean_display_name(name)
    card = new_card()
    add_property(card, "prodid", PRODID)
    add_property(card, "uid", uid)
    add_property(card, "fn", name)
    add_property(card, "n", structured_name(family=name))
    add_property(card, KIND.lower(), "group")
    return str(card.serialize())


def group_with_members(text: str, *, add: Iterable[str], remove: Iterable[str]) -> str:
    """The group card with members added and removed (a uid in both ends up a member).

    Other lines are kept; when nothing changes, ``text`` is returned unchanged.
    """
    parse_group(text)  # fails on a malformed card before any edit
    wanted = list(dict.fromkeys(add))
    dropped = set(remove) - set(wanted)
    lines: list[str] = []
    present: set[str] = set()
    changed = False
    for line in split_lines(text):
        if property_name(line) == MEMBER:
            uid = _member_uid(str(decode_line(line)[1].value))
            if uid in dropped:
                changed = True
                continue
            present.add(uid)
        lines.append(line)
    for uid in wanted:
        if uid not in present:
            lines.insert(end_index(lines), render_line(MEMBER, f"urn:uuid:{uid}"))
            changed = True
    return join_lines(lines) if changed else text
