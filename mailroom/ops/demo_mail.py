"""The demo's mail: delivered over LMTP like an MTA would, so the server's rules run.

Mail delivered this way goes through the account's Sieve script; mail imported over
JMAP or appended over IMAP does not (``into_inbox`` uses that: an email lands as it
would with no rule). ``landed`` finds one delivered email again (by its Message-ID) and
says which mailboxes it is in; ``apply_label`` acts as the user.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, make_msgid

from mailroom.errors import MailroomError
from mailroom.jmap import methods
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import EmailPatch
from mailroom.triage.mailboxes import find_mailbox, find_role
from mailroom.triage.sender import SenderId

RECENT = 100  # the newest emails searched for a delivered one (a demo account is small)


def message(address: str, name: str, subject: str, to: str) -> tuple[bytes, str]:
    """The RFC 5322 bytes (CRLF: servers refuse bare newlines) and the Message-ID."""
    msg = EmailMessage()
    msg["From"] = formataddr((name, address))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="demo.invalid")
    msg.set_content(f"{subject}\n\n(a demo message for mailroom)\n")
    return msg.as_bytes(policy=SMTP), msg["Message-ID"].strip("<>")


def recipient(env: Mapping[str, str]) -> str:
    return f"{env['MAILROOM_CARDDAV_USERNAME']}@localhost"


def deliver(env: Mapping[str, str], address: str, name: str, subject: str) -> str:
    """Deliver one email over LMTP to the demo account; its Message-ID."""
    raw, message_id = message(address, name, subject, recipient(env))
    host, _, port = env["MAILROOM_DEMO_LMTP"].rpartition(":")
    try:
        with smtplib.LMTP(host, int(port), timeout=30) as lmtp:
            lmtp.sendmail(address, [recipient(env)], raw)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailroomError(
            f"could not deliver to the demo server over LMTP at {host}:{port} ({exc}); "
            "is the demo running?"
        ) from exc
    return message_id


def into_inbox(env: Mapping[str, str], address: str, name: str, subject: str) -> str:
    """Import one email into the Inbox over JMAP, past the rules: where a server with no
    rule for its sender leaves it. Its id."""
    raw, _message_id = message(address, name, subject, recipient(env))
    with JmapClient(env["MAILROOM_JMAP_SESSION_URL"], env["MAILROOM_JMAP_TOKEN"]) as jmap:
        inbox = find_role(jmap.get_mailboxes()[0], "inbox")
        if inbox is None:
            raise MailroomError("the demo account has no Inbox")
        return jmap.import_email(raw, [inbox])


def landed(env: Mapping[str, str], message_id: str) -> list[str] | None:
    """The names of the mailboxes the delivered email is in; None until it is there."""
    with JmapClient(env["MAILROOM_JMAP_SESSION_URL"], env["MAILROOM_JMAP_TOKEN"]) as jmap:
        names = {m.id: m.name for m in jmap.get_mailboxes()[0]}
        account = jmap.session.account_id
        query = methods.email_query(account, {}, limit=RECENT)
        query[1]["sort"] = [{"property": "receivedAt", "isAscending": False}]
        ref = methods.result_ref("q", "Email/query", "/ids")
        get = methods.email_get(account, ref, properties=("messageId", "mailboxIds"))
        _, (_, found, _) = jmap.call([query, get])
    for email in found.get("list") or []:
        if message_id in (email.get("messageId") or []):
            return sorted(names.get(m, m) for m in email.get("mailboxIds") or {})
    return None


def check_label(label: str, labels: Sequence[str]) -> None:
    """MailroomError naming every triage label when ``label`` is not one of them."""
    if label not in labels:
        raise MailroomError(f"{label!r} is not a triage label; use one of {', '.join(labels)}")


def apply_label(env: Mapping[str, str], address: str, label: str) -> str:
    """Put ``label`` on the newest email from ``address``, as a mail client would."""
    from mailroom.config import load_settings

    check_label(label, [c.label for c in load_settings(env).categories])
    with JmapClient(env["MAILROOM_JMAP_SESSION_URL"], env["MAILROOM_JMAP_TOKEN"]) as jmap:
        mailboxes, _ = jmap.get_mailboxes()
        label_id = find_mailbox(mailboxes, label)
        if label_id is None:
            raise MailroomError(f"there is no mailbox {label!r}: is the demo set up?")
        emails, _ = jmap.query_emails({"from": address})
        sender = SenderId.of(address)
        mine = [e for e in emails if sender is not None and sender.sent(e)]
        if not mine:
            raise MailroomError(f"no email from {address} in the demo account")
        jmap.update_emails({mine[-1].id: EmailPatch(add=frozenset({label_id}))})
        return mine[-1].id


def where_is(env: Mapping[str, str], email_id: str) -> list[str]:
    with JmapClient(env["MAILROOM_JMAP_SESSION_URL"], env["MAILROOM_JMAP_TOKEN"]) as jmap:
        names = {m.id: m.name for m in jmap.get_mailboxes()[0]}
        (email,) = jmap.get_emails([email_id])
        return sorted(names.get(m, m) for m in email.mailbox_ids)
