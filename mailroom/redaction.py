"""The secret values this process knows, and the one function that blanks them out.

``remember`` is called by ``mailroom.config.load_settings`` with every credential it
reads (and the userinfo of any URL). ``scrub`` replaces each remembered value, in the
spellings it may take on the way out (as is, trimmed, JSON- or repr-escaped,
percent-encoded, inside an HTTP Basic header), by ``[redacted]``. The log renderer,
the status-file writer, ``MailroomError.__str__`` and the CLI's output streams all
call it, so a secret is blanked whatever exception or library carried it.

Standard library only: the health process and ``mailroom.errors`` import this module.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_LENGTH = 4  # shorter values would blank ordinary text; no real credential is this short
_lock = threading.Lock()
_spellings: list[str] = []  # longest first, so a spelling never hides inside a shorter one


def _variants(value: str) -> set[str]:
    from urllib.parse import quote  # here: health remembers nothing, and pays 0.9 MiB for it

    found = set()
    for text in (value, value.strip()):
        found |= {text, json.dumps(text)[1:-1], repr(text)[1:-1], quote(text, safe="")}
    return {v for v in found if len(v) >= MIN_LENGTH}


def remember(*values: str | None) -> None:
    """Treat each value (and its escaped spellings) as a secret from now on."""
    new = set().union(*(_variants(v) for v in values if v))
    with _lock:
        merged = set(_spellings) | new
        _spellings[:] = sorted(merged, key=len, reverse=True)


def remember_basic(username: str | None, password: str | None) -> None:
    """The HTTP Basic credential ``base64(username:password)`` too, as httpx sends it."""
    if username and password:
        import base64  # here: only the worker has a CardDAV password

        raw = f"{username}:{password}".encode("utf-8", "surrogateescape")
        remember(base64.b64encode(raw).decode("ascii"))


class Secret:
    """A credential as the lean processes carry it: remembered for ``scrub`` when it is
    made, and never shown by ``str`` or ``repr`` (pydantic's ``SecretStr`` without
    pydantic; the same ``get_secret_value``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        remember(value)
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    __str__ = __repr__


def forget_all() -> None:
    """Drop every remembered value (tests start from a clean slate)."""
    with _lock:
        _spellings.clear()


def scrub(text: str) -> str:
    """``text`` with every remembered secret replaced by ``[redacted]``."""
    for secret in _spellings:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_value(value: object) -> object:
    """``scrub`` applied to every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if type(value) is tuple:
        return tuple(scrub_value(v) for v in value)
    return value


def clip(text: str, limit: int = 300) -> str:
    """``text`` on one line and at most ``limit`` characters (a server may send megabytes)."""
    flat = " ".join(text[: limit * 4].split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ScrubbingStream:
    """A text stream that scrubs everything written through it (the CLI's stdout/stderr)."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
