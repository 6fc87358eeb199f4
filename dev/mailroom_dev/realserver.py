"""The real test server: Cyrus IMAP (JMAP + CardDAV) on loopback, and throwaway accounts.

``start_cyrus`` runs ``dev/cyrus/start.sh`` (push-capable build) and parses the ``export``
lines it prints; ``new_account`` creates a fresh Cyrus user and returns an ``Account``
that talks raw JMAP and CardDAV, independently of mailroom's own clients, so tests can
set up mail and check the end state of a mailbox and an address book.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import imaplib
import json
import os
import shlex
import smtplib
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from mailroom_dev.wait import wait_until

CYRUS_SCRIPTS = Path(__file__).resolve().parents[1] / "cyrus"  # dev/cyrus of the checkout
START = CYRUS_SCRIPTS / "start.sh"
STOP = CYRUS_SCRIPTS / "stop.sh"
REALM = "localhost"
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
Invocation = tuple[str, dict[str, Any], str]


@dataclass(frozen=True, slots=True)
class CyrusServer:
    """A running Cyrus instance, as described by start.sh's exports."""

    dir: Path
    base_url: str
    http_port: int
    imap_port: int
    lmtp_port: int
    eventsource: bool  # True when the JMAP eventSourceUrl streams (push-capable build)
    started_here: bool  # True when start_cyrus started it (False: it was already running)

    @property
    def session_url(self) -> str:
        return f"{self.base_url}/jmap/"


_PORTS = ("CYRUS_PEER_HTTP_PORT", "CYRUS_PEER_IMAP_PORT", "CYRUS_PEER_LMTP_PORT")


def cyrus_settings(environ: Mapping[str, str], *, worker: str | None = None) -> dict[str, str]:
    """start.sh's environment for the test server (ports and dir overridable).

    ``worker``: a pytest-xdist worker's name (gw0, gw1 ...); worker n gets a server of
    its own: the directory carries its name and each port is shifted by 10 * (n + 1).
    The default ports end in 8, 3 and 4, so a shifted port of one kind never meets a
    port of another kind.
    """
    settings = {
        "CYRUS_PEER_PUSH": "1",
        "CYRUS_PEER_BUILD_DIR": environ.get(
            "MAILROOM_TEST_CYRUS_BUILD_DIR", "/tmp/mailroom-cyrus-build"
        ),
        "CYRUS_PEER_DIR": environ.get("MAILROOM_TEST_CYRUS_DIR", "/tmp/mailroom-test-cyrus"),
        "CYRUS_PEER_HTTP_PORT": environ.get("MAILROOM_TEST_CYRUS_HTTP_PORT", "18008"),
        "CYRUS_PEER_IMAP_PORT": environ.get("MAILROOM_TEST_CYRUS_IMAP_PORT", "18143"),
        "CYRUS_PEER_LMTP_PORT": environ.get("MAILROOM_TEST_CYRUS_LMTP_PORT", "18024"),
    }
    if worker is not None and worker.startswith("gw") and worker[2:].isdigit():
        shift = 10 * (int(worker[2:]) + 1)
        settings.update({key: str(int(settings[key]) + shift) for key in _PORTS})
        settings["CYRUS_PEER_DIR"] += f"-{worker}"
    return settings


