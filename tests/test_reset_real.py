"""`mailroom reset` against a real Cyrus: triage several senders, then undo it all."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mailroom.ops import reset
from mailroom_dev.realserver import Account, CyrusServer, new_account, vcard_props
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real

HAND = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:hand-1\r\nFN:Carol Known\r\nN:Known;Carol;;;\r\n"
    "EMAIL:carol@known.example\r\nTEL:+1 555 0199\r\nNOTE:Met at the conference\r\n"
    "END:VCARD\r\n"
)
MANAGED = {
    *("Imbox", "Feed", "Paper Trail", "Jail", "Person", "Billboard", "Truck"),
    *("@ToImbox", "@ToFeed", "@ToPaperTrail", "@ToJail", "@ToPerson", "@ToBillboard"),
    "@ToTruck",
}
CREATED = (
    *("news@root.example", "ads@child.example", "pat@person.example"),
    *("ina@inbox.example", "rita@re.example"),
)


class Killed(BaseException):
    """Stands for the process dying: nothing in mailroom may catch it."""


@dataclass
class Counting(httpx.BaseTransport):
    """Counts requests across both clients; dies after the k-th answer."""

    kill_after: int | None = None
    sent: int = 0
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.sent += 1
        if self.sent == self.kill_after:
            response.read()
            response.close()
            raise Killed(f"killed after request {self.sent}: {request.method} {request.url}")
        return response

    def close(self) -> None:
        self.inner.close()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_reset(
    box: Box,
    *,
    apply: bool = True,
    yes: bool = True,
    stdin: io.StringIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> tuple[int, str]:
    jmap, carddav = box.clients(transport)
    out = io.StringIO()
    try:
        code = reset.run(
            box.settings,
            jmap,
            carddav,
            apply=apply,
            yes=yes,
            stdin=stdin or io.StringIO(),
            stdout=out,
        )
    finally:
        jmap.close()
        carddav.close()
    return code, out.getvalue()


def scenario(account: Account) -> Box:
    """Root, child, person, add_to_inbox, re-triaged, edited-by-hand and adopted senders,
    a conflict (error label) and a name mismatch (warning label)."""
    box = Box.create(account)
    account.put_card(HAND, "hand-1")
    triage = {
        "news@root.example": "@ToPaperTrail",
        "ads@child.example": "@ToBillboard",
        "pat@person.example": "@ToPerson",
        "ina@inbox.example": "@ToImbox",
        "rita@re.example": "@ToFeed",
        "ed@edit.example": "@ToFeed",
        "carol@known.example": "@ToFeed",
    }
    for address, label in triage.items():
        name = "Carol K" if address.startswith("carol@") else address.split("@")[0].title()
        first = box.deliver(from_addr=address, from_name=name, subject=f"{address}-1")
        box.deliver(from_addr=address, subject=f"{address}-2")
        box.label(first, label)
    clash = box.deliver(from_addr="con@flict.example", subject="conflict")
    box.label(clash, "@ToFeed", "@ToJail")
    box.deliver(from_addr="ed@edit.example.evil.net", subject="lookalike")
    box.deliver(from_addr="zed@other.example", subject="untouched")
    box.searchable(*triage)
    assert box.triage().failures == 0
    again = box.deliver("Archive", from_addr="rita@re.example", subject="rita-archived")
    box.label(again, "@ToJail")
    box.searchable("rita@re.example")
    assert box.triage().failures == 0
    box.deliver("Trash", from_addr="news@root.example", subject="trashed", extra_mailboxes=["Feed"])
    (card,) = account.contacts_with_email("ed@edit.example")
    uid = vcard_props(card)["UID"][0]
    account.put_card(card.replace("END:VCARD", "TEL:+1 555 0100\r\nEND:VCARD"), uid)
    return box


def end_state(account: Account) -> dict[str, Any]:
    """Mail by subject and mailbox names; every card's properties; group members."""
    mail = sorted((e.subject or "", tuple(sorted(e.mailboxes))) for e in account.emails())
    cards = sorted(repr(sorted(vcard_props(text).items())) for text in account.cards())
    return {"mail": mail, "cards": cards}


