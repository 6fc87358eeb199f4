"""`mailroom reset`: the pure plan (patches, contact classes, text) and the confirmation."""

from __future__ import annotations

import io
from itertools import combinations
from typing import Any

import pytest

from mailroom.carddav import vcard
from mailroom.carddav.models import Card
from mailroom.config import Settings
from mailroom.jmap.methods import email_update
from mailroom.jmap.models import Address, Email, EmailPatch, Mailbox
from mailroom.ops.reset import confirm
from mailroom.ops.reset_plan import (
    ContactPlan,
    GroupStep,
    MailPlan,
    ResetMailboxes,
    ResetPlan,
    classify,
    email_patch,
    mail_filter,
    plan_contacts,
    plan_mail,
    reset_mailboxes,
)
from mailroom.ops.reset_text import plan_lines

BOXES = ResetMailboxes(
    screener="scr",
    managed={"feed": "Feed", "tofeed": "@ToFeed", "imbox": "Imbox"},
    error="err",
    warning="warn",
    keep_out=frozenset({"trash", "junk"}),
)
EVERY = ("scr", "feed", "tofeed", "imbox", "err", "warn", "inbox", "trash", "archive")


def mail(*mailboxes: str, id: str = "e1", sender: str | None = "bob@x.example") -> Email:
    addr = Address(sender, None) if sender else None
    return Email(id, addr, frozenset(mailboxes))


def wire(email: Email) -> dict[str, Any]:
    """reset's patch for ``email`` in the wire's form (jmap.methods.email_update)."""
    return email_update(email_patch(email, BOXES))


def after(email: Email, patch: EmailPatch) -> set[str]:
    held = set(email.mailbox_ids)
    for key, value in email_update(patch).items():
        mailbox = key.removeprefix("mailboxIds/")
        if value:
            held.add(mailbox)
        else:
            held.discard(mailbox)
    return held


# -- mail ------------------------------------------------------------------------------------


def test_filed_mail_goes_back_to_the_screener_in_one_patch() -> None:
    email = mail("feed", "tofeed")
    assert wire(email) == {
        "mailboxIds/feed": None,
        "mailboxIds/tofeed": None,
        "mailboxIds/scr": True,
    }


def test_the_inbox_is_never_removed() -> None:
    assert after(mail("inbox", "imbox"), email_patch(mail("inbox", "imbox"), BOXES)) == {
        "inbox",
        "scr",
    }


def test_trashed_mail_loses_managed_mailboxes_but_is_not_brought_back() -> None:
    assert wire(mail("trash", "feed")) == {"mailboxIds/feed": None}


def test_warning_label_goes_with_a_managed_mailbox_only() -> None:
    assert after(mail("feed", "warn"), email_patch(mail("feed", "warn"), BOXES)) == {"scr"}
    # the warning reset itself put on a kept contact's mail stays on a later run
    assert wire(mail("scr", "warn")) == {}


def test_error_label_is_removed_wherever_it_is() -> None:
    assert wire(mail("archive", "err")) == {"mailboxIds/err": None}
    assert wire(mail("scr", "err")) == {"mailboxIds/err": None}


def test_mail_only_in_the_error_label_is_put_in_the_screener() -> None:
    assert after(mail("err"), email_patch(mail("err"), BOXES)) == {"scr"}


def test_mail_with_nothing_of_mailroom_needs_no_patch() -> None:
    assert wire(mail("scr")) == {}
    assert wire(mail("archive", "inbox")) == {}


def test_no_patch_ever_leaves_an_email_without_a_mailbox_or_with_a_managed_one() -> None:
    for size in range(1, len(EVERY) + 1):
        for held in combinations(EVERY, size):
            email = mail(*held)
            end = after(email, email_patch(email, BOXES))
            assert end, held
            assert not end & set(BOXES.managed), held
            assert "err" not in end, held