def parse_exports(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of start.sh's stdout (bash %q quoting)."""
    exports: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            words = shlex.split(value)
            exports[name] = words[0] if words else ""
    return exports


def start_cyrus(settings: Mapping[str, str], *, timeout: float = 1800) -> CyrusServer:
    """Start (or reuse) the test server; the first run may build Cyrus (~1-2 min)."""
    if not START.is_file():
        raise RuntimeError(
            f"{START} not found: mailroom_dev runs from a checkout, installed editable "
            "(scripts/test.sh install)"
        )
    env = {**os.environ, **settings}
    proc = subprocess.run(
        [str(START), settings["CYRUS_PEER_DIR"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"dev/cyrus/start.sh failed (exit {proc.returncode}); its log:\n{proc.stderr}"
        )
    ex = parse_exports(proc.stdout)
    return CyrusServer(
        dir=Path(ex["CYRUS_PEER_DIR"]),
        base_url=ex["CYRUS_PEER_BASE_URL"],
        http_port=int(settings["CYRUS_PEER_HTTP_PORT"]),
        imap_port=int(ex["CYRUS_PEER_IMAP_PORT"]),
        lmtp_port=int(ex["CYRUS_PEER_LMTP_PORT"]),
        eventsource=ex["CYRUS_PEER_EVENTSOURCE"] == "1",
        started_here="already running" not in proc.stderr,
    )


def stop_cyrus(server: CyrusServer) -> None:
    """Stop the server and delete its directory."""
    subprocess.run([str(STOP), str(server.dir), "--purge"], check=False, capture_output=True)


# ---------------------------------------------------------------- accounts


def mint_token(secret_file: Path, user: str) -> str:
    """An HS256 JWT ``{"sub": user}`` that Cyrus accepts as a Bearer token."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    key = secret_file.read_bytes().strip()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps({"sub": user}, separators=(",", ":")).encode())
    sig = b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def add_sasl_user(server: CyrusServer, user: str, password: str) -> None:
    """Add a user to the server's sasldb, keeping the file's owner and mode."""
    db = server.dir / "sasldb2"
    with (server.dir / ".users.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = db.stat()
        subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(db), "-u", REALM, user],
            input=password,
            text=True,
            check=True,
            capture_output=True,
        )
        os.chown(db, before.st_uid, before.st_gid)
        db.chmod(before.st_mode & 0o7777)


def provision(server: CyrusServer, user: str, password: str) -> None:
    """One IMAP LOGIN: Cyrus autocreates INBOX, Drafts, Sent, Trash, Junk, Archive."""
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        imap.login(user, password)
        typ, _ = imap.select("INBOX")
        if typ != "OK":
            raise RuntimeError(f"INBOX of new test user {user} could not be selected")
    finally:
        imap.logout()


def new_account(server: CyrusServer) -> Account:
    """A brand-new Cyrus user with its mailboxes, a password and a Bearer token."""
    user = "t" + uuid.uuid4().hex[:12]
    password = uuid.uuid4().hex
    add_sasl_user(server, user, password)
    provision(server, user, password)
    token = mint_token(server.dir / "jwt-secret", user)
    return Account(server=server, username=user, password=password, token=token)


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    id: str
    name: str
    parent_id: str | None
    role: str | None


@dataclass(frozen=True, slots=True)
class EmailRecord:
    id: str
    from_email: str | None
    from_name: str | None
    mailboxes: frozenset[str]  # leaf names
    subject: str | None = None
    keywords: frozenset[str] = frozenset()


@dataclass
class Account:
    """One throwaway Cyrus user, seen through raw JMAP and CardDAV."""

    server: CyrusServer
    username: str
    password: str
    token: str
    _http: httpx.Client = field(init=False, repr=False)
    _delivered: dict[str, list[str]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._http = httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0)

    def close(self) -> None:
        self._http.close()

    # -- where things are
    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def session_url(self) -> str:
        return self.server.session_url

    @property
    def api_url(self) -> str:
        return urljoin(self.session_url, "/jmap/")

    @property
    def carddav_url(self) -> str:
        return f"{self.base_url}/dav/addressbooks/user/{self.username}/Default/"

    @property
    def imap_port(self) -> int:
        return self.server.imap_port

    @property
    def lmtp_port(self) -> int:
        return self.server.lmtp_port

    @property
    def account_id(self) -> str:
        return self.username  # Cyrus names the account after the user

    def env(self) -> dict[str, str]:
        """The MAILROOM_* credential variables for this account."""
        return {
            "MAILROOM_JMAP_TOKEN": self.token,
            "MAILROOM_JMAP_SESSION_URL": self.session_url,
            "MAILROOM_CARDDAV_URL": self.carddav_url,
            "MAILROOM_CARDDAV_USERNAME": self.username,
            "MAILROOM_CARDDAV_PASSWORD": self.password,
        }

    # -- JMAP
    def jmap(self, method_calls: Sequence[Invocation]) -> list[Invocation]:
        """One raw JMAP request; method-level errors are returned, not raised."""
        body = {"using": USING, "methodCalls": [list(c) for c in method_calls]}
        response = self._http.post(self.api_url, json=body)
        response.raise_for_status()
        return [(r[0], r[1], r[2]) for r in response.json()["methodResponses"]]

    def call(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """One method call with accountId filled in; its arguments (error -> AssertionError)."""
        ((got, result, _),) = self.jmap([(name, {"accountId": self.account_id, **args}, "0")])
        if got != name:
            raise AssertionError(f"{name} answered {got}: {result}")
        return result

    def mailboxes(self) -> list[MailboxInfo]:
        found = self.call("Mailbox/get", {"ids": None})["list"]
        return [MailboxInfo(m["id"], m["name"], m.get("parentId"), m.get("role")) for m in found]

    def mailbox_ids(self) -> dict[str, str]:
        """{leaf name: id} of every mailbox."""
        return {m.name: m.id for m in self.mailboxes()}

    def role_ids(self) -> dict[str, str]:
        """{role: id}, e.g. {"inbox": ..., "trash": ..., "junk": ...}."""
        return {m.role: m.id for m in self.mailboxes() if m.role}

    def create_mailbox(self, name: str, parent: str | None = None) -> str:
        """Create a mailbox (``parent`` is a mailbox id) and return its id."""
        result = self.call("Mailbox/set", {"create": {"m": {"name": name, "parentId": parent}}})
        if not result.get("created"):
            raise AssertionError(f"Mailbox/set did not create {name!r}: {result}")
        return str(result["created"]["m"]["id"])

    def ensure_mailbox(self, name: str) -> str:
        return self.mailbox_ids().get(name) or self.create_mailbox(name)

    def deliver(
        self,
        mailbox: str = "Screener",
        *,
        from_addr: str = "sender@example.com",
        from_name: str | None = None,
        subject: str = "hello",
        to: str | None = None,
        extra_mailboxes: Iterable[str] = (),
    ) -> str:
        """Put a new message in ``mailbox`` (created if missing); return its email id."""
        ids = self.mailbox_ids()
        targets = [mailbox, *extra_mailboxes]
        mailbox_ids = {ids.get(n) or self.create_mailbox(n): True for n in targets}
        raw = build_message(from_addr, from_name, to or f"{self.username}@{REALM}", subject)
        upload = self._http.post(
            urljoin(self.session_url, f"/jmap/upload/{self.account_id}/"),
            content=raw,
            headers={"Content-Type": "message/rfc822"},
        )
        upload.raise_for_status()
        blob = {"blobId": upload.json()["blobId"], "mailboxIds": mailbox_ids}
        created = self.call("Email/import", {"emails": {"e": blob}}).get("created") or {}
        if "e" not in created:
            raise AssertionError(f"Email/import did not import the message into {targets}")
        email_id = str(created["e"]["id"])
        self._delivered.setdefault(from_addr.lower(), []).append(email_id)
        return email_id

    def deliver_raw(self, raw: bytes, mailbox: str = "Screener") -> str:
        """Import a message given byte for byte (headers a mail library would refuse)."""
        upload = self._http.post(
            urljoin(self.session_url, f"/jmap/upload/{self.account_id}/"),
            content=raw,
            headers={"Content-Type": "message/rfc822"},
        )
        upload.raise_for_status()
        target = self.mailbox_ids().get(mailbox) or self.create_mailbox(mailbox)
        blob = {"blobId": upload.json()["blobId"], "mailboxIds": {target: True}}
        created = self.call("Email/import", {"emails": {"e": blob}}).get("created") or {}
        if "e" not in created:
            raise AssertionError(f"Email/import did not import the message into {mailbox}")
        return str(created["e"]["id"])

    def emails(self, mailbox: str | None = None) -> list[EmailRecord]:
        """Every email (or those in the mailbox with that leaf name), with its mailboxes."""
        names = {m.id: m.name for m in self.mailboxes()}
        filt = {} if mailbox is None else {"inMailbox": self.mailbox_ids()[mailbox]}
        acc = self.account_id
        calls: list[Invocation] = [
            ("Email/query", {"accountId": acc, "filter": filt, "limit": 4096}, "q"),
            (
                "Email/get",
                {
                    "accountId": acc,
                    "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                    "properties": ["from", "mailboxIds", "subject", "keywords"],
                },
                "g",
            ),
        ]
        _, (_, got, _) = self.jmap(calls)
        return [email_record(e, names) for e in got["list"]]

    def wait_searchable(self, from_addr: str, *, timeout: float = 3.0) -> None:
        """Poll Email/query {from} until it finds what was delivered from that address.

        Cyrus's search index lags delivery by up to ~0.2 s.
        """
        want = set(self._delivered.get(from_addr.lower(), []))

        def found() -> bool:
            args = {"filter": {"from": from_addr}, "limit": 4096}
            ids = set(self.call("Email/query", args)["ids"])
            return want <= ids and bool(want or ids)

        wait_until(found, f"mail from {from_addr} to be searchable", timeout, every=0.02)

    # -- CardDAV
    def cards(self) -> list[str]:
        """Every vCard text in the Default address book (CRLF line ends)."""
        return [text for _, text in self.card_items()]

    def card_items(self) -> list[tuple[str, str]]:
        """(href, vCard text) for every card in the Default address book."""
        response = self._http.request(
            "REPORT",
            self.carddav_url,
            content=ALL_CARDS_QUERY,
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            auth=(self.username, self.password),
        )
        response.raise_for_status()
        return parse_address_data(response.text)

    def put_card(self, text: str, uid: str) -> str:
        """Create or replace ``<uid>.vcf``; return its ETag."""
        response = self._http.put(
            f"{self.carddav_url}{uid}.vcf",
            content=text.encode(),
            headers={"Content-Type": "text/vcard; charset=utf-8"},
            auth=(self.username, self.password),
        )
        if response.is_error:
            raise AssertionError(f"PUT {uid}.vcf -> {response.status_code}: {response.text}")
        return str(response.headers.get("ETag", ""))

    def card(self, uid: str) -> str | None:
        """The vCard whose UID is ``uid``, or None."""
        found = [t for t in self.cards() if vcard_props(t).get("UID") == [uid]]
        return found[0] if found else None

    def groups(self) -> dict[str, set[str]]:
        """{group FN: member UIDs} of every Apple-style group card."""
        out: dict[str, set[str]] = {}
        for text in self.cards():
            props = vcard_props(text)
            if any(v.lower() == "group" for v in props.get("X-ADDRESSBOOKSERVER-KIND", [])):
                members = props.get("X-ADDRESSBOOKSERVER-MEMBER", [])
                out[props["FN"][0]] = {m.removeprefix("urn:uuid:") for m in members}
        return out

    def contacts_with_email(self, email: str) -> list[str]:
        """Cards (not groups) that carry ``email`` (case-insensitive)."""
        want = email.lower()
        return [
            text
            for text in self.cards()
            if want in (e.lower() for e in vcard_props(text).get("EMAIL", []))
        ]


APPEND_BATCH = 500  # messages per IMAP MULTIAPPEND command


def imap_append(account: Account, mailbox: str, raws: Sequence[bytes]) -> None:
    """IMAP MULTIAPPEND with LITERAL+ over one connection: ~1 ms a message on loopback
    (one imaplib APPEND per message waits for each continuation: ~10-50 ms)."""
    if not raws:
        return
    imap = imaplib.IMAP4("127.0.0.1", account.imap_port)
    try:
        imap.login(account.username, account.password)
        for n, start in enumerate(range(0, len(raws), APPEND_BATCH)):
            tag = f"F{n}".encode()
            parts = [tag, b" APPEND ", mailbox.encode()]
            for raw in raws[start : start + APPEND_BATCH]:
                parts.append(b" {%d+}\r\n" % len(raw) + raw)
            imap.send(b"".join([*parts, b"\r\n"]))
            line = imap.readline()
            while not line.startswith(tag + b" "):
                line = imap.readline()
            if not line.startswith(tag + b" OK"):
                raise RuntimeError(f"APPEND into {mailbox} failed: {line!r}")
    finally:
        imap.logout()


def wait_searchable_counts(
    account: Account, expected: Mapping[str, int], *, timeout: float = 60
) -> float:
    """Poll Email/query {from} until each sender's count is found (Cyrus indexes late,
    more so after a MULTIAPPEND); the seconds it took. Up to 50 senders a request."""
    started = time.perf_counter()
    pending = dict(expected)

    def all_found() -> bool:
        calls: list[Invocation] = [
            (
                "Email/query",
                {
                    "accountId": account.account_id,
                    "filter": {"from": s},
                    "limit": 1,
                    "calculateTotal": True,
                },
                s,
            )
            for s in list(pending)[:50]
        ]
        for _, args, sender in account.jmap(calls):
            if args.get("total", 0) >= pending[sender]:
                del pending[sender]
        return not pending

    if pending:
        wait_until(all_found, f"mail from {len(pending)} senders to be searchable", timeout)
    return time.perf_counter() - started


# ---------------------------------------------------------------- pure helpers


def build_message(from_addr: str, from_name: str | None, to: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr((from_name, from_addr)) if from_name else from_addr
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="test.invalid")
    msg["Date"] = "Sat, 22 Nov 2025 00:00:00 +0000"
    msg.set_content(f"{subject}\n")
    return msg.as_bytes(policy=SMTP)


def messages(sender: str, count: int, *, to: str, start: int = 0) -> list[bytes]:
    """``count`` distinct messages from ``sender`` (own subject and Message-ID each)."""
    return [build_message(sender, None, to, f"{sender} #{i}") for i in range(start, start + count)]


def email_record(data: Mapping[str, Any], names: Mapping[str, str]) -> EmailRecord:
    sender = (data.get("from") or [{}])[0]
    return EmailRecord(
        id=data["id"],
        from_email=sender.get("email"),
        from_name=sender.get("name"),
        mailboxes=frozenset(names.get(m, m) for m in data.get("mailboxIds") or {}),
        subject=data.get("subject"),
        keywords=frozenset(data.get("keywords") or {}),
    )


ALL_CARDS_QUERY = b"""<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:prop><D:getetag/><C:address-data/></D:prop>
  <C:filter/>
</C:addressbook-query>"""


def parse_address_data(xml_text: str) -> list[tuple[str, str]]:
    """(href, address-data) of each response in a CardDAV multistatus.

    XML parsing turns CRLF into LF; vCard line ends are CRLF, so they are put back.
    """
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml_text)  # noqa: S314 -- our own test server's answer
    items = []
    for resp in root.iter("{DAV:}response"):
        href = resp.findtext("{DAV:}href") or ""
        data = resp.find(".//{urn:ietf:params:xml:ns:carddav}address-data")
        if data is not None and data.text:
            items.append((href, data.text.replace("\r\n", "\n").replace("\n", "\r\n")))
    return items


def vcard_props(text: str) -> dict[str, list[str]]:
    """{upper-case property name: values} of a vCard (unfolded; parameters dropped)."""
    unfolded = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    props: dict[str, list[str]] = {}
    for line in unfolded.split("\n"):
        head, sep, value = line.partition(":")
        if sep:
            name = head.split(";")[0].split(".")[-1].upper()
            props.setdefault(name, []).append(value)
    return props


# ---------------------------------------------------------------- delivery and Sieve

SIEVE_USING = [*USING, "https://cyrusimap.org/ns/jmap/sieve"]


def lmtp_deliver(
    account: Account, *, from_addr: str, subject: str, from_name: str | None = None
) -> None:
    """Deliver a new message over LMTP, as an MTA would: the account's Sieve runs."""
    to = f"{account.username}@{REALM}"
    raw = build_message(from_addr, from_name, to, subject)
    with smtplib.LMTP("127.0.0.1", account.lmtp_port) as lmtp:
        lmtp.sendmail(from_addr, [to], raw)


def delivered(account: Account, subject: str, *, timeout: float = 5.0) -> EmailRecord:
    """The one email with ``subject``, polled for until it is visible over JMAP."""

    def found() -> list[EmailRecord]:
        matching = [e for e in account.emails() if e.subject == subject]
        if len(matching) > 1:
            raise AssertionError(f"{len(matching)} emails with subject {subject!r}")
        return matching

    (email,) = wait_until(found, f"the email with subject {subject!r}", timeout, every=0.02)
    return email


def sieve_call(account: Account, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """One SieveScript method call, raw (accountId filled in); error -> AssertionError."""
    body = {
        "using": SIEVE_USING,
        "methodCalls": [[name, {"accountId": account.account_id, **args}, "0"]],
    }
    response = account._http.post(account.api_url, json=body)
    response.raise_for_status()
    ((got, result, _),) = response.json()["methodResponses"]
    if got != name:
        raise AssertionError(f"{name} answered {got}: {result}")
    return dict(result)


def sieve_scripts(account: Account) -> dict[str, bool]:
    """{script name: isActive} of the account's Sieve scripts."""
    found = sieve_call(account, "SieveScript/get", {"ids": None})["list"]
    return {s["name"]: bool(s["isActive"]) for s in found}


def put_sieve_script(account: Account, name: str, text: str, *, activate: bool) -> str:
    """Create a Sieve script as the user would (optionally the active one); its id."""
    upload = account._http.post(
        urljoin(account.session_url, f"/jmap/upload/{account.account_id}/"),
        content=text.encode(),
        headers={"Content-Type": "application/sieve"},
    )
    upload.raise_for_status()
    args: dict[str, Any] = {"create": {"s": {"name": name, "blobId": upload.json()["blobId"]}}}
    if activate:
        args["onSuccessActivateScript"] = "#s"
    created = sieve_call(account, "SieveScript/set", args).get("created") or {}
    if "s" not in created:
        raise AssertionError(f"SieveScript/set did not create {name!r}")
    return str(created["s"]["id"])
