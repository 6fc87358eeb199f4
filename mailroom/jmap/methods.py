"""Build and parse JMAP method calls, one pair per wire method (RFC 8620, RFC 8621).

Pure: these functions turn values into invocations and answers into frozen values;
they never touch the network. ``JmapClient`` sends what they build.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mailroom.errors import JmapError, JmapMethodError, JmapSetError
from mailroom.jmap.models import (
    Address,
    Changes,
    Email,
    EmailChange,
    EmailUpdate,
    Mailbox,
    QueryPage,
    SetResult,
    WholeMailboxes,
)

Invocation = tuple[str, dict[str, Any], str]

EMAIL_PROPERTIES = ("from", "mailboxIds")
ARRIVAL_PROPERTIES = ("from", "mailboxIds", "receivedAt")
SUBMISSION = "urn:ietf:params:jmap:submission"  # Identity/get's capability (RFC 8621 §6)
MAILBOX_PROPERTIES = ("id", "name", "parentId", "role")
# Oldest first: a stable order, so positions mean the same thing from page to page.
EMAIL_SORT = ({"property": "receivedAt", "isAscending": True},)
NEWEST_FIRST = ({"property": "receivedAt", "isAscending": False},)


def email_query(
    account_id: str,
    filter: Mapping[str, Any],
    *,
    position: int = 0,
    limit: int,
    call_id: str = "q",
    sort: Sequence[Mapping[str, Any]] = EMAIL_SORT,
) -> Invocation:
    args = {
        "accountId": account_id,
        "filter": dict(filter),
        "sort": [dict(s) for s in sort],
        "position": position,
        "limit": limit,
    }
    return ("Email/query", args, call_id)


def parse_email_query(args: Mapping[str, Any]) -> QueryPage:
    ids = _required(args, "ids", "Email/query")
    return QueryPage(
        ids=tuple(ids),
        position=int(args.get("position", 0)),
        limit=args.get("limit"),
        total=args.get("total"),
        query_state=args.get("queryState"),
    )


def result_ref(call_id: str, name: str, path: str) -> dict[str, str]:
    """A back-reference to a result of an earlier call in the same request (§3.7)."""
    return {"resultOf": call_id, "name": name, "path": path}


def email_get(
    account_id: str,
    ids: Sequence[str] | Mapping[str, str],
    *,
    properties: Sequence[str] = EMAIL_PROPERTIES,
    call_id: str = "g",
) -> Invocation:
    args: dict[str, Any] = {"accountId": account_id}
    if isinstance(ids, Mapping):
        args["#ids"] = dict(ids)
    else:
        args["ids"] = list(ids)
    args["properties"] = list(properties)
    return ("Email/get", args, call_id)


def parse_email_get(args: Mapping[str, Any]) -> tuple[list[Email], str]:
    items = _required(args, "list", "Email/get")
    return [_email(item) for item in items], str(_required(args, "state", "Email/get"))


def _email(item: Mapping[str, Any]) -> Email:
    senders = item.get("from") or []
    sender = None
    if senders:
        first = senders[0]
        sender = Address(email=first.get("email") or "", name=first.get("name") or None)
    boxes = item.get("mailboxIds") or {}
    received = item.get("receivedAt")
    return Email(
        id=item["id"],
        sender=sender,
        mailbox_ids=frozenset(box for box, present in boxes.items() if present),
        received_at=received if isinstance(received, str) else None,
    )


def email_changes(
    account_id: str, since_state: str, *, max_changes: int, call_id: str = "c"
) -> Invocation:
    """What changed since ``since_state``, at most ``max_changes`` ids (RFC 8620 §5.2)."""
    args = {"accountId": account_id, "sinceState": since_state, "maxChanges": max_changes}
    return ("Email/changes", args, call_id)


def parse_email_changes(args: Mapping[str, Any]) -> Changes:
    return Changes(
        old_state=str(_required(args, "oldState", "Email/changes")),
        new_state=str(_required(args, "newState", "Email/changes")),
        has_more=bool(args.get("hasMoreChanges")),
        created=tuple(args.get("created") or ()),
    )


def identity_get(account_id: str, *, call_id: str = "i") -> Invocation:
    """Every identity the account sends as (needs the submission capability)."""
    return ("Identity/get", {"accountId": account_id, "ids": None}, call_id)


def parse_identity_get(args: Mapping[str, Any]) -> list[str]:
    """The identities' addresses, as written."""
    items = _required(args, "list", "Identity/get")
    return [str(item["email"]) for item in items if item.get("email")]


