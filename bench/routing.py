"""Server-side routing: how long delivery takes with mailroom's rules, and how big they are.

Delivery: a fresh account set up by `mailroom setup --apply` (the rules installed) with
one sender triaged to Feed. Each trial delivers one email from that sender over LMTP
and times, from just before the LMTP transaction (t0):
  - lmtp: until the server acknowledged the delivery (t1). This is the server's own
    delivery time, Sieve included: Cyrus runs the script (its jmapquery tests read the
    address book) inside the LMTP transaction, before it answers.
  - visible: until an Email/query {inMailbox: Feed} over JMAP lists it (t2), polled
    every --poll-every seconds, so it overstates by up to that.
The same is timed on an account without any Sieve script (the mail lands in the Inbox),
and the ratio of the medians says what the rules add.

Size: the rules script for the 7 default categories and for 50 (10 roots with 4
children each), in bytes and lines, and whether the server's SieveScript/validate
accepts it.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import time
import uuid

from mailroom.categories import DEFAULT_CATEGORIES, category
from mailroom.routing.model import Routing, routing
from mailroom.routing.sieve import rules_script
from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.realserver import (
    REALM,
    Account,
    CyrusServer,
    build_message,
    new_account,
    sieve_call,
)


def deliver_and_time(
    account: Account, sender: str, mailbox_id: str, poll: float
) -> tuple[float, float]:
    to = f"{account.username}@{REALM}"
    subject = f"bench {uuid.uuid4().hex[:8]}"
    raw = build_message(sender, None, to, subject)
    before = set(account.call("Email/query", {"filter": {"inMailbox": mailbox_id}})["ids"])
    with smtplib.LMTP("127.0.0.1", account.lmtp_port) as lmtp:
        t0 = time.perf_counter()
        lmtp.sendmail(sender, [to], raw)
        t1 = time.perf_counter()
    deadline = t1 + 10
    while time.perf_counter() < deadline:
        ids = set(account.call("Email/query", {"filter": {"inMailbox": mailbox_id}})["ids"])
        if ids - before:
            return t1 - t0, time.perf_counter() - t0
        time.sleep(poll)
    raise RuntimeError(f"the delivered email did not appear in {mailbox_id} within 10 s")


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def delivery(server: CyrusServer, trials: int, poll: float) -> None:
    box = prepared_box(server)
    sender = "news@feed.example"
    first = box.deliver(from_addr=sender, subject="first")
    box.label(first, "@ToFeed")
    box.searchable(sender)
    box.triage()
    feed = box.account.mailbox_ids()["Feed"]
    routed = [deliver_and_time(box.account, sender, feed, poll) for _ in range(trials)]
    plain_account = new_account(server)
    inbox = plain_account.role_ids()["inbox"]
    plain = [deliver_and_time(plain_account, sender, inbox, poll) for _ in range(trials)]
    rows = [
        [
            "rules installed (routed to Feed)",
            ms([r[0] for r in routed]),
            ms([r[1] for r in routed]),
        ],
        ["no Sieve script (Inbox)", ms([p[0] for p in plain]), ms([p[1] for p in plain])],
    ]
    table(
        f"Delivery over LMTP, median of {trials} trials "
        f"(ms; visible polled every {poll * 1000:g} ms)",
        ["account", "lmtp", "visible"],
        rows,
    )
    ratio = statistics.median([r[0] for r in routed]) / statistics.median([p[0] for p in plain])
    print(f"lmtp with rules / without: {ratio:.2f}")
    box.account.close()
    plain_account.close()


def fifty() -> Routing:
    cats = []
    for r in range(10):
        cats.append(category(f"Root {r}"))
        cats += [category(f"Child {r}.{c}", parent=f"Root {r}") for c in range(4)]
    return routing(cats, screener_mailbox="Screener")


def sizes(server: CyrusServer) -> None:
    account = new_account(server)
    rows = []
    for label, model in (
        ("7 (default)", routing(DEFAULT_CATEGORIES, screener_mailbox="Screener")),
        ("50", fifty()),
    ):
        uids = {g: str(uuid.uuid4()) for g in model.groups}
        text = rules_script(model, group_uids=uids, paths={})
        upload = account._http.post(
            f"{account.base_url}/jmap/upload/{account.account_id}/",
            content=text.encode(),
            headers={"Content-Type": "application/sieve"},
        ).json()["blobId"]
        valid = sieve_call(account, "SieveScript/validate", {"blobId": upload})["error"] is None
        rows.append(
            [
                label,
                str(len(model.routes)),
                str(len(text.encode())),
                str(text.count("\n")),
                "yes" if valid else "NO",
            ]
        )
    table("The rules script", ["categories", "routes", "bytes", "lines", "server validates"], rows)
    account.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--poll-every", type=float, default=0.002)
    args = parser.parse_args()
    with cyrus() as server:
        sizes(server)
        delivery(server, args.trials, args.poll_every)


if __name__ == "__main__":
    main()
