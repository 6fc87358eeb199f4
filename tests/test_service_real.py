"""The whole service end to end: real Cyrus with push, real processes, real supervisord.

Each test runs `mailroom run` on a fresh account (``ServiceBox``), acts as the user
over JMAP, and checks the end state in the mailbox and the address book; the log
lines and status files show which pass did it (trigger=push, fallback, startup).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from realserver import Account, CyrusServer
from servicebox import ServiceBox, wait_for
from triagebox import Box

pytestmark = [pytest.mark.real, pytest.mark.push, pytest.mark.slow]

TRIAGE_DEADLINE = 60.0  # push arrives within ~1 s; this only bounds a failure on a busy machine


@pytest.fixture
def box(account: Account, cyrus: CyrusServer) -> Box:
    if not cyrus.eventsource:
        pytest.fail("this Cyrus build answers the EventSource with 204; start it with push")
    return Box.create(account)


@pytest.fixture
def service(box: Box) -> Iterator[ServiceBox]:
    with ServiceBox.running(box, poll_interval=600, debounce_seconds=1) as svc:
        yield svc


def assert_filed_to_feed(box: Box, address: str, *email_ids: str) -> None:
    """triage.md's end state for an initial triage to Feed."""
    for email_id in email_ids:
        assert box.where(email_id) == {"Feed"}  # filed, out of the Screener, label gone
    assert box.groups_of(address) == {"Feed", "Mailroom"}


@pytest.mark.timeout(180)
def test_a_label_applied_over_jmap_is_triaged_by_a_push_pass(box: Box, service: ServiceBox) -> None:
    first = box.deliver(from_addr="news@shop.example", from_name="Shop News", subject="a")
    second = box.deliver(from_addr="news@shop.example", subject="b")
    box.searchable("news@shop.example")
    since = service.mark()

    box.label(first, "@ToFeed")

    done = wait_for(
        lambda: [p for p in service.passes("push", since) if p["senders_triaged"] == 1],
        "a push pass that triages the sender",
        TRIAGE_DEADLINE,
    )
    assert done[0]["failures"] == 0
    assert not service.passes("fallback")  # poll_interval 600: the timer never fired
    assert_filed_to_feed(box, "news@shop.example", first, second)
    assert box.contact("news@shop.example")["FN"] == ["Shop News"]
