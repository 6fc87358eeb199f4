"""`mailroom setup [--apply]`: create the mailboxes, contact groups and routing rules.

``plan`` is pure: the settings, the mailboxes and the group names that exist today
in, a ``Plan`` out. ``main`` reads the server, prints the plan terraform-style and,
with ``--apply``, creates what is missing: every mailbox in ONE ``Mailbox/set``
(parents before children, children referring to them by creation id), then each
group with ``If-None-Match: *``; then the routing rules (``ops.rules``): installed as
Sieve where the server offers it, else printed as Fastmail steps. Running it again
creates nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.clients import open_clients
from mailroom.config import Settings
from mailroom.errors import ConfigError, MailroomError, PreconditionFailed
from mailroom.jmap import methods
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Mailbox
from mailroom.ops.rules import RulesOutcome, setup_rules
from mailroom.triage.mailboxes import find_mailbox

NAME_WIDTH = 30  # longer names push their status right instead of every line's
Kind = Literal["mailbox", "group"]
Status = Literal["exists", "create"]
# Group cards get a UID derived from the name: a second setup racing the first, or one
# rerun after a crash, collides on If-None-Match instead of creating a twin group.
_GROUP_NAMESPACE = uuid.UUID("0c6b3f2e-8d1a-5e4f-a2b7-6d61696c6772")


@dataclass(frozen=True, slots=True)
class Item:
    kind: Kind
    name: str  # a mailbox's path as configured ("Parent/Child"), or a group's name
    status: Status
    why: str  # what needs it: "Screener", "triage label of Feed", ...


@dataclass(frozen=True, slots=True)
class Plan:
    items: tuple[Item, ...]

    @property
    def to_create(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.status == "create")

    def of_kind(self, kind: Kind) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.kind == kind)


# -- the pure plan -----------------------------------------------------------------------


def needed_mailboxes(settings: Settings) -> list[tuple[str, str]]:
    """(name, why) of every mailbox the config uses, in a stable order."""
    needed = [(settings.screener_mailbox, "the Screener")]
    needed += [(c.destination_mailbox, f"destination of {c.name}") for c in settings.categories]
    needed += [(c.label, f"triage label of {c.name}") for c in settings.categories]
    needed.append((settings.error_label, "error label"))
    if settings.warnings_enabled:
        needed.append((settings.warning_label, "warning label"))
    return needed


def needed_groups(settings: Settings) -> list[tuple[str, str]]:
    """(name, why) of every contact group the config uses, deduplicated."""
    needed = [(c.contact_group, f"category {c.name}") for c in settings.categories]
    needed.append((settings.provenance_group, "provenance group"))
    return needed


def mailbox_id(mailboxes: Sequence[Mailbox], name: str) -> str | None:
    """The id triage would use for ``name``; an ambiguous name counts as existing
    (setup cannot fix it; check reports it)."""
    try:
        return find_mailbox(mailboxes, name)
    except ConfigError:
        return "(ambiguous)"


def _split(path: str) -> list[str]:
    return [part.strip() for part in path.split("/") if part.strip()]


def plan_mailboxes(settings: Settings, mailboxes: Sequence[Mailbox]) -> list[Item]:
    """One item per mailbox, parents of a missing nested mailbox first."""
    items: dict[str, Item] = {}
    for name, why in needed_mailboxes(settings):
        parts = _split(name)
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            exists = _top_path_id(mailboxes, parent) is not None
            _add(
                items,
                Item("mailbox", parent, "exists" if exists else "create", f"parent of {name}"),
            )
        exists = mailbox_id(mailboxes, name) is not None
        _add(items, Item("mailbox", name, "exists" if exists else "create", why))
    return list(items.values())


def _top_path_id(mailboxes: Sequence[Mailbox], path: str) -> str | None:
    """The id of the mailbox at exactly ``path`` from the top of the tree."""
    parent: str | None = None
    for part in _split(path):
        hits = [m.id for m in mailboxes if m.parent_id == parent and m.name == part]
        hits = hits or [
            m.id
            for m in mailboxes
            if m.parent_id == parent and m.name.casefold() == part.casefold()
        ]
        if not hits:
            return None
        parent = hits[0]
    return parent


def _key(path: str) -> str:
    return "/".join(_split(path)).casefold()


def _add(items: dict[str, Item], item: Item) -> None:
    key = _key(item.name)
    if key not in items:
        items[key] = item


def plan_groups(settings: Settings, group_names: Iterable[str]) -> list[Item]:
    existing = set(group_names)
    items: dict[str, Item] = {}
    for name, why in needed_groups(settings):
        if name not in items:
            items[name] = Item("group", name, "exists" if name in existing else "create", why)
    return list(items.values())


def plan(settings: Settings, mailboxes: Sequence[Mailbox], group_names: Iterable[str]) -> Plan:
    """What the config needs on the server, and which of it is missing."""
    return Plan((*plan_mailboxes(settings, mailboxes), *plan_groups(settings, group_names)))


def mailbox_creates(
    items: Sequence[Item], mailboxes: Sequence[Mailbox]
) -> dict[str, dict[str, Any]]:
    """The ``create`` map of one Mailbox/set: creation id -> {name, parentId}.

    Parents come first; a child of a mailbox created in the same request names it
    as ``#<creation id>`` (RFC 8620 §5.3).
    """
    creates: dict[str, dict[str, Any]] = {}
    created: dict[str, str] = {}  # casefolded path -> creation id
    for n, item in enumerate(i for i in items if i.kind == "mailbox" and i.status == "create"):
        parts = _split(item.name)
        parent_path = "/".join(parts[:-1])
        parent_id: str | None = None
        if parent_path:
            ref = created.get(_key(parent_path))
            parent_id = f"#{ref}" if ref else _top_path_id(mailboxes, parent_path)
        cid = f"mb{n}"
        creates[cid] = {"name": parts[-1], "parentId": parent_id}
        created[_key(item.name)] = cid
    return creates


def group_uid(name: str) -> str:
    return str(uuid.uuid5(_GROUP_NAMESPACE, name))


# -- the I/O shell -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    item: Item
    failure: str | None = None


def create_mailboxes(
    jmap: JmapClient, items: Sequence[Item], mailboxes: Sequence[Mailbox]
) -> list[Outcome]:
    """Create every missing mailbox in one Mailbox/set; one outcome per item."""
    todo = [i for i in items if i.kind == "mailbox" and i.status == "create"]
    if not todo:
        return []
    creates = mailbox_creates(todo, mailboxes)
    call = methods.mailbox_set_create(jmap.session.account_id, creates)
    try:
        (answer,) = jmap.call([call])
        args = methods.raise_for_invocation(answer, "Mailbox/set")
    except MailroomError as exc:
        return [Outcome(i, str(exc)) for i in todo]
    refused: Mapping[str, Mapping[str, Any]] = args.get("notCreated") or {}
    created = args.get("created") or {}
    outcomes = []
    for cid, item in zip(creates, todo, strict=True):
        failure = _set_error(refused[cid]) if cid in refused else None
        if failure is None and cid not in created:
            failure = "the server did not say it was created"
        outcomes.append(Outcome(item, failure))
    return outcomes


def _set_error(error: Mapping[str, Any]) -> str:
    text = str(error.get("type", "refused"))
    if error.get("properties"):
        text += f" ({', '.join(map(str, error['properties']))})"
    if error.get("description"):
        text += f": {error['description']}"
    return text


def create_groups(carddav: CardDavClient, items: Sequence[Item]) -> list[Outcome]:
    outcomes = []
    for item in (i for i in items if i.kind == "group" and i.status == "create"):
        uid = group_uid(item.name)
        try:
            carddav.create(vcard.new_group_card(uid=uid, name=item.name), uid=uid)
            outcomes.append(Outcome(item))
        except PreconditionFailed:
            why = (
                f"a card with this group's UID ({uid}) exists under another name; "
                f"rename that group back to {item.name!r} or delete it"
            )
            outcomes.append(Outcome(item, why))
        except MailroomError as exc:
            outcomes.append(Outcome(item, str(exc)))
    return outcomes


def group_names(carddav: CardDavClient) -> list[str]:
    """The names of the Apple-style groups in the address book."""
    names = []
    for card in carddav.list_groups():
        group = vcard.parse_group(card.text)
        if group is not None:
            names.append(group.name)
    return names


# -- printing -------------------------------------------------------------------------------


def plan_line(item: Item, status: str, width: int) -> str:
    return f"  {item.kind:<8} {item.name:<{width}}  {status:<12} ({item.why})"


def print_plan(plan_: Plan, outcomes: Sequence[Outcome], *, apply: bool) -> int:
    """One line per item, then a summary; the number of failures."""
    failed = {(o.item.kind, o.item.name): o.failure for o in outcomes if o.failure}
    width = min(max((len(i.name) for i in plan_.items), default=0), NAME_WIDTH)
    for item in plan_.items:
        status: str = item.status if apply or item.status == "exists" else "would create"
        failure = failed.get((item.kind, item.name))
        if failure:
            status = f"failed: {failure}"
        print(plan_line(item, status, width))
    exist = len(plan_.items) - len(plan_.to_create)
    if not apply:
        print(f"Plan: {len(plan_.to_create)} to create, {exist} exist (dry run).", end="")
        print(" Run `mailroom setup --apply` to create them." if plan_.to_create else "")
    else:
        made = len(plan_.to_create) - len(failed)
        print(f"Applied: {made} created, {exist} exist, {len(failed)} failed.")
    return len(failed)


def main(settings: Settings, *, apply: bool) -> int:
    """`mailroom setup`: 0 when everything exists or was created, 1 on any failure."""
    try:
        with open_clients(settings) as (jmap, carddav):
            mailboxes, _state = jmap.get_mailboxes()
            groups = group_names(carddav)
            plan_ = plan(settings, mailboxes, groups)
            outcomes: list[Outcome] = []
            if apply:
                outcomes = create_mailboxes(jmap, plan_.items, mailboxes)
                outcomes += create_groups(carddav, plan_.items)
            rules: RulesOutcome = setup_rules(settings, jmap, carddav, apply=apply)
    except ConfigError:
        raise  # the CLI prints it as every command does
    except MailroomError as exc:
        print(f"failed: {exc}")
        return 1
    failures = print_plan(plan_, outcomes, apply=apply)
    print()
    for line in rules.lines:
        print(line)
    return 1 if failures or rules.failed else 0