def snapshot(account: Account) -> Any:
    """Everything, ids and server states included."""
    states = [
        account.call("Email/get", {"ids": []})["state"],
        account.call("Mailbox/get", {"ids": []})["state"],
    ]
    mail = sorted((e.id, e.mailboxes, e.keywords) for e in account.emails())
    return states, account.mailboxes(), mail, sorted(account.card_items())


def test_reset_undoes_triage_and_keeps_what_the_user_made(account: Account) -> None:
    box = scenario(account)

    code, out = run_reset(box)

    assert code == 0, out
    for email in account.emails():
        assert not email.mailboxes & MANAGED, (email.subject, email.mailboxes)
        assert "@MailroomError" not in email.mailboxes, email.subject
        if email.subject == "trashed":
            assert email.mailboxes == {"Trash"}  # deleted mail is not brought back
        elif email.subject == "rita-archived":
            assert email.mailboxes == {"Archive", "Screener"}
        elif email.subject and email.subject.startswith("ina@inbox.example"):
            assert email.mailboxes == {"Inbox", "Screener"}  # Inbox is never removed
        elif email.subject and email.subject.startswith("ed@edit.example-"):
            assert email.mailboxes == {"Screener", "@MailroomWarning"}
        else:
            assert email.mailboxes == {"Screener"}, (email.subject, email.mailboxes)
    assert all(not members for members in account.groups().values()), account.groups()
    for address in CREATED:
        assert account.contacts_with_email(address) == [], address
    edited = box.contact("ed@edit.example")
    assert edited["TEL"] == ["+1 555 0100"]
    assert "NOTE" not in edited  # mailroom's section was the whole note
    adopted = box.contact("carol@known.example")
    for name, values in vcard_props(HAND).items():
        assert adopted[name] == values, name
    assert "--- mailroom ---" not in repr(adopted)
    assert "delete  " in out
    assert "keep    " in out
    assert "strip   " in out
    assert "moved " in out
    assert "Reset: " in out


def test_reset_on_a_reset_account_plans_nothing(account: Account) -> None:
    box = scenario(account)
    assert run_reset(box)[0] == 0
    before = snapshot(account)

    code, out = run_reset(box)

    assert code == 0
    assert out.startswith("Nothing to reset")
    assert snapshot(account) == before


def test_reset_on_a_fresh_account_plans_only_the_rules(account: Account) -> None:
    box = Box.create(account)
    box.deliver(from_addr="zed@other.example", subject="untouched")

    code, out = run_reset(box, apply=False)

    assert (code, out.splitlines()) == (
        0,
        [
            "Sieve: make no script active again, as before `mailroom setup`",
            "Sieve: delete mailroom's scripts 'mailroom', 'mailroom-rules'",
            "Dry run: nothing changed. Run `mailroom reset --apply` to do this.",
        ],
    )


def test_dry_run_changes_nothing(account: Account) -> None:
    box = scenario(account)
    before = snapshot(account)

    code, out = run_reset(box, apply=False)

    assert code == 0
    assert "Dry run: nothing changed" in out
    assert "back to Screener" in out
    assert "empty Mailroom" in out
    assert snapshot(account) == before


