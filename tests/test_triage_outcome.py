"""Per-sender isolation as values: a step's value, or the senders it failed (no server)."""

from __future__ import annotations

import pytest

from mailroom.errors import JmapError, PassStopped, TransportError
from mailroom.jmap.models import Address, Email
from mailroom.triage import plan
from mailroom.triage.outcome import Outcome, attempt, holding
from mailroom.triage.sender import SenderId


def sender(address: str) -> plan.LabelledSender:
    email = Email(f"e-{address}", Address(address, None), frozenset({"L"}))
    return plan.LabelledSender(SenderId(address), None, "Feed", "L", (email,))


ANN, BOB, CAT = sender("ann@x.org"), sender("bob@x.org"), sender("cat@x.org")


def test_a_step_that_runs_returns_its_value_and_fails_no_one() -> None:
    assert attempt([ANN], lambda: 42) == (42, Outcome())


def test_a_step_that_raises_fails_the_senders_it_was_for_and_no_others() -> None:
    def refused() -> int:
        raise JmapError("refused")

    value, out = attempt([ANN, BOB], refused)

    assert value is None
    assert out.failed == {ANN.id: "JmapError: refused", BOB.id: "JmapError: refused"}
    assert out.standing([ANN, BOB, CAT]) == [CAT]


def test_a_server_that_does_not_answer_ends_the_pass_instead() -> None:
    def hangs() -> None:
        raise TransportError("JMAP", "http://jmap.test/", "timed out")

    with pytest.raises(PassStopped):
        attempt([ANN], hangs)


def test_joined_outcomes_keep_each_senders_first_reason_and_who_waits() -> None:
    first = Outcome(failed={ANN.id: "first"})
    later = Outcome(failed={ANN.id: "later", BOB.id: "bob's"}) | holding([CAT], "gone")

    joined = first | later

    assert joined.failed == {ANN.id: "first", BOB.id: "bob's"}
    assert joined.waiting == {CAT.id: "gone"}
    assert joined.standing([ANN, BOB, CAT]) == []
