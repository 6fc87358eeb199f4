"""`mailroom check`'s routing line: the rules judged by where new mail landed.

Stateless: one JMAP request reads the newest arrivals of the last week in every
mailbox, with the mailboxes (``JmapClient.newest_emails``); one CardDAV REPORT reads
their senders' contacts and the group cards; each arrival is judged as it stands now
(``routing.judge``) and ``routing.observed`` turns the judgments into lines: per group,
and for strangers, the newest judged arrival decides.
"""

from __future__ import annotations

from datetime import datetime

from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings
from mailroom.errors import MailroomError, SetupNeededError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Email
from mailroom.ops.rules import routing_mode
from mailroom.routing import observed
from mailroom.routing.judge import Arrival, Placement, judge, placement
from mailroom.routing.server import model_of
from mailroom.triage import contacts
from mailroom.triage.sender import SenderId


def _arrival(email: Email) -> Arrival:  # TODO: the arrivals branch's arrival_of
    return Arrival(email.id, SenderId.of_email(email), email.mailbox_ids, email.received_at or "")


def _contact_groups(
    carddav: CardDavClient, senders: list[SenderId], groups: tuple[str, ...]
) -> dict[SenderId, frozenset[str] | None]:  # TODO: the arrivals branch's contact_groups
    if not senders:
        return {}
    addresses = [s.address for s in senders]
    read = carddav.find_by_emails(addresses, per_query=len(addresses), with_groups=True)
    book = contacts.GroupBook(carddav, groups, read)
    cards = contacts.cards_by_address(read)
    found: dict[SenderId, frozenset[str] | None] = {}
    for s in senders:
        existing = contacts.pick_contact(cards.get(s.address, []), s.address)
        uid = existing.contact.uid if existing is not None else None
        found[s] = None if existing is None else book.groups_of(uid or "", groups)
    return found


def observe(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient, *, now: datetime, mode: str
) -> tuple[observed.Observed, Placement]:
    """Read the newest arrivals, look their senders up, judge them; what they show."""
    emails, mailboxes = jmap.newest_emails(observed.window_start(now), limit=observed.NEWEST)
    view = placement(model_of(settings), mailboxes, labels=[c.label for c in settings.categories])
    arrivals = observed.settled(map(_arrival, emails), now=now, mode=mode)
    senders = sorted({a.sender for a in arrivals if a.sender is not None})
    groups = _contact_groups(carddav, senders, view.groups)
    judged = [
        (a, judge(a, groups.get(a.sender) if a.sender is not None else None, view))
        for a in arrivals
    ]
    return observed.observe(judged, view), view


def check_routing(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient, *, now: datetime
) -> list[tuple[observed.Level, str]]:
    """check's routing lines: a problem per group whose newest arrival is misrouted."""
    mode = routing_mode(settings)
    if mode == "off":
        return [("note", "routing: not judged (routing: off)")]
    try:
        seen, view = observe(settings, jmap, carddav, now=now, mode=mode)
    except SetupNeededError:
        return [("note", "routing: judged by new mail once `mailroom setup --apply` has run")]
    except MailroomError as exc:
        return [("problem", f"routing: {exc}")]
    return observed.findings(seen, view, mode)
