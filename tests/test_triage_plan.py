"""The pure decisions of a triage pass."""

from typing import Any

from mailroom.jmap.methods import email_update
from mailroom.jmap.models import Address, Email
from mailroom.triage import plan
from mailroom.triage.sender import SenderId

LABELS = {"L-feed": "Feed", "L-imbox": "Imbox"}
ERROR = "M-error"


def mail(id_: str, sender: str | None, *boxes: str, name: str | None = None) -> Email:
    addr = Address(sender, name) if sender is not None else None
    return Email(id_, addr, frozenset(boxes))


def test_senders_are_grouped_case_insensitively_and_keep_the_first_name() -> None:
    emails = [
        mail("e1", "Bob@Example.com", "L-feed", "S"),
        mail("e2", "bob@example.com", "L-feed", "S", name="Bob Builder"),
        mail("e3", "BOB@example.com", "L-feed", name="Robert"),
    ]
    scanned = plan.plan_scan(emails, labels=LABELS, error_id=ERROR)
    assert scanned.conflicts == ()
    (sender,) = scanned.senders
    assert sender.email == "bob@example.com"
    assert sender.display_name == "Bob Builder"
    assert sender.category == "Feed"
    assert sender.label_id == "L-feed"
    assert [e.id for e in sender.trigger_emails] == ["e1", "e2", "e3"]


def test_two_labels_on_one_sender_is_a_conflict_and_not_a_sender() -> None:
    emails = [
        mail("e1", "bob@example.com", "L-feed"),
        mail("e2", "bob@example.com", "L-imbox"),
        mail("e3", "amy@example.com", "L-imbox"),
    ]
    scanned = plan.plan_scan(emails, labels=LABELS, error_id=ERROR)
    assert [s.email for s in scanned.senders] == ["amy@example.com"]
    assert scanned.conflicts == (plan.Conflict("bob@example.com", ("Feed", "Imbox"), ("e1", "e2")),)


def test_two_labels_on_one_email_is_a_conflict() -> None:
    scanned = plan.plan_scan(
        [mail("e1", "bob@example.com", "L-feed", "L-imbox")], labels=LABELS, error_id=ERROR
    )
    assert scanned.senders == ()
    assert scanned.conflicts[0].email_ids == ("e1",)


def test_error_labelled_and_senderless_mail_is_left_alone() -> None:
    emails = [
        mail("e1", "bob@example.com", "L-feed", ERROR),
        mail("e2", None, "L-feed"),
        mail("e3", "", "L-feed"),
        mail("e4", "amy@example.com", "Inbox"),  # no label: not ours
    ]
    scanned = plan.plan_scan(emails, labels=LABELS, error_id=ERROR)
    assert scanned.senders == ()
    assert scanned.skipped_error == 1
    assert scanned.without_sender == ("e2", "e3")


def filing_patch(email: Email, filing: plan.Filing) -> dict[str, Any]:
    """The patch as the JMAP client writes it."""
    return email_update(plan.filing_patch(email, filing))


def label_patch(email: Email, **how: Any) -> dict[str, Any]:
    return email_update(plan.label_patch(email, **how))


FILING = plan.Filing(
    chain_ids=("M-person", "M-imbox"),
    managed_ids=frozenset({"M-person", "M-imbox", "M-feed", "M-paper"}),
    screener_id="S",
    inbox_id="I",
    add_to_inbox=False,
)


def test_filing_adds_the_whole_chain_and_removes_screener() -> None:
    patch = filing_patch(mail("e", "a@x", "S"), FILING)
    assert patch == {"mailboxIds/M-person": True, "mailboxIds/M-imbox": True, "mailboxIds/S": None}


def test_refiling_removes_stale_destinations_but_never_inbox() -> None:
    patch = filing_patch(mail("e", "a@x", "M-feed", "I", "Other"), FILING)
    assert patch == {
        "mailboxIds/M-person": True,
        "mailboxIds/M-imbox": True,
        "mailboxIds/M-feed": None,
    }


