"""Filing decisions without a server: the write order and the search misses."""

from __future__ import annotations

import dataclasses
from typing import Any

from mailroom.config import load_settings
from mailroom.jmap.methods import email_update
from mailroom.jmap.models import Address, Email, EmailPatch
from mailroom.jmap.query import EmailQueryResult
from mailroom.triage import plan
from mailroom.triage.filing import (
    find_sender_mail,
    last_write,
    missed,
    other_mail,
    search_filter,
    where,
    whole,
)
from mailroom.triage.mailboxes import MailboxIds
from mailroom.triage.sender import SenderId

IDS = MailboxIds(
    screener="S",
    inbox="I",
    trash="T",
    junk="J",
    error="E",
    warning="W",
    labels={"L": "Feed"},
    destinations={"Feed": "F"},
)
BOB = SenderId("bob@example.com")
FILING = plan.Filing(("F",), frozenset({"F"}), "S", "I", add_to_inbox=False)


def mail(id_: str, *boxes: str) -> Email:
    return Email(id_, Address(BOB.address, None), frozenset(boxes))


def wire(update: dict[str, EmailPatch]) -> dict[str, dict[str, Any]]:
    """The update as the JMAP client writes it."""
    return {eid: email_update(patch) for eid, patch in update.items()}


def decision(*triggers: Email, initial: bool = True, warn: bool = False) -> plan.Decision:
    sender = plan.LabelledSender(BOB, None, "Feed", "L", triggers)
    return plan.Decision(
        sender, "Feed", "company", ("Feed",), None, "u", initial, "line", warn, FILING
    )


def test_the_labelled_email_is_filed_and_unlabelled_in_one_patch_written_last() -> None:
    trigger = mail("t", "S", "L")
    d = decision(trigger, warn=True)
    to_feed = EmailPatch(add=frozenset({"F"}), remove=frozenset({"S"}))
    filing = {"t": to_feed, "o": to_feed}
    assert wire(other_mail(filing, [d])) == {"o": {"mailboxIds/F": True, "mailboxIds/S": None}}
    assert wire(last_write(IDS, d, filing)) == {
        "t": {
            "mailboxIds/F": True,
            "mailboxIds/S": None,
            "mailboxIds/L": None,
            "mailboxIds/W": True,
        }
    }


def test_a_labelled_email_already_filed_only_loses_its_label() -> None:
    d = decision(mail("t", "F", "L"))
    assert wire(last_write(IDS, d, {})) == {"t": {"mailboxIds/L": None}}


def test_misses_count_labelled_mail_the_listing_or_search_should_have_returned() -> None:
    in_screener, archived, trashed = mail("a", "S", "L"), mail("b", "X", "L"), mail("c", "T", "L")
    initial = decision(in_screener, archived)
    assert missed(IDS, initial, []) == 1  # only Screener mail is listed for an initial sweep
    assert missed(IDS, initial, [in_screener]) == 0
    retriage = decision(in_screener, archived, trashed, initial=False)
    assert missed(IDS, retriage, [in_screener]) == 1  # Trash is not searched: not a miss


def test_a_whole_mailbox_set_is_the_patch_applied_to_what_was_read() -> None:
    email = mail("o", "S", "Other", "W")
    patch = EmailPatch(add=frozenset({"F"}), remove=frozenset({"S", "W"}))
    assert email_update(whole(email, patch)) == {"mailboxIds": {"F": True, "Other": True}}


class FakeJmap:
    """Answers every query with ``emails`` in Email state ``state``; records the filters."""

    def __init__(self, state: str, *emails: Email) -> None:
        self.state, self.emails, self.asked = state, emails, list[list[dict[str, Any]]]()

    def query_emails_many(
        self, filters: list[dict[str, Any]]
    ) -> tuple[list[EmailQueryResult], None]:
        self.asked.append(list(filters))
        return [EmailQueryResult(self.emails, self.state) for _ in filters], None


def test_a_screener_listed_ahead_is_not_listed_again_and_its_state_guards_the_write() -> None:
    trigger, other = mail("t", "S", "L"), mail("o", "S")
    ahead = EmailQueryResult((trigger, other), "s1")
    jmap = FakeJmap("s9")
    found = find_sender_mail(jmap, IDS, [decision(trigger)], ahead)  # type: ignore[arg-type]
    assert jmap.asked == []
    assert found.mail[BOB] == [trigger, other]
    assert found.state == "s1"


def test_with_a_screener_listed_ahead_only_the_re_triage_searches_go_out() -> None:
    carol = SenderId("carol@example.com")
    trigger = mail("t", "S", "L")
    retriaged = Email("c", Address(carol.address, None), frozenset({"X", "L"}))
    sender = plan.LabelledSender(carol, None, "Feed", "L", (retriaged,))
    again = plan.Decision(
        sender, "Feed", "company", ("Feed",), None, "v", False, "line", False, FILING
    )
    ahead = EmailQueryResult((trigger,), "s1")
    for state, guarded in (("s1", "s1"), ("s2", None)):
        jmap = FakeJmap(state, retriaged)
        found = find_sender_mail(jmap, IDS, [decision(trigger), again], ahead)  # type: ignore[arg-type]
        assert jmap.asked == [[search_filter(IDS, carol.address)]]
        assert found.mail == {BOB: [trigger], carol: [retriaged]}
        assert found.state == guarded  # two reads in different states: no whole-set write


def test_a_decision_carries_its_chain_and_old_categories_as_mailbox_ids() -> None:
    settings = load_settings({"HOME": "/nonexistent"})  # the default categories
    ids = MailboxIds(
        screener="S",
        inbox="I",
        trash=None,
        junk=None,
        error="E",
        warning=None,
        labels={},
        destinations={"Person": "P", "Imbox": "M", "Feed": "F"},
    )
    filing = where(settings, ids, settings.chain("Person"), frozenset({"Feed"}))
    assert filing == plan.Filing(("P", "M"), frozenset({"P", "M", "F"}), "S", "I", False, ("F",))
    again = plan.Decision(
        plan.LabelledSender(BOB, None, "Person", "L", ()),
        "Person",
        "person",
        ("Person", "Imbox"),
        None,
        "u",
        False,
        "line",
        False,
        filing,
    )
    assert again.listed == ("S", "F")
    assert dataclasses.replace(again, initial=True).listed == ("S",)
