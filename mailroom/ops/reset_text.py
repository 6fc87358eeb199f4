"""The text `mailroom reset` prints: the plan, and the closing summary (pure).

Every function takes values and returns lines; ``reset`` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailroom.config import Settings
from mailroom.ops.reset_plan import MailPlan, ResetPlan


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def mail_lines(mail: MailPlan, settings: Settings) -> list[str]:
    if not mail.patches:
        return ["  nothing to change"]
    lines = [f"  {plural(mail.to_screener, 'email')} back to {settings.screener_mailbox}"]
    if mail.from_mailbox:
        width = max(len(name) for name, _ in mail.from_mailbox)
        lines += [f"    from {name:<{width}}  {n}" for name, n in mail.from_mailbox]
    if mail.left_out:
        lines.append(
            f"  {plural(mail.left_out, 'email')} in Trash or Junk: managed mailboxes removed, "
            "left where they are"
        )
    lines += [f"  remove {name} from {plural(n, 'email')}" for name, n in mail.labels]
    lines.append("  the Inbox is left alone: mail that triage also put there keeps it")
    return lines


def group_lines(plan: ResetPlan) -> list[str]:
    c = plan.contacts
    lines = [f"  empty {g.name} ({plural(len(g.members), 'member')})" for g in c.groups]
    if c.provenance is not None:
        lines.append(
            f"  empty {c.provenance.name} ({plural(len(c.provenance.members), 'member')}), "
            "last: it is how the contacts mailroom created are recognised"
        )
    return lines or ["  nothing to change"]


def contact_lines(plan: ResetPlan, settings: Settings) -> list[str]:
    c = plan.contacts
    flag = (
        f"its mail in {settings.screener_mailbox} gets {settings.warning_label}"
        if settings.warnings_enabled
        else "warnings are disabled: its mail is not flagged"
    )
    lines = [f"  delete  {s.label}  ({s.reason})" for s in c.of("delete")]
    lines += [
        f"  keep    {s.label}  ({s.reason}); {flag}; mailroom's note section removed"
        for s in c.of("keep")
    ]
    lines += [f"  strip   {s.label}  ({s.reason})" for s in c.of("adopted")]
    lines += [f"  skip    {href}  (cannot be read; left alone)" for href in c.unreadable]
    return lines or ["  nothing to change"]


def plan_lines(plan: ResetPlan, settings: Settings) -> list[str]:
    if plan.empty:
        return [
            "Nothing to reset: no mail in a managed mailbox, the contact groups are empty "
            "and no contact carries mailroom's traces."
        ]
    return [
        "Reset plan",
        "Mail",
        *mail_lines(plan.mail, settings),
        "Contact groups",
        *group_lines(plan),
        "Contacts",
        *contact_lines(plan, settings),
    ]


def summary_line(counts: Mapping[str, int], failures: int) -> str:
    """The closing line of an applied reset, from ``Reset``'s counts."""
    c = counts
    return (
        f"Reset: {plural(c['moved'], 'email')} back, {plural(c['groups'], 'group')} "
        f"emptied, {c['deleted']} contacts deleted, {c['kept']} kept "
        f"({plural(c['flagged'], 'email')} flagged), {c['adopted']} adopted cleaned; "
        f"{plural(failures, 'failure')}."
    )