def test_reset_mailboxes_maps_what_exists_and_skips_what_does_not() -> None:
    names = ["Screener", "Feed", "@ToFeed", "Imbox", "@MailroomError"]
    mailboxes = [Mailbox(f"id-{n}", n, None, None) for n in names]
    mailboxes += [Mailbox("in", "Inbox", None, "inbox"), Mailbox("tr", "Trash", None, "trash")]

    boxes = reset_mailboxes(Settings(), mailboxes)

    assert boxes.screener == "id-Screener"
    assert boxes.managed == {"id-Imbox": "Imbox", "id-Feed": "Feed", "id-@ToFeed": "@ToFeed"}
    assert (boxes.error, boxes.warning) == ("id-@MailroomError", None)
    assert boxes.keep_out == frozenset({"tr"})
    assert mail_filter(boxes) == {
        "operator": "OR",
        "conditions": [
            {"inMailbox": "id-Imbox"},
            {"inMailbox": "id-Feed"},
            {"inMailbox": "id-@ToFeed"},
            {"inMailbox": "id-@MailroomError"},
        ],
    }


def test_nothing_to_search_when_no_managed_mailbox_exists() -> None:
    boxes = reset_mailboxes(Settings(), [Mailbox("in", "Inbox", None, "inbox")])
    assert mail_filter(boxes) is None


def test_plan_mail_counts_mailboxes_labels_and_mail_left_in_trash() -> None:
    emails = [
        mail("feed", "tofeed", "warn", id="a"),
        mail("feed", "imbox", "inbox", id="b", sender="Ann@Y.example"),
        mail("trash", "feed", id="c"),
        mail("scr", "err", id="d"),
        mail("scr", id="e"),
    ]

    plan = plan_mail(emails, BOXES, Settings())

    assert set(plan.patches) == {"a", "b", "c", "d"}
    assert plan.from_mailbox == (("@ToFeed", 1), ("Feed", 3), ("Imbox", 1))
    assert plan.labels == (("@MailroomError", 1), ("@MailroomWarning", 1))
    assert (plan.to_screener, plan.left_out, plan.total) == (2, 1, 4)
    assert plan.screened == {"a": "bob@x.example", "b": "ann@y.example", "d": "bob@x.example"}


# -- contacts --------------------------------------------------------------------------------


def created(uid: str, email: str, *extra: str) -> Card:
    text = vcard.new_contact_card(
        uid=uid,
        email=email,
        display_name=uid.title(),
        contact_type="company",
        history_line="Triaged to Feed on 2025-01-31",
    )
    for line in extra:
        text = text.replace("END:VCARD", f"{line}\r\nEND:VCARD")
    return Card(f"/book/{uid}.vcf", '"1"', text)


def hand(uid: str, email: str, *lines: str) -> Card:
    body = "".join(f"{line}\r\n" for line in lines)
    head = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{uid}\r\nEMAIL:{email}\r\n"
    text = f"{head}{body}END:VCARD\r\n"
    return Card(f"/book/{uid}.vcf", '"1"', text)


PROVENANCE = frozenset({"ann", "bob", "cat", "dan"})


def test_created_and_never_edited_is_deleted() -> None:
    step = classify(created("ann", "ann@x.example"), PROVENANCE)
    assert step is not None
    assert (step.action, step.reason) == ("delete", "created by mailroom, never edited")
    assert step.label == "Ann <ann@x.example>"


def test_created_and_edited_is_kept_with_the_reason() -> None:
    tel = classify(created("bob", "bob@x.example", "TEL:+1 555 0100"), PROVENANCE)
    rev = classify(created("cat", "cat@x.example", "REV:2025-02-01T10:00:00Z"), PROVENANCE)
    assert tel is not None
    assert rev is not None
    assert (tel.action, tel.reason) == ("keep", "created by mailroom, edited since: TEL added")
    assert (rev.action, rev.reason) == ("keep", "created by mailroom, edited since: REV present")


def test_a_contact_with_mailroom_note_outside_provenance_is_adopted() -> None:
    step = classify(created("eve", "eve@x.example"), PROVENANCE)
    assert step is not None
    assert step.action == "adopted"


