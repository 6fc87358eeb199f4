"""Carrying out a reset plan, in the spec's order (``mailroom reset --apply``).

1. mail back to the Screener: one atomic patch per email adds the Screener and
   removes the managed mailboxes, the error and the warning label (see reset_plan),
   in chunks of ``maxObjectsInSet``, a progress line per chunk;
2. the managed contact groups emptied (not the provenance group);
3. contacts mailroom created that the user edited since: the warning label on their
   mail in the Screener, then mailroom's note section stripped; they stay in the
   provenance group until the end, so an interrupted reset still knows them;
4. adopted contacts: mailroom's note section stripped, every other line kept;
5. created, unedited contacts deleted with ``If-Match``; a 412 re-reads the card and
   decides again (edited meanwhile: kept and flagged), never a forced delete;
6. last, the provenance group loses every contact dealt with (and ids with no card).

A failed group or contact is reported and left for the next run; a failed mail write
stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mailroom.carddav import vcard
from mailroom.carddav.client import CardDavClient
from mailroom.carddav.groupbook import GroupBook, retry_on_412
from mailroom.carddav.models import Card
from mailroom.config import Settings
from mailroom.errors import CardDavError, JmapSetError, MailroomError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import EmailPatch
from mailroom.ops.reset_plan import (
    ContactStep,
    GroupStep,
    MailPlan,
    ResetMailboxes,
    ResetPlan,
)
from mailroom.ops.reset_text import plural, summary_line
from mailroom.triage.sender import SenderId

PROGRESS_EVERY = 100  # contacts between two progress lines
Say = Callable[[str], None]


class Reset:
    """Carries out one plan; counts what it did and every failure."""

    def __init__(
        self,
        settings: Settings,
        jmap: JmapClient,
        carddav: CardDavClient,
        boxes: ResetMailboxes,
        book: GroupBook,
        say: Say,
    ) -> None:
        self.settings = settings
        self.jmap = jmap
        self.carddav = carddav
        self.boxes = boxes
        self.book = book
        self.say = say
        self.screened: Mapping[str, str] = {}
        self.counts = {"moved": 0, "groups": 0, "deleted": 0, "kept": 0, "flagged": 0, "adopted": 0}
        self.failures: list[str] = []

    def run(self, plan: ResetPlan) -> None:
        self.screened = plan.mail.screened
        self.move_mail(plan.mail)
        c = plan.contacts
        for group in c.groups:
            self.empty_group(group)
        done = {s.uid for s in c.of("keep") if self.keep(s)}
        for step in c.of("adopted"):
            self.adopt(step)
        deletes = c.of("delete")
        for n, step in enumerate(deletes, 1):
            if self.delete(step):
                done.add(step.uid)
            if n % PROGRESS_EVERY == 0 or n == len(deletes):
                self.say(f"deleted {self.counts['deleted']}/{len(deletes)} contacts")
        if c.provenance is not None:
            leaving = c.provenance.members & (done | c.dangling)
            self.empty_group(GroupStep(c.provenance.name, frozenset(leaving)))

    # -- mail
    def move_mail(self, mail: MailPlan) -> None:
        items = list(mail.patches.items())
        size = self.jmap.session.max_objects_in_set
        for start in range(0, len(items), size):
            self.update(dict(items[start : start + size]))
            self.counts["moved"] = min(start + size, len(items))
            self.say(f"moved {self.counts['moved']}/{len(items)} emails")

    def update(self, patches: Mapping[str, EmailPatch]) -> None:
        """Email/set; an email deleted meanwhile (notFound) has nothing left to undo."""
        try:
            self.jmap.update_emails(patches)
        except JmapSetError as exc:
            if any(f.get("type") != "notFound" for f in exc.failures.values()):
                raise

    def flag(self, addresses: tuple[str, ...]) -> int:
        """The warning label on the Screener mail sent from ``addresses``; how many."""
        screener, warning = self.boxes.screener, self.boxes.warning
        if not self.settings.warnings_enabled or warning is None or screener is None:
            return 0
        wanted = {a.strip().lower() for a in addresses if a.strip()}
        todo = {eid for eid, sender in self.screened.items() if sender in wanted}
        for address in sorted(wanted):
            query = {"operator": "AND", "conditions": [{"inMailbox": screener}, {"from": address}]}
            for email in self.jmap.query_emails(query)[0]:
                if not SenderId(address).sent(email):
                    continue  # `from` matches substrings: bob@x.com is not notbob@x.com
                if warning in email.mailbox_ids:
                    todo.discard(email.id)
                elif screener in email.mailbox_ids:
                    todo.add(email.id)
        self.update({eid: EmailPatch(add=frozenset({warning})) for eid in sorted(todo)})
        return len(todo)

    # -- contacts
    def empty_group(self, group: GroupStep) -> None:
        if not group.members:
            return
        try:
            self.book.change(group.name, remove=group.members)
        except MailroomError as exc:
            self.fail(f"group {group.name}", exc)
            return
        self.counts["groups"] += 1
        self.say(f"emptied group {group.name} ({plural(len(group.members), 'member')})")

    def keep(self, step: ContactStep, card: Card | None = None) -> bool:
        try:
            flagged = self.flag(step.emails)
            self.strip(card or step.card)
        except MailroomError as exc:
            self.fail(step.label, exc)
            return False
        self.counts["kept"] += 1
        self.counts["flagged"] += flagged
        self.say(f"kept {step.label}: {plural(flagged, 'email')} flagged, note section removed")
        return True

    def adopt(self, step: ContactStep) -> bool:
        try:
            self.strip(step.card)
        except MailroomError as exc:
            self.fail(step.label, exc)
            return False
        self.counts["adopted"] += 1
        return True

    def strip(self, card: Card) -> None:
        """Remove mailroom's note section (If-Match; a 412 re-reads and strips again)."""

        def write(fresh: Card) -> None:
            text = vcard.strip_mailroom_section(fresh.text)
            if text != fresh.text:
                self.carddav.update(fresh, text)

        _gone_is_done(lambda: retry_on_412(card.href, self._reader(card), write))

    def delete(self, step: ContactStep) -> bool:
        """Delete if still unedited; a card edited meanwhile is kept (and flagged)."""
        edited: list[Card] = []

        def write(fresh: Card) -> None:
            if vcard.was_edited_by_user(fresh.text):
                edited.append(fresh)
            else:
                self.carddav.delete(fresh)

        try:
            _gone_is_done(lambda: retry_on_412(step.card.href, self._reader(step.card), write))
        except MailroomError as exc:
            self.fail(step.label, exc)
            return False
        if edited:
            return self.keep(step, edited[-1])
        self.counts["deleted"] += 1
        return True

    def _reader(self, card: Card) -> Callable[[], Card]:
        cached = [card]
        return lambda: cached.pop() if cached else self.carddav.get(card.href)

    def fail(self, what: str, exc: MailroomError) -> None:
        self.failures.append(what)
        self.say(f"failed: {what}: {exc}")

    def summary(self) -> str:
        return summary_line(self.counts, len(self.failures))


def _gone_is_done(step: Callable[[], None]) -> None:
    """Run a card step; a card deleted meanwhile (404 on re-read) needs nothing more."""
    try:
        step()
    except CardDavError as exc:
        if exc.status != 404:
            raise
