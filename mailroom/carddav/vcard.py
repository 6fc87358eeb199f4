"""Contacts as vCard 3.0 text: build, read, merge, and mailroom's note section (pure).

vobject parses and serialises (so escaping is right); nameparser splits person names.
Edits of an existing card are made line by line (see ``cardlines``). Mailroom's part
of NOTE is a delimited section::

    <the user's text>

    --- mailroom ---
    Triaged to Feed on 2025-01-31
    --- end mailroom ---

Apple-style groups live in ``groups``; their names are re-exported here for callers
that reach them as ``vcard.parse_group`` etc.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mailroom.carddav.cardlines import (
    PRODID,
    add_property,
    clean_display_name,
    decode_line,
    encode_line,
    end_index,
    first_value,
    flat_value,
    join_lines,
    new_card,
    property_name,
    put_line,
    read_card,
    render_line,
    split_lines,
    structured_name,
)
from mailroom.carddav.groups import Group, group_with_members, new_group_card, parse_group
from mailroom.categories import ContactType

__all__ = [
    "MAILROOM_PROPERTIES",
    "SECTION_END",
    "SECTION_START",
    "Contact",
    "ContactType",
    "Group",
    "clean_display_name",
    "group_with_members",
    "merge_contact_card",
    "new_contact_card",
    "new_group_card",
    "note_history",
    "parse_contact",
    "parse_group",
    "strip_mailroom_section",
    "was_edited_by_user",
]

SECTION_START = "--- mailroom ---"
SECTION_END = "--- end mailroom ---"
# The properties mailroom writes on a contact it creates; any other one was added by someone else.
MAILROOM_PROPERTIES = frozenset({"VERSION", "PRODID", "UID", "FN", "N", "ORG", "EMAIL", "NOTE"})
_SECTION = re.compile(
    rf"^[ \t]*{re.escape(SECTION_START)}[ \t\r]*\n(.*?)^[ \t]*{re.escape(SECTION_END)}[ \t\r]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Contact:
    uid: str | None
    fn: str
    emails: tuple[str, ...]
    org: str  # the organisation name (first ORG component), "" when none
    n_family: str
    n_given: str
    note: str | None  # every NOTE, joined by a blank line
    has_rev: bool
    props: frozenset[str]  # property names present, upper-case


# -- reading ---------------------------------------------------------------------------


def _org(card: Any) -> str:
    lines = card.contents.get("org", [])
    value = lines[0].value if lines else []
    parts = value if isinstance(value, list) else [value]
    return str(parts[0]).strip() if parts else ""


def parse_contact(text: str) -> Contact:
    card = read_card(text)
    names = card.contents.get("n", [])
    n = names[0].value if names else None
    notes = [str(line.value) for line in card.contents.get("note", [])]
    props = frozenset(name.upper() for name in card.contents)
    return Contact(
        uid=first_value(card, "uid") or None,
        fn=first_value(card, "fn"),
        emails=tuple(flat_value(line.value) for line in card.contents.get("email", [])),
        org=_org(card),
        n_family=flat_value(getattr(n, "family", "")),
        n_given=flat_value(getattr(n, "given", "")),
        note="\n\n".join(notes) if notes else None,
        has_rev="REV" in props,
        props=props,
    )


def note_history(note: str | None) -> list[str]:
    """The history lines in mailroom's section of a NOTE value, oldest first."""
    match = _SECTION.search(note or "")
    if match is None:
        return []
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def was_edited_by_user(text: str) -> bool:
    """REV, a property mailroom never writes, or note text outside mailroom's section."""
    contact = parse_contact(text)
    user_note = _note_without_section(contact.note or "").strip()
    return contact.has_rev or bool(contact.props - MAILROOM_PROPERTIES) or bool(user_note)


# -- building --------------------------------------------------------------------------


def _local_part(email: str) -> str:
    return clean_display_name(email.partition("@")[0]) or clean_display_name(email)


def _person_name(name: str) -> Any:
    from nameparser import HumanName  # here: an idle worker writes no contact (0.8 MiB)

    parsed = HumanName(name)
    return structured_name(
        family=parsed.last,
        given=parsed.first,
        additional=parsed.middle,
        prefix=parsed.title,
        suffix=parsed.suffix,
    )


def _section(history: Iterable[str]) -> str:
    return "\n".join([SECTION_START, *history, SECTION_END])


def new_contact_card(
    *, uid: str, email: str, display_name: str | None, contact_type: ContactType, history_line: str
) -> str:
    name = clean_display_name(display_name) or _local_part(email)
    card = new_card()
    add_property(card, "prodid", PRODID)
    add_property(card, "uid", uid)
    add_property(card, "fn", name)
    if contact_type == "company":
        add_property(card, "n", structured_name())
        add_property(card, "org", [name])
    else:
        add_property(card, "n", _person_name(name))
    add_property(card, "email", email.strip(), type_param="INTERNET")
    add_property(card, "note", _section([clean_display_name(history_line)]))
    return str(card.serialize())


# -- editing, line by line -------------------------------------------------------------


def _note_with_history(note: str, history_line: str) -> str:
    match = _SECTION.search(note)
    if match is not None:
        return f"{note[: match.end(1)]}{history_line}\n{note[match.end(1) :]}"
    section = _section([history_line])
    return f"{note}\n\n{section}" if note else section


def _note_without_section(note: str) -> str:
    match = _SECTION.search(note)
    if match is None:
        return note
    before = note[: match.start()].removesuffix("\n\n")
    after = note[match.end() :].removeprefix("\n")
    return "\n".join(part for part in (before, after) if part)


def _note_index(lines: list[str]) -> int | None:
    """The NOTE line holding mailroom's section, else the first NOTE line, else None."""
    notes = [i for i, line in enumerate(lines) if property_name(line) == "NOTE"]
    for i in notes:
        if _SECTION.search(str(decode_line(lines[i])[1].value)):
            return i
    return notes[0] if notes else None


def _rewrite(line: str, value: str) -> str:
    card, prop = decode_line(line)
    prop.value = value
    return encode_line(card)


def merge_contact_card(
    text: str, *, email: str, display_name: str | None, contact_type: ContactType, history_line: str
) -> str:
    """Fill what is empty, add ``email`` if missing, add the history line; keep the rest."""
    contact = parse_contact(text)
    name = clean_display_name(display_name) or _local_part(email)
    lines = split_lines(text)
    if not contact.fn:
        put_line(lines, render_line("fn", name))
    shaped = contact.org or contact.n_family or contact.n_given
    if not shaped and contact_type == "company":
        put_line(lines, render_line("org", [name]))
    elif not shaped:
        put_line(lines, render_line("n", _person_name(name)))
    if email.strip().lower() not in {e.lower() for e in contact.emails}:
        lines.insert(end_index(lines), render_line("email", email.strip(), "INTERNET"))
    history_line = clean_display_name(history_line)
    index = _note_index(lines)
    if index is None:
        lines.insert(end_index(lines), render_line("note", _section([history_line])))
    else:
        note = str(decode_line(lines[index])[1].value)
        lines[index] = _rewrite(lines[index], _note_with_history(note, history_line))
    return join_lines(lines)


def strip_mailroom_section(text: str) -> str:
    """``text`` without mailroom's NOTE section; a NOTE left empty is removed."""
    lines = split_lines(text)
    index = _note_index(lines)
    note = str(decode_line(lines[index])[1].value) if index is not None else ""
    if index is None or not _SECTION.search(note):
        return text
    user_note = _note_without_section(note)
    if user_note.strip():
        lines[index] = _rewrite(lines[index], user_note)
    else:
        del lines[index]
    return join_lines(lines)