def email_set(
    account_id: str | Mapping[str, str],
    update: EmailUpdate,
    *,
    if_in_state: str | None = None,
    call_id: str = "s",
) -> Invocation:
    """Email/set updates: typed changes (``EmailPatch``, ``WholeMailboxes``), written here
    as patches (``mailboxIds/<id>``) or whole properties, or wire patch objects; with
    ``if_in_state`` the server refuses all of it (stateMismatch) if anything changed.

    ``account_id`` may be a back-reference (``result_ref``): the server then runs the
    set only if the call it refers to succeeded (RFC 8620 §3.7), the mailbox guard."""
    patches = {email_id: email_update(change) for email_id, change in update.items()}
    args: dict[str, Any] = (
        {"#accountId": dict(account_id)}
        if isinstance(account_id, Mapping)
        else {"accountId": account_id}
    )
    if if_in_state is not None:
        args["ifInState"] = if_in_state
    args["update"] = patches
    return ("Email/set", args, call_id)


def email_update(change: EmailChange) -> dict[str, Any]:
    """One email's change in the wire's form (RFC 8621 §4.3: patch or whole property)."""
    if isinstance(change, WholeMailboxes):
        return {"mailboxIds": dict.fromkeys(sorted(change.ids), True)}
    wire: dict[str, Any] = {f"mailboxIds/{m}": True for m in sorted(change.add)}
    wire |= {f"mailboxIds/{m}": None for m in sorted(change.remove)}
    wire |= {f"keywords/{k}": True for k in sorted(change.set_keywords)}
    wire |= {f"keywords/{k}": None for k in sorted(change.unset_keywords)}
    return wire


def email_import(
    account_id: str,
    emails: Mapping[str, Mapping[str, Any]],
    *,
    call_id: str = "i",
) -> Invocation:
    """``emails`` maps a creation id to {blobId, mailboxIds, keywords}."""
    entries = {creation_id: dict(entry) for creation_id, entry in emails.items()}
    return ("Email/import", {"accountId": account_id, "emails": entries}, call_id)


def parse_set(method: str, args: Mapping[str, Any]) -> SetResult:
    """Parse a /set (or Email/import) answer; any refused entry raises JmapSetError.

    Cyrus answers empty maps as ``null``; both mean "nothing".
    """
    failures: dict[str, Mapping[str, Any]] = {}
    for key in ("notCreated", "notUpdated", "notDestroyed"):
        failures.update(args.get(key) or {})
    if failures:
        raise JmapSetError(method, failures)
    created = args.get("created") or {}
    return SetResult(
        old_state=args.get("oldState"),
        new_state=args.get("newState"),
        created={creation_id: obj["id"] for creation_id, obj in created.items()},
    )


def mailbox_get(
    account_id: str,
    ids: Sequence[str] | None = None,
    *,
    call_id: str = "m",
) -> Invocation:
    args = {
        "accountId": account_id,
        "ids": None if ids is None else list(ids),
        "properties": list(MAILBOX_PROPERTIES),
    }
    return ("Mailbox/get", args, call_id)


def parse_mailbox_get(args: Mapping[str, Any]) -> tuple[list[Mailbox], str]:
    items = _required(args, "list", "Mailbox/get")
    mailboxes = [
        Mailbox(
            id=item["id"],
            name=item["name"],
            parent_id=item.get("parentId"),
            role=item.get("role"),
        )
        for item in items
    ]
    return mailboxes, str(_required(args, "state", "Mailbox/get"))


def mailbox_set_guard(account_id: str, if_in_state: str, *, call_id: str = "ms") -> Invocation:
    """A Mailbox/set that changes nothing and fails (stateMismatch) unless the Mailbox
    state is still ``if_in_state``: a later call referring to it runs only if no
    mailbox changed in between."""
    return ("Mailbox/set", {"accountId": account_id, "ifInState": if_in_state}, call_id)


def mailbox_set_create(
    account_id: str,
    creates: Mapping[str, Mapping[str, Any]],
    *,
    call_id: str = "c",
) -> Invocation:
    entries = {creation_id: dict(props) for creation_id, props in creates.items()}
    return ("Mailbox/set", {"accountId": account_id, "create": entries}, call_id)


def raise_for_invocation(inv: Invocation, expected_method: str) -> dict[str, Any]:
    """The arguments of an answer to ``expected_method``; an ``error`` answer raises."""
    name, args, _call_id = inv
    if name == "error":
        raise JmapMethodError(
            expected_method, str(args.get("type", "unknown")), str(args.get("description", ""))
        )
    if name != expected_method:
        raise JmapError(
            f"expected a {expected_method} answer, the server sent {name}; "
            "the server may not speak JMAP as mailroom expects"
        )
    return args


def _required(args: Mapping[str, Any], key: str, method: str) -> Any:
    if args.get(key) is None:
        raise JmapError(f"the {method} answer has no {key!r}; the server's answer is malformed")
    return args[key]