def test_a_contact_mailroom_never_touched_is_left_alone() -> None:
    assert classify(hand("zed", "zed@x.example", "TEL:1"), PROVENANCE) is None


def test_plan_contacts_skips_groups_lists_unreadable_and_dangling_uids() -> None:
    group = Card("/book/g.vcf", '"1"', vcard.new_group_card(uid="g", name="Feed"))
    broken = Card("/book/dan.vcf", '"1"', "BEGIN:VCARD\r\nthis is not a card\r\n")
    cards = [created("ann", "ann@x.example"), group, broken, hand("zed", "zed@x.example")]
    groups = {"Feed": frozenset({"ann"}), "Jail": frozenset(), "Mailroom": PROVENANCE}

    plan = plan_contacts(cards, groups, "Mailroom")

    assert [s.uid for s in plan.contacts] == ["ann"]
    assert plan.groups == (GroupStep("Feed", frozenset({"ann"})),)
    assert plan.provenance == GroupStep("Mailroom", PROVENANCE)
    assert plan.unreadable == ("/book/dan.vcf",)
    assert plan.dangling == frozenset({"bob", "cat"})  # dan's card exists, unreadable


def test_an_empty_plan_is_empty() -> None:
    assert ResetPlan(MailPlan({}, {}), ContactPlan()).empty
    groups = ContactPlan(groups=(GroupStep("Feed", frozenset({"ann"})),))
    assert not ResetPlan(MailPlan({}, {}), groups).empty


# -- text and confirmation -------------------------------------------------------------------


def test_an_empty_plan_says_there_is_nothing_to_reset() -> None:
    (line,) = plan_lines(ResetPlan(MailPlan({}, {}), ContactPlan()), Settings())
    assert line.startswith("Nothing to reset:")


def test_the_plan_names_mailboxes_groups_and_contacts_with_reasons() -> None:
    emails = [mail("feed", "tofeed", "warn", id="a"), mail("trash", "feed", id="c")]
    contacts = plan_contacts(
        [created("ann", "ann@x.example"), created("eve", "eve@x.example")],
        {"Feed": frozenset({"ann", "eve"}), "Mailroom": frozenset({"ann"})},
        "Mailroom",
    )
    plan = ResetPlan(plan_mail(emails, BOXES, Settings()), contacts)

    assert plan_lines(plan, Settings()) == [
        "Reset plan",
        "Mail",
        "  1 email back to Screener",
        "    from @ToFeed  1",
        "    from Feed     2",
        "  1 email in Trash or Junk: managed mailboxes removed, left where they are",
        "  remove @MailroomWarning from 1 email",
        "  the Inbox is left alone: mail that triage also put there keeps it",
        "Contact groups",
        "  empty Feed (2 members)",
        "  empty Mailroom (1 member), last: it is how the contacts mailroom created are recognised",
        "Contacts",
        "  delete  Ann <ann@x.example>  (created by mailroom, never edited)",
        "  strip   Eve <eve@x.example>  (adopted: only mailroom's note section is removed)",
    ]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_yes_confirms_without_reading_stdin() -> None:
    stdin, out = io.StringIO("no\n"), io.StringIO()
    assert confirm(yes=True, stdin=stdin, stdout=out)
    assert (stdin.tell(), out.getvalue()) == (0, "")


def test_without_a_terminal_and_without_yes_reset_aborts_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    assert not confirm(yes=False, stdin=io.StringIO("reset\n"), stdout=out)
    err = capsys.readouterr().err
    assert "not a terminal: nothing changed" in err
    assert "--yes" in err


def test_on_a_terminal_only_the_word_confirms() -> None:
    out = io.StringIO()
    assert confirm(yes=False, stdin=Tty("reset\n"), stdout=out)
    assert out.getvalue() == 'Type "reset" to confirm: '
    declined = io.StringIO()
    assert not confirm(yes=False, stdin=Tty("yes\n"), stdout=declined)
    assert declined.getvalue().endswith("Not confirmed: nothing changed.\n")