def test_apply_without_yes_and_without_a_terminal_aborts_and_changes_nothing(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    box = scenario(account)
    before = snapshot(account)

    code, _ = run_reset(box, yes=False, stdin=io.StringIO("reset\n"))

    assert code == 2
    err = capsys.readouterr().err
    assert "not a terminal" in err
    assert "--yes" in err
    assert snapshot(account) == before


def test_apply_on_a_terminal_needs_the_word_typed(account: Account) -> None:
    box = scenario(account)
    before = snapshot(account)
    assert run_reset(box, yes=False, stdin=Tty("yes\n"))[0] == 2
    assert snapshot(account) == before

    code, out = run_reset(box, yes=False, stdin=Tty("reset\n"))

    assert code == 0, out
    assert 'Type "reset" to confirm: ' in out
    assert all(not members for members in account.groups().values())


@dataclass
class EditBeforeDelete(httpx.BaseTransport):
    """Just before mailroom deletes the card at ``href``, the user edits it."""

    account: Account
    href: str
    inner: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    statuses: list[int] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and request.url.path == self.href:
            if not self.statuses:
                (text,) = [t for h, t in self.account.card_items() if h == self.href]
                uid = self.href.rsplit("/", 1)[1].removesuffix(".vcf")
                self.account.put_card(text.replace("END:VCARD", "TITLE:Boss\r\nEND:VCARD"), uid)
            response = self.inner.handle_request(request)
            self.statuses.append(response.status_code)
            return response
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_contact_edited_just_before_its_delete_is_kept_and_flagged(account: Account) -> None:
    box = Box.create(account)
    mail = box.deliver(from_addr="late@edit.example", subject="late")
    box.label(mail, "@ToFeed")
    box.searchable("late@edit.example")
    assert box.triage().failures == 0
    (href,) = [h for h, t in account.card_items() if "late@edit.example" in t]
    transport = EditBeforeDelete(account, href)

    code, out = run_reset(box, transport=transport)

    assert code == 0, out
    assert transport.statuses == [412]  # the real server refused the stale delete
    kept = box.contact("late@edit.example")
    assert kept["TITLE"] == ["Boss"]
    assert "NOTE" not in kept
    assert box.where(mail) == {"Screener", "@MailroomWarning"}
    assert all(not members for members in account.groups().values())


# The kill points are dealt to this many tests (k = part + 1, part + 1 + PARTS, ...),
# so that parallel test workers share them; together they kill after every request.
KILL_PARTS = 6


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", range(KILL_PARTS))
def test_a_reset_killed_after_any_request_converges_when_run_again(
    cyrus: CyrusServer, part: int
) -> None:
    reference = scenario(new_account(cyrus))
    counting = Counting()
    assert run_reset(reference, transport=counting)[0] == 0
    expected = end_state(reference.account)
    reference.account.close()
    total = counting.sent
    assert total > 15  # every step of the reset is exercised

    for k in range(part + 1, total + 1, KILL_PARTS):
        box = scenario(new_account(cyrus))
        try:
            with pytest.raises(Killed):
                run_reset(box, transport=Counting(kill_after=k))
            code, out = run_reset(box)
            assert code == 0, f"k={k}: {out}"
            assert end_state(box.account) == expected, f"killed after request {k} of {total}"
            assert run_reset(box, apply=False)[1].startswith("Nothing to reset"), f"k={k}"
        finally:
            box.account.close()


def test_with_warnings_disabled_an_edited_contact_is_kept_and_its_mail_not_flagged(
    account: Account,
) -> None:
    box = Box.create(account, {"MAILROOM_WARNINGS_ENABLED": "false"})
    mail = box.deliver(from_addr="ed@edit.example", subject="ed")
    box.label(mail, "@ToFeed")
    box.searchable("ed@edit.example")
    assert box.triage().failures == 0
    (card,) = account.contacts_with_email("ed@edit.example")
    uid = vcard_props(card)["UID"][0]
    account.put_card(card.replace("END:VCARD", "TEL:+1 555 0100\r\nEND:VCARD"), uid)

    code, out = run_reset(box)

    assert code == 0, out
    assert "warnings are disabled" in out
    assert box.where(mail) == {"Screener"}
    assert box.contact("ed@edit.example")["TEL"] == ["+1 555 0100"]
    assert all(not members for members in account.groups().values())
