"""`mailroom reset [--apply] [--yes]`: undo what mailroom did to mail and contacts.

``read_plan`` reads the server and lets ``reset_plan`` decide (pure); the plan is
printed (its text from ``reset_text``); with ``--apply`` and a confirmation,
``reset_apply.Reset`` carries it out in the spec's order (listed there). Where the
server runs Sieve, mailroom's routing rules go first: the script that was active
before setup is active again (``ops.rules``), so new mail is no longer routed.

Each rerun re-derives the plan from the server, so a reset interrupted anywhere
finishes the job when run again, and a finished one plans nothing. A failed group or
contact is reported and left for the next run; a failed mail write stops the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from mailroom.carddav.client import CardDavClient
from mailroom.carddav.groupbook import GroupBook
from mailroom.clients import open_clients
from mailroom.config import Settings
from mailroom.errors import ConfigError, MailroomError, SetupNeededError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.sieve import SieveScripts
from mailroom.ops import rules
from mailroom.ops.reset_apply import Reset
from mailroom.ops.reset_plan import (
    ResetMailboxes,
    ResetPlan,
    mail_filter,
    plan_contacts,
    plan_mail,
    reset_mailboxes,
)
from mailroom.ops.reset_text import plan_lines
from mailroom.routing.install import RestorePlan
from mailroom.routing.server import restore

EXIT_ABORTED = 2
CONFIRM_WORD = "reset"


# -- reading ---------------------------------------------------------------------------------


def read_plan(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient
) -> tuple[ResetPlan, ResetMailboxes, GroupBook]:
    """Everything reset would change today, read from the server (reads only)."""
    mailboxes, _state = jmap.get_mailboxes()
    boxes = reset_mailboxes(settings, mailboxes)
    query = mail_filter(boxes)
    emails = jmap.query_emails(query)[0] if query else []
    if emails and boxes.screener is None:
        raise SetupNeededError(f"mailbox {settings.screener_mailbox!r}")
    mail = plan_mail(emails, boxes, settings)
    names = [*dict.fromkeys(c.contact_group for c in settings.categories)]
    names.append(settings.provenance_group)
    book = GroupBook(carddav, names)
    groups: dict[str, frozenset[str]] = {}
    for name in names:
        try:
            groups[name] = book.members(name)
        except SetupNeededError:
            continue  # a group that does not exist has nobody to remove
    contacts = plan_contacts(carddav.list_all(), groups, settings.provenance_group)
    return ResetPlan(mail, contacts), boxes, book


# -- confirming ------------------------------------------------------------------------------


def confirm(*, yes: bool, stdin: TextIO, stdout: TextIO) -> bool:
    """True to go ahead: --yes, or the confirmation word typed on a terminal."""
    if yes:
        return True
    if not stdin.isatty():
        print(
            "mailroom reset --apply asks for confirmation, but standard input is not a "
            "terminal: nothing changed. Run it in a terminal, or add --yes to confirm.",
            file=sys.stderr,
        )
        return False
    print(f'Type "{CONFIRM_WORD}" to confirm: ', end="", file=stdout, flush=True)
    answer = stdin.readline().strip()
    if answer != CONFIRM_WORD:
        print("Not confirmed: nothing changed.", file=stdout)
        return False
    return True


# -- entry points ----------------------------------------------------------------------------


def run(
    settings: Settings,
    jmap: JmapClient,
    carddav: CardDavClient,
    *,
    apply: bool,
    yes: bool,
    stdin: TextIO,
    stdout: TextIO,
) -> int:
    """Print the plan; with ``apply`` and a confirmation, carry it out. The exit code."""

    def say(line: str) -> None:
        print(line, file=stdout, flush=True)

    plan, boxes, book = read_plan(settings, jmap, carddav)
    sieve = rules.read_restore(jmap)
    sieve_empty = sieve is None or sieve[1].empty
    if not plan.empty or sieve_empty:
        for line in plan_lines(plan, settings):
            say(line)
    if sieve is not None:
        for line in rules.restore_lines(sieve[1]):
            say(line)
    if plan.empty and sieve_empty:
        return 0
    if not apply:
        say("Dry run: nothing changed. Run `mailroom reset --apply` to do this.")
        return 0
    if not confirm(yes=yes, stdin=stdin, stdout=stdout):
        return EXIT_ABORTED
    return carry_out(Reset(settings, jmap, carddav, boxes, book, say), plan, sieve, say)


def carry_out(
    reset: Reset,
    plan: ResetPlan,
    sieve: tuple[SieveScripts, RestorePlan] | None,
    say: Callable[[str], None],
) -> int:
    """Restore the Sieve scripts, then undo the plan; the exit code."""
    try:
        if sieve is not None and not sieve[1].empty:
            restore(*sieve)
            say("Sieve: mailroom's rules removed, what was active before is active again")
        reset.run(plan)
    except MailroomError as exc:
        say(f"failed: {exc}")
        say("Stopped. Run `mailroom reset --apply` again: it picks up where this run stopped.")
        return 1
    say(reset.summary())
    if reset.failures:
        say("Run `mailroom reset --apply` again to retry what failed.")
        return 1
    return 0


def main(
    settings: Settings,
    *,
    apply: bool,
    yes: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """`mailroom reset`: 0 done (or nothing to do), 1 failed, 2 not confirmed."""
    out = stdout or sys.stdout
    try:
        with open_clients(settings) as (jmap, carddav):
            return run(
                settings, jmap, carddav, apply=apply, yes=yes, stdin=stdin or sys.stdin, stdout=out
            )
    except ConfigError:
        raise
    except MailroomError as exc:
        print(f"failed: {exc}", file=out)
        return 1
