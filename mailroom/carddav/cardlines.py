"""vCard 3.0 text line by line, and the vobject plumbing contacts and groups share (pure).

An edit of an existing card works on its logical lines: every line mailroom does not
change is kept byte for byte (only line endings become CRLF), and every line it writes
is serialised by vobject, so escaping and folding are right.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from mailroom.errors import VCardError

PRODID = "-//mailroom//mailroom//EN"
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_display_name(name: str | None) -> str:
    """``name`` without control characters, whitespace collapsed: safe for any card."""
    kept = []
    for char in name or "":
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cs") and char not in _BIDI_CONTROLS:
            kept.append(char)
    return " ".join("".join(kept).split())


# -- vobject ---------------------------------------------------------------------------


def read_card(text: str) -> Any:
    import vobject  # here, not at the top: see ``new_card``

    try:
        return vobject.readOne(text)
    except Exception as exc:  # vobject raises ParseError, but also ValueError, binascii.Error
        raise VCardError(str(exc) or type(exc).__name__) from exc


def flat_value(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value if v).strip()
    return str(value or "").strip()


def first_value(card: Any, name: str) -> str:
    lines = card.contents.get(name, [])
    return flat_value(lines[0].value) if lines else ""


def add_property(card: Any, name: str, value: Any, type_param: str | None = None) -> None:
    line = card.add(name)
    line.value = value
    if type_param:
        line.type_param = type_param


# -- lines -----------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Logical lines (folded continuations kept inside, joined by CRLF); blank lines dropped."""
    lines: list[str] = []
    for physical in re.split(r"\r\n|\r|\n", text):
        if physical[:1] in (" ", "\t") and lines:
            lines[-1] += "\r\n" + physical
        elif physical.strip():
            lines.append(physical)
    return lines


def join_lines(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def property_name(line: str) -> str:
    unfolded = re.sub(r"\r\n[ \t]", "", line)
    head = re.match(r"[^;:]*", unfolded)
    return (head.group() if head else "").rsplit(".", 1)[-1].strip().upper()


def decode_line(line: str) -> Any:
    """The vobject card holding just ``line`` (after VERSION), and that property."""
    card = read_card(f"BEGIN:VCARD\r\nVERSION:3.0\r\n{line}\r\nEND:VCARD\r\n")
    prop = next(child for child in card.getChildren() if child.name != "VERSION")
    return card, prop


def encode_line(card: Any) -> str:
    """The one property line of a card holding VERSION and that property."""
    lines = split_lines(str(card.serialize(validate=False)))
    return next(line for line in lines[1:-1] if property_name(line) != "VERSION")


def new_card() -> Any:
    """An empty vobject vCard. vobject (with dateutil and six, about 2 MiB) is imported at
    the first card read or written, not with this module: an idle worker needs none."""
    import vobject

    return vobject.vCard()


def structured_name(**parts: str) -> Any:
    """A vCard N value (family, given, additional, prefix, suffix)."""
    import vobject

    return vobject.vcard.Name(**parts)


def render_line(name: str, value: Any, type_param: str | None = None) -> str:
    card = new_card()
    add_property(card, name.lower(), value, type_param)
    return encode_line(card)


def end_index(lines: list[str]) -> int:
    ends = [i for i, line in enumerate(lines) if property_name(line) == "END"]
    if not ends:
        raise VCardError("no END:VCARD line")
    return ends[-1]


def put_line(lines: list[str], line: str) -> None:
    """Replace the first line with the same property name, or add ``line`` before END."""
    name = property_name(line)
    for i, old in enumerate(lines):
        if property_name(old) == name:
            lines[i] = line
            return
    lines.insert(end_index(lines), line)
