"""A server that stops answering writes costs a pass one timeout, not one per sender.

A real Cyrus behind the project's fault proxy (``faultserver.WriteHolder``): every
request is forwarded except those carrying an ``Email/set``, which hang without a byte
of answer (or get a 503 with ``Retry-After``). The first such write ends the pass: the
number of write attempts is counted at the proxy, not the wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mailroom.carddav.client import CardDavClient
from mailroom.errors import ServerNotAnswering, ServerTooSlow, TransportError
from mailroom.httpbounds import HttpLimits
from mailroom.jmap.client import JmapClient
from mailroom.triage.engine import Triager
from mailroom_dev.faultserver import WriteHolder
from mailroom_dev.realserver import Account
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real

QUICK = HttpLimits(connect=2.0, read=0.5, deadline=2.0)  # a hanging write fails fast


@contextmanager
def through(box: Box, proxy: WriteHolder) -> Iterator[Triager]:
    """A Triager whose JMAP requests go through ``proxy`` (CardDAV straight to Cyrus)."""
    s, c = box.settings, box.settings.credentials()
    jmap = JmapClient(proxy.session_url, c.jmap_token, limits=QUICK)
    carddav = CardDavClient(s.carddav_url, c.carddav_username, c.carddav_password)
    try:
        yield Triager(s, jmap, carddav)
    finally:
        jmap.close()
        carddav.close()


def labelled(box: Box, senders: int) -> list[list[str]]:
    """``senders`` senders with two emails each in the Screener, the first labelled."""
    mail = []
    for n in range(senders):
        ids = [box.deliver(from_addr=f"s{n}@hang.example", subject=f"s{n}-{i}") for i in range(2)]
        box.label(ids[0], "@ToFeed")
        mail.append(ids)
    return mail


@pytest.mark.parametrize("senders", [1, 50])
def test_a_hanging_email_set_ends_the_pass_at_its_first_attempt(
    account: Account, senders: int
) -> None:
    box = Box.create(account)
    mail = labelled(box, senders)
    with WriteHolder(account.session_url) as proxy, through(box, proxy) as triager:
        with pytest.raises(ServerNotAnswering) as ended:
            triager.run_pass("test")
        attempts = proxy.held
        assert triager._strikes.counts == {}  # the senders are not to blame: no strike

        proxy.mode = "503"  # ... and the next pass is no different
        with pytest.raises(ServerNotAnswering):
            triager.run_pass("test")

    assert attempts == 1  # one write attempt, not three per sender
    assert proxy.held == 2
    assert isinstance(ended.value.cause, (ServerTooSlow, TransportError))
    for first, second in mail:  # every label kept, nothing lost
        assert box.where(first) == {"Screener", "@ToFeed"}
        assert box.where(second) == {"Screener"}
    report = box.triage()  # the server answers again: the next pass does it all
    assert (report.senders_triaged, report.failures) == (senders, 0)
    assert [box.where(e) for ids in mail for e in ids] == [{"Feed"}] * (2 * senders)


def test_a_503_on_a_write_ends_the_pass_with_the_servers_retry_after(account: Account) -> None:
    box = Box.create(account)
    labelled(box, 3)
    proxy = WriteHolder(account.session_url, mode="503", retry_after=90)
    with proxy, through(box, proxy) as triager, pytest.raises(ServerNotAnswering) as ended:
        triager.run_pass("test")
    assert proxy.held == 1
    assert ended.value.retry_after == 90.0
