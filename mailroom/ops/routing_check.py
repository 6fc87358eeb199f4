"""`mailroom check`'s routing line: the rules judged by where new mail landed.

Stateless: one JMAP request reads the newest arrivals of the last week in every
mailbox, with the mailboxes (``JmapClient.newest_emails``), one more the account's
identities; one CardDAV REPORT reads the contacts of the senders whose mail is screened
and the group cards (``triage.lookup.contact_groups``, as the worker does); each
arrival is judged as it stands now (``routing.judge``) and ``routing.observed`` turns
the judgments into lines: per group, and for strangers, the newest judged arrival
decides.
"""

from __future__ import annotations

from datetime import datetime

from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings
from mailroom.errors import MailroomError, SetupNeededError
from mailroom.jmap.client import JmapClient
from mailroom.routing import observed
from mailroom.routing.arrivals import arrival_of
from mailroom.routing.judge import Placement, judge, placement, unscreened_by_mail
from mailroom.routing.server import model_of
from mailroom.triage.lookup import contact_groups


def observe(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient, *, now: datetime, mode: str
) -> tuple[observed.Observed, Placement]:
    """Read the newest arrivals, look their senders up, judge them; what they show."""
    emails, mailboxes = jmap.newest_emails(observed.window_start(now), limit=observed.NEWEST)
    view = placement(
        model_of(settings),
        mailboxes,
        labels=[c.label for c in settings.categories],
        identities=jmap.identities(),
    )
    arrivals = observed.settled(map(arrival_of, emails), now=now, mode=mode)
    asked = [a for a in arrivals if unscreened_by_mail(a, view) is None]
    senders = sorted({a.sender for a in asked if a.sender is not None})
    groups = contact_groups(carddav, senders, view.groups)
    judged = [
        (a, judge(a, groups.get(a.sender) if a.sender is not None else None, view))
        for a in arrivals
    ]
    return observed.observe(judged, view), view


def check_routing(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient, *, now: datetime
) -> list[tuple[observed.Level, str]]:
    """check's routing lines: a problem per group whose newest arrival is misrouted."""
    mode = settings.routing
    if mode == "off":
        return [("note", "routing: not judged (routing: off)")]
    try:
        seen, view = observe(settings, jmap, carddav, now=now, mode=mode)
    except SetupNeededError:
        return [("note", "routing: judged by new mail once `mailroom setup --apply` has run")]
    except MailroomError as exc:
        return [("problem", f"routing: {exc}")]
    return observed.findings(seen, view, mode)
