"""The I/O shell of server-side rules: read what is installed, install, restore.

The decisions are in ``routing.install`` (pure); this module reads the session, the
scripts, the mailboxes and the groups, and sends the SieveScript calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings
from mailroom.errors import JmapMethodError, JmapRequestError, SetupNeededError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Mailbox
from mailroom.jmap.sieve import SieveScripts, sieve_capability
from mailroom.routing.install import Installed, InstallPlan, RestorePlan, rules_names
from mailroom.routing.model import Routing, routing
from mailroom.routing.sieve import (
    RULES_KIND,
    RULES_NAME,
    WRAPPER_KIND,
    WRAPPER_NAME,
    rules_script,
    seal,
)
from mailroom.triage.mailboxes import find_mailbox

log = structlog.get_logger()
_UNSUPPORTED = {"unknownMethod", "unknownCapability"}


def find_sieve(jmap: JmapClient) -> SieveScripts | None:
    """The account's Sieve scripts, or None when the server offers no JMAP Sieve
    (Cyrus lists its capability but refuses the methods without its nonstandard
    extensions)."""
    capability = sieve_capability(jmap.session)
    if capability is None:
        return None
    api = SieveScripts(jmap, capability)
    try:
        api.list()
    except JmapMethodError as exc:
        if exc.error_type in _UNSUPPORTED:
            return None
        raise
    except JmapRequestError as exc:
        if "unknownCapability" in exc.problem_type:
            return None
        raise
    return api


def read_installed(api: SieveScripts) -> Installed:
    """The scripts, with the text of every one that may be mailroom's (by its name)."""
    scripts = tuple(api.list())
    candidates = {WRAPPER_NAME, *rules_names()}
    texts = {s.name: api.text(s) for s in scripts if s.name in candidates}
    others = {n: t for n, t in texts.items() if n not in (RULES_NAME, WRAPPER_NAME)}
    return Installed(scripts, texts.get(RULES_NAME), texts.get(WRAPPER_NAME), others)


def model_of(settings: Settings) -> Routing:
    return routing(settings.categories, screener_mailbox=settings.screener_mailbox)


def group_uids(carddav: CardDavClient) -> dict[str, str]:
    """{group name: card UID} of the Apple-style groups in the address book."""
    found: dict[str, str] = {}
    for card in carddav.list_groups():
        group = vcard.parse_group(card.text)
        if group is not None and group.uid:
            found.setdefault(group.name, group.uid)
    return found


def mailbox_path(mailboxes: Sequence[Mailbox], mailbox_id: str) -> str:
    """The full path of a mailbox ("Parent/Child"), as Sieve's fileinto names it."""
    by_id = {m.id: m for m in mailboxes}
    parts: list[str] = []
    current = by_id.get(mailbox_id)
    while current is not None and len(parts) < len(by_id):  # bounded: a cycle ends
        parts.append(current.name)
        current = by_id.get(current.parent_id or "")
    return "/".join(reversed(parts))


def rules_for(model: Routing, mailboxes: Sequence[Mailbox], uids: Mapping[str, str]) -> str:
    """The rules script for this account; SetupNeededError names what is missing."""
    missing = [f"contact group {g!r}" for g in model.groups if g not in uids]
    paths: dict[str, str] = {}
    for name in model.mailboxes:
        mid = find_mailbox(mailboxes, name)
        if mid is None:
            missing.append(f"mailbox {name!r}")
        else:
            paths[name] = mailbox_path(mailboxes, mid)
    if missing:
        raise SetupNeededError(", ".join(missing))
    return rules_script(model, group_uids=uids, paths=paths)


def install(api: SieveScripts, installed: Installed, plan: InstallPlan) -> None:
    """Validate both scripts on the server, then write (sealed) and activate them in one
    call. Only mailroom's own scripts are updated; the rules go to ``plan.rules_name``."""
    create: dict[str, dict[str, str]] = {}
    update: dict[str, dict[str, str]] = {}
    for name, existing, kind, change, text, cid in (
        (plan.rules_name, installed.rules, RULES_KIND, plan.rules, plan.rules_text, "rules"),
        (WRAPPER_NAME, installed.wrapper, WRAPPER_KIND, plan.wrapper, plan.wrapper_text, "wrapper"),
    ):
        if change == "current":
            continue
        blob_id = api.upload_valid(name, seal(kind, text))
        if existing is None:
            create[cid] = {"name": name, "blobId": blob_id}
        else:
            update[existing.id] = {"blobId": blob_id}
    wrapper = installed.wrapper
    activate = None
    if plan.activate:
        activate = "#wrapper" if wrapper is None else wrapper.id
    api.set(create=create, update=update, activate=activate)
    log.info(
        "sieve_installed",
        rules=plan.rules,
        rules_name=plan.rules_name,
        wrapper=plan.wrapper,
        wraps=plan.wraps,
    )


def restore(api: SieveScripts, plan: RestorePlan) -> None:
    """Put back what was active (or nothing), then delete mailroom's scripts."""
    if plan.switch:
        by_name = {s.name: s for s in api.list()}
        if plan.restore is not None:
            api.set(activate=by_name[plan.restore].id)
        else:
            api.set(deactivate=True)
    if plan.destroy:
        api.set(destroy=[s.id for s in plan.destroy])
    log.info("sieve_restored", restored=plan.restore, deleted=[s.name for s in plan.destroy])
