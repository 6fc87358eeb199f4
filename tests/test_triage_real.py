"""Every rule of triage.md, against a real Cyrus, checked in the mailbox and address book."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from mailroom_dev.realserver import Account
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real


@pytest.fixture
def box(account: Account) -> Box:
    return Box.create(account)


def test_initial_triage_to_a_root_category_files_the_backlog(box: Box) -> None:
    first = box.deliver(from_addr="news@shop.example", from_name="Shop News", subject="a")
    second = box.deliver(from_addr="news@shop.example", subject="b")
    other = box.deliver(from_addr="stranger@else.example", subject="c")
    box.label(first, "@ToFeed")
    box.searchable("news@shop.example")

    report = box.triage()

    assert (report.senders_triaged, report.failures) == (1, 0)
    assert box.where(first) == {"Feed"}  # label gone, Screener gone, no Inbox
    assert box.where(second) == {"Feed"}
    assert box.where(other) == {"Screener"}
    card = box.contact("news@shop.example")
    assert card["FN"] == ["Shop News"]
    assert card["ORG"] == ["Shop News"]
    assert box.groups_of("news@shop.example") == {"Feed", "Mailroom"}
    assert any("Triaged to Feed on" in n for n in card["NOTE"])


def test_initial_triage_to_a_person_category_files_into_child_and_parent(box: Box) -> None:
    first = box.deliver(from_addr="ada@people.example", from_name="Ada Lovelace", subject="a")
    second = box.deliver(from_addr="ada@people.example", subject="b")
    box.label(first, "@ToPerson")
    box.searchable("ada@people.example")

    box.triage()

    assert box.where(first) == {"Person", "Imbox"}  # add_to_inbox is not inherited
    assert box.where(second) == {"Person", "Imbox"}
    assert box.groups_of("ada@people.example") == {"Person", "Imbox", "Mailroom"}
    card = box.contact("ada@people.example")
    assert card["N"] == ["Lovelace;Ada;;;"]
    assert "ORG" not in card


def test_initial_triage_to_a_child_of_a_company_category(box: Box) -> None:
    first = box.deliver(from_addr="ads@billboard.example", subject="a")
    box.label(first, "@ToBillboard")
    box.searchable("ads@billboard.example")

    box.triage()

    assert box.where(first) == {"Billboard", "Paper Trail"}
    assert box.groups_of("ads@billboard.example") == {"Billboard", "Paper Trail", "Mailroom"}
    assert box.contact("ads@billboard.example")["FN"] == ["ads"]  # no name: the local part


def test_add_to_inbox_category_puts_screener_mail_in_the_inbox(box: Box) -> None:
    first = box.deliver(from_addr="friend@mail.example", subject="a")
    archived = box.deliver("Archive", from_addr="friend@mail.example", subject="b")
    box.label(first, "@ToImbox")
    box.searchable("friend@mail.example")

    box.triage()

    assert box.where(first) == {"Imbox", "Inbox"}
    assert box.where(archived) == {"Archive"}  # initial triage sweeps the Screener only


def test_retriage_person_to_feed_leaves_no_stale_group_and_spares_trash_and_junk(
    box: Box,
) -> None:
    addr = "bob@corp.example"
    first = box.deliver(from_addr=addr, from_name="Bob Corp", subject="a")
    box.label(first, "@ToPerson")
    box.searchable(addr)
    box.triage()
    assert box.groups_of(addr) == {"Person", "Imbox", "Mailroom"}

    later = box.deliver("Archive", from_addr=addr, subject="later")
    trashed = box.deliver("Trash", from_addr=addr, subject="trashed")
    spam = box.deliver("Junk", from_addr=addr, subject="spam")
    box.label(later, "@ToFeed")
    box.searchable(addr)
    report = box.triage()

    assert report.failures == 0
    assert box.groups_of(addr) == {"Feed", "Mailroom"}
    assert box.where(first) == {"Feed"}  # Person and Imbox removed
    assert box.where(later) == {"Archive", "Feed"}
    assert box.where(trashed) == {"Trash"}
    assert box.where(spam) == {"Junk"}
    notes = box.contact(addr)["NOTE"][0]
    assert "Triaged to Person on" in notes
    assert "Re-triaged to Feed on" in notes


def test_lookalike_senders_stay_in_the_screener(box: Box) -> None:
    bob = box.deliver(from_addr="bob@example.com", subject="a")
    evil = box.deliver(from_addr="bob@example.com.evil.net", subject="b")
    notbob = box.deliver(from_addr="notbob@example.com", subject="c")
    box.label(bob, "@ToFeed")
    box.searchable("bob@example.com", "bob@example.com.evil.net", "notbob@example.com")

    box.triage()

    assert box.where(bob) == {"Feed"}
    assert box.where(evil) == {"Screener"}
    assert box.where(notbob) == {"Screener"}
    assert box.account.contacts_with_email("notbob@example.com") == []


def test_two_labels_on_one_sender_get_the_error_label_and_nothing_else(box: Box) -> None:
    one = box.deliver(from_addr="two@faced.example", subject="a")
    two = box.deliver(from_addr="two@faced.example", subject="b")
    box.label(one, "@ToFeed")
    box.label(two, "@ToImbox")
    cards_before = box.account.cards()

    report = box.triage()

    assert report.conflicts == 1
    assert box.where(one) == {"Screener", "@ToFeed", "@MailroomError"}
    assert box.where(two) == {"Screener", "@ToImbox", "@MailroomError"}
    assert box.account.cards() == cards_before

    again = box.triage()  # error-labelled mail is skipped until the user clears it
    assert (again.conflicts, again.senders_triaged) == (0, 0)
    assert box.where(one) == {"Screener", "@ToFeed", "@MailroomError"}


HAND_WRITTEN = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:hand-written-1\r\nFN:Robert Tables\r\n"
    "N:Tables;Robert;;;\r\nEMAIL;TYPE=INTERNET:bobby@tables.example\r\n"
    "TEL;TYPE=CELL:+1 555 0100\r\nORG:Tables Inc.\r\nNOTE:met at the conference\r\n"
    "END:VCARD\r\n"
)


def test_existing_contact_keeps_every_field_and_a_name_mismatch_warns(box: Box) -> None:
    box.account.put_card(HAND_WRITTEN, "hand-written-1")
    mail = box.deliver(from_addr="bobby@tables.example", from_name="Little Bobby", subject="a")
    box.label(mail, "@ToFeed")
    box.searchable("bobby@tables.example")

    report = box.triage()

    assert report.failures == 0
    card = box.contact("bobby@tables.example")
    assert card["FN"] == ["Robert Tables"]
    assert card["N"] == ["Tables;Robert;;;"]
    assert card["ORG"] == ["Tables Inc."]
    assert card["TEL"] == ["+1 555 0100"]
    assert card["NOTE"][0].startswith("met at the conference")
    assert box.groups_of("bobby@tables.example") == {"Feed"}  # adopted: no provenance
    assert box.where(mail) == {"Feed", "@MailroomWarning"}


def test_warnings_can_be_switched_off(account: Account) -> None:
    box = Box.create(account, {"MAILROOM_WARNINGS_ENABLED": "false"})
    box.account.put_card(HAND_WRITTEN, "hand-written-1")
    mail = box.deliver(from_addr="bobby@tables.example", from_name="Little Bobby", subject="a")
    box.label(mail, "@ToFeed")
    box.searchable("bobby@tables.example")

    box.triage()

    assert box.where(mail) == {"Feed"}


def test_old_warnings_are_cleared_when_the_sender_is_processed_again(box: Box) -> None:
    box.account.put_card(HAND_WRITTEN, "hand-written-1")
    first = box.deliver(from_addr="bobby@tables.example", from_name="Little Bobby", subject="a")
    box.label(first, "@ToFeed")
    box.searchable("bobby@tables.example")
    box.triage()
    assert "@MailroomWarning" in box.where(first)

    later = box.deliver(from_addr="bobby@tables.example", from_name="Robert Tables", subject="b")
    box.label(later, "@ToPaperTrail")
    box.searchable("bobby@tables.example")
    box.triage()

    assert box.where(first) == {"Paper Trail"}
    assert box.where(later) == {"Paper Trail"}


def test_a_pass_run_twice_changes_nothing_the_second_time(box: Box) -> None:
    first = box.deliver(from_addr="twice@example.org", subject="a")
    box.label(first, "@ToFeed")
    box.searchable("twice@example.org")
    box.triage()
    before = box.state()

    report = box.triage()

    assert (report.senders_triaged, report.emails_moved, report.writes) == (0, 0, ())
    assert box.state() == before


LONG = "a" * 200 + "@long.example"  # Cyrus's `from` search never finds this one


def raw_message(from_header: str, subject: str) -> bytes:
    """A message given byte for byte: headers a mail library would refuse to write."""
    return (
        f"From: {from_header}\r\n"
        "To: someone@example.com\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject}@raw.example>\r\n"
        "Date: Sat, 22 Nov 2025 00:00:00 +0000\r\n"
        "\r\n"
        f"{subject}\r\n"
    ).encode()


def test_a_crlf_display_name_has_its_whole_screener_backlog_filed(box: Box) -> None:
    crlf = "=?utf-8?q?Evil=0D=0ACorp?= <evil@crlf.example>"  # an encoded CR LF in the name
    ids = [box.account.deliver_raw(raw_message(crlf, f"crlf-{i}")) for i in range(3)]
    box.label(ids[0], "@ToFeed")

    report = box.triage()  # the initial sweep lists the Screener: no search index needed

    assert (report.senders_triaged, report.failures, report.search_misses) == (1, 0, 0)
    assert [box.where(i) for i in ids] == [{"Feed"}] * 3
    assert box.groups_of("evil@crlf.example") == {"Feed", "Mailroom"}


def test_an_address_the_search_cannot_find_has_its_whole_screener_backlog_filed(
    box: Box,
) -> None:
    ids = [box.account.deliver_raw(raw_message(f"L <{LONG}>", f"long-{i}")) for i in range(3)]
    box.label(ids[1], "@ToFeed")

    report = box.triage()

    assert (report.senders_triaged, report.failures, report.search_misses) == (1, 0, 0)
    assert [box.where(i) for i in ids] == [{"Feed"}] * 3


def test_labelled_mail_a_re_triage_search_cannot_find_is_counted(box: Box) -> None:
    first = box.account.deliver_raw(raw_message(f"L <{LONG}>", "long-a"))
    box.label(first, "@ToFeed")
    assert box.triage().failures == 0
    later = box.account.deliver_raw(raw_message(f"L <{LONG}>", "long-b"), "Archive")
    box.label(later, "@ToImbox")
    box.deliver(from_addr="control@plain.example", subject="control")
    box.searchable("control@plain.example")  # the index has caught up with `later`

    with capture_logs() as logs:
        report = box.triage()  # a re-triage searches by `from`: it misses this sender

    assert (report.senders_triaged, report.failures, report.search_misses) == (1, 0, 1)
    assert box.where(later) == {"Archive", "Imbox"}  # the labelled email is still filed
    assert box.where(first) == {"Imbox"}  # found by listing the old category's mailbox
    (line,) = [e for e in logs if e["event"] == "sender_mail_not_found"]  # its own line
    assert (line["sender"], line["labelled_emails_missed"]) == (LONG, 1)


HOSTILE = (  # senders Cyrus's `from` search cannot find, each with a plain control
    "=?utf-8?q?Evil=0D=0ACorp?= <evil@crlf.example>",  # an encoded CR LF in the name
    '<"john..doe"@quoted.example>',  # quoted local parts with specials
    '<"a b(c),d"@quoted.example>',
    '<"x@y"@quoted.example>',
    f"L <{LONG}>",  # a very long address
    "Plain <plain@control.example>",
)


def test_a_re_triage_moves_the_whole_backlog_of_senders_the_search_cannot_find(
    box: Box,
) -> None:
    backlog: dict[str, list[str]] = {}
    for n, sender in enumerate(HOSTILE):
        ids = [box.account.deliver_raw(raw_message(sender, f"h{n}-{i}")) for i in range(3)]
        box.label(ids[0], "@ToFeed")
        backlog[sender] = ids
    first = box.triage()
    assert (first.senders_triaged, first.failures) == (len(HOSTILE), 0)
    for n, sender in enumerate(HOSTILE):  # one more each, in the Screener, and a new label
        backlog[sender].append(box.account.deliver_raw(raw_message(sender, f"h{n}-late")))
        box.label(backlog[sender][1], "@ToPaperTrail")
    box.deliver(from_addr="control@plain.example", subject="control")
    box.searchable("control@plain.example")  # the index has caught up

    report = box.triage()  # every one is a re-triage: Feed -> Paper Trail

    assert (report.senders_triaged, report.failures, report.search_misses) == (len(HOSTILE), 0, 0)
    for sender, ids in backlog.items():
        assert [box.where(i) for i in ids] == [{"Paper Trail"}] * 4, sender