def test_add_to_inbox_applies_only_to_screener_mail() -> None:
    filing = plan.Filing(("M-imbox",), frozenset({"M-imbox"}), "S", "I", add_to_inbox=True)
    assert filing_patch(mail("e", "a@x", "S"), filing) == {
        "mailboxIds/M-imbox": True,
        "mailboxIds/I": True,
        "mailboxIds/S": None,
    }
    assert filing_patch(mail("e", "a@x", "Archive"), filing) == {"mailboxIds/M-imbox": True}


def test_filed_mail_needs_no_patch() -> None:
    assert filing_patch(mail("e", "a@x", "M-person", "M-imbox"), FILING) == {}


def test_label_patch_removes_label_and_sets_or_clears_the_warning() -> None:
    e = mail("e", "a@x", "L", "W")
    assert label_patch(e, label_id="L", warning_id="W", warn=False) == {
        "mailboxIds/L": None,
        "mailboxIds/W": None,
    }
    assert label_patch(e, label_id="L", warning_id="W", warn=True) == {
        "mailboxIds/L": None,
        "mailboxIds/W": True,
    }
    assert label_patch(e, label_id="L", warning_id=None, warn=True) == {"mailboxIds/L": None}


def test_exact_sender_match_rejects_lookalikes() -> None:
    bob = SenderId.of(" Bob@Example.com ")
    assert bob == SenderId("bob@example.com")
    assert bob.sent(mail("e", "BOB@example.com"))
    assert bob.sent(mail("e", " bob@example.com"))
    assert not bob.sent(mail("e", "bob@example.com.evil.net"))
    assert not bob.sent(mail("e", "notbob@example.com"))
    assert not bob.sent(mail("e", None))
    assert SenderId.of("  ") is None
    assert SenderId.of_email(mail("e", " ")) is None


def test_initial_triage_is_no_managed_group_or_a_resumed_initial_pass() -> None:
    line = "Triaged to Feed on 2026-11-22"
    chain = ("Feed",)
    assert plan.is_initial_triage(
        managed_groups_of_contact=frozenset(),
        chain_groups=chain,
        last_history_line=None,
        initial_line=line,
    )
    assert plan.is_initial_triage(
        managed_groups_of_contact=frozenset({"Feed"}),
        chain_groups=chain,
        last_history_line=line,
        initial_line=line,
    )
    assert not plan.is_initial_triage(
        managed_groups_of_contact=frozenset({"Feed"}),
        chain_groups=chain,
        last_history_line="Triaged to Feed on 2026-11-01",
        initial_line=line,
    )
    assert not plan.is_initial_triage(
        managed_groups_of_contact=frozenset({"Person", "Imbox"}),
        chain_groups=chain,
        last_history_line=line,
        initial_line=line,
    )


def test_name_mismatch_ignores_case_and_padding() -> None:
    assert not plan.names_differ(" Bob Smith ", "bob smith")
    assert plan.names_differ("Robert Smith", "Bob Smith")
    assert not plan.names_differ(None, "Bob")
    assert not plan.names_differ("Bob", None)


def test_cards_are_indexed_by_every_address_they_carry_and_groups_are_left_out() -> None:
    from mailroom.carddav.models import Card
    from mailroom.triage.contacts import cards_by_address, pick_contact

    person = Card(
        "/b/2.vcf",
        None,
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:p\r\nFN:P\r\nN:P;;;;\r\n"
        "EMAIL:Pat@Home.example\r\nEMAIL:pat@work.example\r\nEND:VCARD\r\n",
    )
    twin = Card(
        "/b/1.vcf",
        None,
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:t\r\nFN:T\r\nN:T;;;;\r\n"
        "EMAIL:pat@work.example\r\nEND:VCARD\r\n",
    )
    group = Card(
        "/b/g.vcf",
        None,
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:g\r\nFN:G\r\nN:G;;;;\r\n"
        "X-ADDRESSBOOKSERVER-KIND:group\r\nEND:VCARD\r\n",
    )
    index = cards_by_address([person, twin, group])
    assert sorted(index) == ["pat@home.example", "pat@work.example"]
    found = pick_contact(index["pat@work.example"], "pat@work.example")
    assert found is not None
    assert found.uid == "t"  # the lowest href of the two
    assert pick_contact(index["pat@home.example"], "someone@else.example") is None
