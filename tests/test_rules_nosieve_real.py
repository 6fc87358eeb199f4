"""A server without JMAP Sieve (as Fastmail, as far as is known): setup prints the Fastmail
steps, says they are the user's to make and offers `routing: enforce` instead, with its
cost; check gives a note, not a failure."""

from __future__ import annotations

import pytest

from mailroom.ops import check
from mailroom.ops.rules import setup_rules
from mailroom.routing.fastmail import HEADER
from mailroom_dev.realserver import Account, sieve_scripts
from mailroom_dev.triagebox import Box, NoSieve

pytestmark = pytest.mark.real


def test_without_sieve_setup_prints_the_fastmail_steps_and_installs_nothing(
    account: Account,
) -> None:
    box = Box.create(account)  # installs the rules on this server (it runs Sieve) ...
    before = sieve_scripts(account)
    jmap, carddav = box.clients(NoSieve())  # ... but this session offers no Sieve
    try:
        outcome = setup_rules(box.settings, jmap, carddav, apply=True)
        finding = check.check_rules(box.settings, jmap, carddav)
    finally:
        jmap.close()
        carddav.close()
    assert not outcome.failed
    assert outcome.lines[0] == HEADER
    assert outcome.lines[-2].startswith("These rules are yours to make")
    assert outcome.lines[-1].startswith("Or, instead of these rules: MAILROOM_ROUTING=enforce")
    assert "lands in the Inbox for about a second first" in outcome.lines[-1]
    assert sieve_scripts(account) == before
    assert finding.level == "note"
    assert "the rules are yours to create" in finding.text
    assert check.report([finding]) == 0
