"""Filing: find each sender's mail, move it, then take the triage label off (JMAP).

Searches for all senders go out together (an Email/query + Email/get pair per sender,
as many pairs per request as the server allows), and the writes for all senders go
out together, chunked by the server's ``maxObjectsInSet``. When a batched write
fails, the same writes are redone one sender at a time, so that only the sender at
fault keeps its label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from mailroom.config import Settings
from mailroom.jmap import methods
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email, SetResult
from mailroom.triage import plan
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.work import SenderWork, fail, guard_many

Update = dict[str, plan.Patch]


def sender_filter(ids: MailboxIds, address: str, *, initial: bool) -> dict[str, Any]:
    """Initial triage sweeps the Screener; re-triage everything but Trash and Junk."""
    if initial:
        return {"inMailbox": ids.screener, "from": address}
    excluded = [mid for mid in (ids.trash, ids.junk) if mid]
    return {"from": address, "inMailboxOtherThan": excluded} if excluded else {"from": address}


def find_sender_mail(
    jmap: JmapClient, ids: MailboxIds, work: Sequence[SenderWork]
) -> dict[str, list[Email]]:
    """Each sender's mail (by the server's substring search), batched into few requests."""
    session = jmap.session
    per_request = max(1, session.max_calls_in_request // 2)
    limit = session.max_objects_in_get
    found: dict[str, list[Email]] = {}
    for start in range(0, len(work), per_request):
        chunk = work[start : start + per_request]
        calls: list[methods.Invocation] = []
        for i, w in enumerate(chunk):
            flt = sender_filter(ids, w.sender.email, initial=w.initial)
            calls.append(methods.email_query(session.account_id, flt, limit=limit, call_id=f"q{i}"))
            ref = methods.result_ref(f"q{i}", "Email/query", "/ids")
            calls.append(methods.email_get(session.account_id, ref, call_id=f"g{i}"))
        answers = jmap.call(calls)
        for i, w in enumerate(chunk):
            q = methods.raise_for_invocation(answers[2 * i], "Email/query")
            g = methods.raise_for_invocation(answers[2 * i + 1], "Email/get")
            page = methods.parse_email_query(q)
            emails, _ = methods.parse_email_get(g)
            if len(page.ids) >= (page.limit or limit):  # a full page: read on from there
                emails += _rest(jmap, ids, w, page.position + len(page.ids))
            found[w.sender.email] = emails
    return found


def _rest(jmap: JmapClient, ids: MailboxIds, w: SenderWork, position: int) -> list[Email]:
    """The pages after the first of one sender's search."""
    session = jmap.session
    flt = sender_filter(ids, w.sender.email, initial=w.initial)
    found: list[Email] = []
    while True:
        q, g = jmap.call(
            [
                methods.email_query(
                    session.account_id, flt, position=position, limit=session.max_objects_in_get
                ),
                methods.email_get(
                    session.account_id, methods.result_ref("q", "Email/query", "/ids")
                ),
            ]
        )
        page = methods.parse_email_query(methods.raise_for_invocation(q, "Email/query"))
        emails, _ = methods.parse_email_get(methods.raise_for_invocation(g, "Email/get"))
        found += emails
        if not page.ids or len(page.ids) < (page.limit or session.max_objects_in_get):
            return found
        position += len(page.ids)


def filing_updates(
    settings: Settings, ids: MailboxIds, w: SenderWork, searched: Sequence[Email]
) -> Update:
    """The sender's filing patches: its searched mail (exact address only) and its triggers."""
    category = next(c for c in settings.categories if c.name == w.sender.category)
    filing = plan.Filing(
        chain_ids=ids.chain_ids([c.name for c in settings.chain(category.name)]),
        managed_ids=ids.managed_ids,
        screener_id=ids.screener,
        inbox_id=ids.inbox,
        add_to_inbox=category.add_to_inbox,
    )
    triggers = {e.id for e in w.sender.trigger_emails}
    emails = {e.id: e for e in w.sender.trigger_emails}
    emails.update((e.id, e) for e in searched if plan.is_from(e, w.sender.email))
    update: Update = {}
    for email in emails.values():
        patch = plan.filing_patch(email, filing)
        if ids.warning and email.id not in triggers and ids.warning in email.mailbox_ids:
            patch[f"mailboxIds/{ids.warning}"] = None  # old warnings go when re-processed
        if patch:
            update[email.id] = patch
    return update


def label_updates(ids: MailboxIds, w: SenderWork) -> Update:
    update: Update = {}
    for email in w.sender.trigger_emails:
        patch = plan.label_patch(
            email, label_id=w.sender.label_id, warning_id=ids.warning, warn=w.warn
        )
        if patch:
            update[email.id] = patch
    return update


def apply_per_sender(
    jmap: JmapClient,
    updates: Mapping[str, Update],
    work: Sequence[SenderWork],
    writes: list[SetResult],
    on_fail: Callable[[SenderWork, BaseException], None],
) -> None:
    """All senders' writes in one batch; on any failure, again one sender at a time."""
    merged = {eid: patch for u in updates.values() for eid, patch in u.items()}
    if not merged:
        return
    try:
        writes.extend(jmap.update_emails(merged))
        return
    except Exception:  # noqa: S110 -- redone per sender below, where it is attributed
        pass
    for w in work:
        if w.ok and updates.get(w.sender.email):
            try:
                writes.extend(jmap.update_emails(updates[w.sender.email]))
            except Exception as exc:  # isolation: this sender only
                on_fail(w, exc)


def _search_one(
    jmap: JmapClient, ids: MailboxIds, w: SenderWork, found: dict[str, list[Email]]
) -> None:
    found[w.sender.email], _ = jmap.query_emails(
        sender_filter(ids, w.sender.email, initial=w.initial)
    )


def file_senders(
    jmap: JmapClient,
    settings: Settings,
    ids: MailboxIds,
    work: Sequence[SenderWork],
    writes: list[SetResult],
    bound: Any,
) -> None:
    """Steps 6 and 7 of triage.md for every sender still standing."""

    def on_fail(w: SenderWork, exc: BaseException) -> None:
        fail(w, exc, bound)

    if not work:
        return
    try:
        found = find_sender_mail(jmap, ids, work)
    except Exception:  # the batch failed: search one sender at a time, isolated
        found = {}
        for w in work:
            guard_many([w], bound, partial(_search_one, jmap, ids, w, found))
    filing: dict[str, Update] = {}
    for w in work:
        if w.ok:
            filing[w.sender.email] = filing_updates(settings, ids, w, found.get(w.sender.email, []))
            w.moved = len(filing[w.sender.email])
    apply_per_sender(jmap, filing, work, writes, on_fail)
    labels = {w.sender.email: label_updates(ids, w) for w in work if w.ok}
    apply_per_sender(jmap, labels, work, writes, on_fail)
