"""Bench: `mailroom reset --apply --yes` of N emails spread over the managed mailboxes.

Uses the test Cyrus the way the tests do (mailroom_dev.benchkit over mailroom_dev.realserver): a
fresh account per run after `mailroom setup --apply`, then N emails appended with IMAP
MULTIAPPEND over one connection, round-robin over the seven destination mailboxes and
one triage label (the fill is timed apart). Reset then runs on its own JMAP and
CardDAV clients; their ``requests_made`` and the wall time are printed. It runs at the
server's own object limits and again with maxObjectsInGet/Set forced down (the session
document rewritten), so that the growth with N / limit shows at these sizes:
JMAP = session + Mailbox/get + ceil((N+1)/get) query+get pages + ceil(N/set) Email/set;
CardDAV does not grow with N. Medians of the runs [min-max]; nothing is asserted.

    .venv/bin/python bench/reset_bench.py [--sizes 500,2000,5000] [--runs 3] [--limit 500]
"""

from __future__ import annotations

import argparse
import io
import time
from dataclasses import dataclass

from mailroom.ops import reset
from mailroom_dev.benchkit import (
    SessionLimits,
    chunks,
    count,
    cyrus,
    prepared_box,
    server_limits,
    sizes,
    spread,
    table,
)
from mailroom_dev.realserver import REALM, CyrusServer, imap_append, messages
from mailroom_dev.triagebox import Box

MAILBOXES = ("Imbox", "Feed", "Paper Trail", "Jail", "Person", "Billboard", "Truck", "@ToFeed")
SENDERS = 50


@dataclass(frozen=True, slots=True)
class Run:
    fill_s: float
    reset_s: float
    jmap: int
    carddav: int
    get_limit: int
    set_limit: int

    def expected_jmap(self, n: int) -> int:
        """Session + Mailbox/get + query+get pages (one more when full) + Email/set chunks."""
        return 2 + chunks(n + 1, self.get_limit) + chunks(n, self.set_limit)


def share(n: int, parts: int, i: int) -> int:
    """The i-th of ``parts`` near-equal shares of ``n``."""
    return n // parts + (i < n % parts)


def fill(box: Box, n: int) -> float:
    """``n`` emails from SENDERS senders, spread over MAILBOXES; the seconds it took."""
    started = time.perf_counter()
    to = f"{box.account.username}@{REALM}"
    for i, mailbox in enumerate(MAILBOXES):
        here = share(n, len(MAILBOXES), i)
        raws: list[bytes] = []
        for s in range(SENDERS):
            raws += messages(f"s{s}@bench.example", share(here, SENDERS, s), to=to, start=i * n)
        imap_append(box.account, f'"{mailbox}"', raws)
    return time.perf_counter() - started


def in_screener(box: Box) -> int:
    screener = box.account.mailbox_ids()["Screener"]
    args = {"filter": {"inMailbox": screener}, "calculateTotal": True, "limit": 0}
    return int(box.account.call("Email/query", args)["total"])


def one_run(server: CyrusServer, n: int, limit: int | None) -> Run:
    box = prepared_box(server)
    try:
        fill_s = fill(box, n)
        jmap, carddav = box.clients(SessionLimits(limit) if limit else None)
        out = io.StringIO()
        try:
            started = time.perf_counter()
            code = reset.run(
                box.settings, jmap, carddav, apply=True, yes=True, stdin=io.StringIO(), stdout=out
            )
            reset_s = time.perf_counter() - started
        finally:
            jmap.close()
            carddav.close()
        if code != 0 or in_screener(box) != n:
            raise RuntimeError(f"reset of {n} emails did not end right:\n{out.getvalue()}")
        session = jmap.session
        return Run(
            fill_s,
            reset_s,
            jmap.requests_made,
            carddav.requests_made,
            session.max_objects_in_get,
            session.max_objects_in_set,
        )
    finally:
        box.account.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mailroom reset of N managed emails")
    parser.add_argument("--sizes", default="500,2000,5000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=500, help="forced maxObjectsInGet/Set")
    args = parser.parse_args(argv)
    rows = []
    with cyrus() as server:
        print(f"server: {server_limits(server)}")
        for limit in (None, args.limit):
            for n in sizes(args.sizes):
                runs = [one_run(server, n, limit) for _ in range(args.runs)]
                rows.append(
                    [
                        str(n),
                        f"{runs[0].get_limit}/{runs[0].set_limit}",
                        spread([r.fill_s for r in runs], digits=2),
                        spread([r.reset_s for r in runs], digits=2),
                        count([r.jmap for r in runs]),
                        str(runs[0].expected_jmap(n)),
                        count([r.carddav for r in runs]),
                    ]
                )
    table(
        f"mailroom reset --apply --yes ({args.runs} runs each; fill = IMAP MULTIAPPEND)",
        ["N", "get/set limit", "fill", "reset wall", "JMAP", "JMAP expected", "CardDAV"],
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
