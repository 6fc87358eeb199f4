"""The routing model as Sieve (RFC 5228) scripts for Cyrus, the server Fastmail runs (pure).

"Sender is in contact group X" is Cyrus's ``vnd.cyrus.jmapquery`` test with
``fromContactGroupId`` (the group card's UID); "sender is no contact" is
``not jmapquery {"fromAnyContact": true}``. Each route files into its mailboxes,
keeps the Inbox copy only when the route says so, and stops, so the first match is
the only one applied; ``fileinto`` without ``keep`` cancels the implicit keep (RFC
5228 §4.1), which is what takes routed mail out of the Inbox.

mailroom never replaces the user's active script: it installs its rules as their own
script and activates a wrapper that ``include``s the user's script first, unchanged,
then the rules (RFC 6609). The wrapper names the script it wraps, then the rules
script, so ``reset`` reads what to restore from the server itself.

Every script mailroom writes is sealed: a first line ``# mailroom-seal <kind>
sha256=<hex>`` over the rest of the text (``seal``). ``unseal`` gives the kind back only
when the hash matches, so a script is known to be mailroom's by what it holds, not by
its name: a user's script called ``mailroom-rules``, or one of mailroom's that the user
edited, is the user's (``routing.install`` decides what that means).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from mailroom.routing.model import Route, Routing

RULES_NAME = "mailroom-rules"
WRAPPER_NAME = "mailroom"
WRAPPER_MARK = "# mailroom: the active script"
SEAL = "# mailroom-seal"
RULES_KIND, WRAPPER_KIND = "rules", "wrapper"
_SEAL_LINE = re.compile(r"# mailroom-seal (rules|wrapper) sha256=([0-9a-f]{64})")
_INCLUDE = re.compile(r'^include :personal "((?:[^"\\]|\\.)*)";$', re.MULTILINE)


def quote(text: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


def _query(condition: Mapping[str, object]) -> str:
    return "jmapquery " + quote(json.dumps(dict(condition), separators=(",", ":")))


def _route_block(route: Route, uid: str, paths: Mapping[str, str]) -> list[str]:
    lines = [f"# {route.category}: contact group {route.group}"]
    lines.append(f"if {_query({'fromContactGroupId': uid})} {{")
    lines += [f"  fileinto {quote(paths.get(name, name))};" for name in route.mailboxes]
    if route.keep_in_inbox:
        lines.append("  keep;")
    lines += ["  stop;", "}"]
    return lines


def rules_script(model: Routing, *, group_uids: Mapping[str, str], paths: Mapping[str, str]) -> str:
    """The rules script. ``group_uids``: group name -> card UID (every route's group);
    ``paths``: configured mailbox name -> its full path on the server (default: as is)."""
    lines = [
        "# mailroom's routing rules, generated from the categories by `mailroom setup`;",
        "# edit the categories, not this script: setup regenerates it.",
        'require ["fileinto", "vnd.cyrus.jmapquery"];',
        "",
    ]
    for route in model.routes:
        lines += [*_route_block(route, group_uids[route.group], paths), ""]
    lines += [
        "# not a contact at all: into the Screener only",
        f"if not {_query({'fromAnyContact': True})} {{",
        f"  fileinto {quote(paths.get(model.screener, model.screener))};",
        "  stop;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def wrapper_script(wrapped: str | None, rules_name: str = RULES_NAME) -> str:
    """The script mailroom activates: the user's script ``wrapped`` first, then the rules
    (the script named ``rules_name``)."""
    if wrapped is None:
        said = "# No script of yours was active; `mailroom reset` leaves none active."
    else:
        said = (
            f"# It runs your script {quote(wrapped)} first, unchanged, then mailroom's rules;\n"
            f"# `mailroom reset` makes {quote(wrapped)} active again."
        )
    lines = [f"{WRAPPER_MARK}, installed by `mailroom setup`.", said, 'require ["include"];']
    if wrapped is not None:
        lines.append(f"include :personal {quote(wrapped)};")
    lines.append(f"include :personal {quote(rules_name)};")
    return "\n".join(lines) + "\n"


def is_wrapper(text: str) -> bool:
    return text.startswith(WRAPPER_MARK)


def _includes(text: str) -> list[str]:
    return [unquote(m.group(1)) for m in _INCLUDE.finditer(text)]


def wrapped_by(text: str) -> str | None:
    """The user's script a wrapper runs first (None: it wraps none): every include but
    the last, which is the rules."""
    names = _includes(text)
    return names[0] if len(names) >= 2 else None


def rules_included(text: str) -> str | None:
    """The rules script a wrapper includes: its last include."""
    names = _includes(text)
    return names[-1] if names else None


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def seal(kind: str, body: str) -> str:
    """``body`` as mailroom installs it: a first line naming its kind and its hash."""
    return f"{SEAL} {kind} sha256={_digest(body)}\n{body}"


def unseal(text: str) -> tuple[str | None, str]:
    """(kind, body) of a sealed script whose hash matches; (None, text) for any other."""
    first, newline, body = text.partition("\n")
    found = _SEAL_LINE.fullmatch(first)
    if found is None or not newline or found.group(2) != _digest(body):
        return None, text
    return found.group(1), body
