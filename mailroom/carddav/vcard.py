"""Contacts and Apple-style groups as vCard 3.0 text: build, read, merge (pure).

vobject parses and serialises (so escaping is right); nameparser splits person names.
Edits of an existing card are made line by line: every line mailroom does not change
is kept byte for byte (only line endings become CRLF), and every line it writes is
serialised by vobject. Mailroom's part of NOTE is a delimited section::

    <the user's text>

    --- mailroom ---
    Triaged to Feed on 2025-01-31
    --- end mailroom ---
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import vobject
from nameparser import HumanName

from mailroom.errors import VCardError

PRODID = "-//mailroom//mailroom//EN"
SECTION_START = "--- mailroom ---"
SECTION_END = "--- end mailroom ---"
KIND = "X-ADDRESSBOOKSERVER-KIND"
MEMBER = "X-ADDRESSBOOKSERVER-MEMBER"
# The properties mailroom writes on a contact it creates; any other one was added by someone else.
MAILROOM_PROPERTIES = frozenset({"VERSION", "PRODID", "UID", "FN", "N", "ORG", "EMAIL", "NOTE"})
_SECTION = re.compile(
    rf"^[ \t]*{re.escape(SECTION_START)}[ \t\r]*\n(.*?)^[ \t]*{re.escape(SECTION_END)}[ \t\r]*$",
    re.MULTILINE | re.DOTALL,
)
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ContactType = Literal["company", "person"]


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


@dataclass(frozen=True, slots=True)
class Group:
    uid: str | None
    name: str
    member_uids: frozenset[str]


def clean_display_name(name: str | None) -> str:
    """``name`` without control characters, whitespace collapsed: safe for any card."""
    kept = []
    for char in name or "":
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cs") and char not in _BIDI_CONTROLS:
            kept.append(char)
    return " ".join("".join(kept).split())


# -- reading ---------------------------------------------------------------------------


def _read(text: str) -> Any:
    try:
        return vobject.readOne(text)
    except Exception as exc:  # vobject raises ParseError, but also ValueError, binascii.Error
        raise VCardError(str(exc) or type(exc).__name__) from exc


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value if v).strip()
    return str(value or "").strip()


def _first(card: Any, name: str) -> str:
    lines = card.contents.get(name, [])
    return _flat(lines[0].value) if lines else ""


def _org(card: Any) -> str:
    lines = card.contents.get("org", [])
    value = lines[0].value if lines else []
    parts = value if isinstance(value, list) else [value]
    return str(parts[0]).strip() if parts else ""


def parse_contact(text: str) -> Contact:
    card = _read(text)
    names = card.contents.get("n", [])
    n = names[0].value if names else None
    notes = [str(line.value) for line in card.contents.get("note", [])]
    props = frozenset(name.upper() for name in card.contents)
    return Contact(
        uid=_first(card, "uid") or None,
        fn=_first(card, "fn"),
        emails=tuple(_flat(line.value) for line in card.contents.get("email", [])),
        org=_org(card),
        n_family=_flat(getattr(n, "family", "")),
        n_given=_flat(getattr(n, "given", "")),
        note="\n\n".join(notes) if notes else None,
        has_rev="REV" in props,
        props=props,
    )


def _member_uid(value: str) -> str:
    value = value.strip()
    return value[9:] if value.lower().startswith("urn:uuid:") else value


def parse_group(text: str) -> Group | None:
    """The group a card describes, or None when it is not an Apple-style group."""
    card = _read(text)
    if _first(card, KIND.lower()).lower() != "group":
        return None
    names = card.contents.get("n", [])
    members = card.contents.get(MEMBER.lower(), [])
    return Group(
        uid=_first(card, "uid") or None,
        name=_first(card, "fn") or _flat(getattr(names[0].value, "family", "") if names else ""),
        member_uids=frozenset(_member_uid(str(line.value)) for line in members),
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
    parsed = HumanName(name)
    return vobject.vcard.Name(
        family=parsed.last,
        given=parsed.first,
        additional=parsed.middle,
        prefix=parsed.title,
        suffix=parsed.suffix,
    )


def _add(card: Any, name: str, value: Any, type_param: str | None = None) -> None:
    line = card.add(name)
    line.value = value
    if type_param:
        line.type_param = type_param


def _section(history: Iterable[str]) -> str:
    return "\n".join([SECTION_START, *history, SECTION_END])


def new_contact_card(
    *, uid: str, email: str, display_name: str | None, contact_type: ContactType, history_line: str
) -> str:
    name = clean_display_name(display_name) or _local_part(email)
    card = vobject.vCard()
    _add(card, "prodid", PRODID)
    _add(card, "uid", uid)
    _add(card, "fn", name)
    if contact_type == "company":
        _add(card, "n", vobject.vcard.Name())
        _add(card, "org", [name])
    else:
        _add(card, "n", _person_name(name))
    _add(card, "email", email.strip(), type_param="INTERNET")
    _add(card, "note", _section([clean_display_name(history_line)]))
    return str(card.serialize())


def new_group_card(*, uid: str, name: str) -> str:
    name = clean_display_name(name)
    card = vobject.vCard()
    _add(card, "prodid", PRODID)
    _add(card, "uid", uid)
    _add(card, "fn", name)
    _add(card, "n", vobject.vcard.Name(family=name))
    _add(card, KIND.lower(), "group")
    return str(card.serialize())


# -- editing, line by line -------------------------------------------------------------


def _split(text: str) -> list[str]:
    """Logical lines (folded continuations kept inside, joined by CRLF); blank lines dropped."""
    lines: list[str] = []
    for physical in re.split(r"\r\n|\r|\n", text):
        if physical[:1] in (" ", "\t") and lines:
            lines[-1] += "\r\n" + physical
        elif physical.strip():
            lines.append(physical)
    return lines


def _join(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def _name(line: str) -> str:
    unfolded = re.sub(r"\r\n[ \t]", "", line)
    head = re.match(r"[^;:]*", unfolded)
    return (head.group() if head else "").rsplit(".", 1)[-1].strip().upper()


def _decode(line: str) -> Any:
    """The vobject card holding just ``line`` (after VERSION), and that property."""
    card = _read(f"BEGIN:VCARD\r\nVERSION:3.0\r\n{line}\r\nEND:VCARD\r\n")
    prop = next(child for child in card.getChildren() if child.name != "VERSION")
    return card, prop


def _encode(card: Any) -> str:
    """The one property line of a card holding VERSION and that property."""
    lines = _split(str(card.serialize(validate=False)))
    return next(line for line in lines[1:-1] if _name(line) != "VERSION")


def _render(name: str, value: Any, type_param: str | None = None) -> str:
    card = vobject.vCard()
    _add(card, name.lower(), value, type_param)
    return _encode(card)


def _end_index(lines: list[str]) -> int:
    ends = [i for i, line in enumerate(lines) if _name(line) == "END"]
    if not ends:
        raise VCardError("no END:VCARD line")
    return ends[-1]


def _put(lines: list[str], line: str) -> None:
    """Replace the first line with the same property name, or add ``line`` before END."""
    name = _name(line)
    for i, old in enumerate(lines):
        if _name(old) == name:
            lines[i] = line
            return
    lines.insert(_end_index(lines), line)


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
    notes = [i for i, line in enumerate(lines) if _name(line) == "NOTE"]
    for i in notes:
        if _SECTION.search(str(_decode(lines[i])[1].value)):
            return i
    return notes[0] if notes else None


def _rewrite(line: str, value: str) -> str:
    card, prop = _decode(line)
    prop.value = value
    return _encode(card)


def merge_contact_card(
    text: str, *, email: str, display_name: str | None, contact_type: ContactType, history_line: str
) -> str:
    """Fill what is empty, add ``email`` if missing, add the history line; keep the rest."""
    contact = parse_contact(text)
    name = clean_display_name(display_name) or _local_part(email)
    lines = _split(text)
    if not contact.fn:
        _put(lines, _render("fn", name))
    shaped = contact.org or contact.n_family or contact.n_given
    if not shaped and contact_type == "company":
        _put(lines, _render("org", [name]))
    elif not shaped:
        _put(lines, _render("n", _person_name(name)))
    if email.strip().lower() not in {e.lower() for e in contact.emails}:
        lines.insert(_end_index(lines), _render("email", email.strip(), "INTERNET"))
    history_line = clean_display_name(history_line)
    index = _note_index(lines)
    if index is None:
        lines.insert(_end_index(lines), _render("note", _section([history_line])))
    else:
        note = str(_decode(lines[index])[1].value)
        lines[index] = _rewrite(lines[index], _note_with_history(note, history_line))
    return _join(lines)


def strip_mailroom_section(text: str) -> str:
    """``text`` without mailroom's NOTE section; a NOTE left empty is removed."""
    lines = _split(text)
    index = _note_index(lines)
    note = str(_decode(lines[index])[1].value) if index is not None else ""
    if index is None or not _SECTION.search(note):
        return text
    user_note = _note_without_section(note)
    if user_note.strip():
        lines[index] = _rewrite(lines[index], user_note)
    else:
        del lines[index]
    return _join(lines)


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
    for line in _split(text):
        if _name(line) == MEMBER:
            uid = _member_uid(str(_decode(line)[1].value))
            if uid in dropped:
                changed = True
                continue
            present.add(uid)
        lines.append(line)
    for uid in wanted:
        if uid not in present:
            lines.insert(_end_index(lines), _render(MEMBER, f"urn:uuid:{uid}"))
            changed = True
    return _join(lines) if changed else text
