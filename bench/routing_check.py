"""`mailroom check`'s routing judgment: its requests and time over a full window.

On a fresh account of the test Cyrus after `mailroom setup --apply`, with mailroom's
Sieve rules taken out (new mail lands in the Inbox, as on Fastmail with no rules):
--emails emails from --senders different strangers appended to the Inbox over IMAP
(all received now, inside the 7-day window), then ``routing_check.observe`` (what
`mailroom check` runs for its routing line) timed --runs times on warm clients: the
JMAP and CardDAV requests it sends, its time, and how many arrivals it read and judged.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from mailroom.ops import routing_check
from mailroom.routing.observed import NEWEST
from mailroom_dev.benchkit import count, cyrus, prepared_box, spread, table
from mailroom_dev.realserver import REALM, build_message, imap_append
from mailroom_dev.triagebox import Box, without_rules


def fill(box: Box, emails: int, senders: int) -> None:
    to = f"{box.account.username}@{REALM}"
    raws = [
        build_message(f"s{n % senders}@window.example", None, to, f"arrival {n}")
        for n in range(emails)
    ]
    imap_append(box.account, "INBOX", raws)


def measure(box: Box, runs: int) -> list[str]:
    jmap, carddav = box.clients()
    requests: list[tuple[int, int]] = []
    seconds: list[float] = []
    try:
        carddav.addressbook_url()  # discovery, once per process, is not check's judging
        jmap.session  # noqa: B018 - the session fetch, likewise
        for _ in range(runs):
            before = (jmap.requests_made, carddav.requests_made)
            started = time.perf_counter()
            seen, _view = routing_check.observe(
                box.settings, jmap, carddav, now=datetime.now(UTC), mode="audit"
            )
            seconds.append(time.perf_counter() - started)
            requests.append((jmap.requests_made - before[0], carddav.requests_made - before[1]))
    finally:
        jmap.close()
        carddav.close()
    return [
        str(seen.read),
        str(seen.judged),
        str(len(seen.problems)),
        count([r[0] for r in requests]),
        count([r[1] for r in requests]),
        spread(seconds),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=600)
    parser.add_argument("--senders", type=int, default=NEWEST)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with cyrus() as server:
        box = without_rules(prepared_box(server))
        fill(box, args.emails, args.senders)
        row = measure(box, args.runs)
    table(
        f"check's routing judgment: {args.emails} emails from {args.senders} strangers "
        f"in the Inbox, {args.runs} runs",
        ["read", "judged", "problems", "JMAP", "CardDAV", "time (median [min-max])"],
        [row],
    )


if __name__ == "__main__":
    main()
