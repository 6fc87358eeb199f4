"""Sender backlog: one sender with N emails in the Screener, one of them labelled @ToFeed.

The pass must move all N with requests growing with N / (the server's object limit),
not with N. Run once with the server's own limits and once with the session document
rewritten to a small limit (default 500, the RFC 8620 floor), so the growth shows.

    .venv/bin/python bench/sender_backlog.py [--sizes 100,1000,5000] [--runs 3] [--forced-limit 500]

Each run uses a fresh account: fill (IMAP MULTIAPPEND), wait until Email/query {from}
finds all N (Cyrus indexes late), one pass with nothing labelled (start-up: session
and mailboxes, not counted), label one email, then the measured pass.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from mailroom_dev import benchkit
from mailroom_dev.realserver import CyrusServer, wait_searchable_counts
from mailroom_dev.triagebox import fill_screener

SENDER = "bulk@backlog.example"


@dataclass(frozen=True, slots=True)
class Run:
    pass_: benchkit.Measured
    fill_s: float
    index_s: float
    max_set: int


def one_run(server: CyrusServer, n: int, forced: int | None) -> Run:
    box = benchkit.prepared_box(server)
    try:
        fill = time.perf_counter()
        trigger = fill_screener(box, SENDER, n)
        fill_s = time.perf_counter() - fill
        index_s = wait_searchable_counts(box.account, {SENDER: n}, timeout=60 + n / 20)
        bench = benchkit.Bench(box, benchkit.SessionLimits(forced) if forced else None)
        try:
            warm = bench.run()
            if warm.report.senders_triaged:
                raise RuntimeError("the start-up pass found a labelled sender")
            benchkit.label(box.account, {trigger: "@ToFeed"})
            measured = bench.run()
            max_set = bench.session.max_objects_in_set
        finally:
            bench.close()
    finally:
        box.account.close()
    report = measured.report
    if (report.senders_triaged, report.emails_moved) != (1, n):
        raise RuntimeError(f"moved {report.emails_moved} of {n} emails")
    return Run(measured, fill_s, index_s, max_set)


def row(limit: str, n: int, runs: list[Run]) -> list[str]:
    jmap = [r.pass_.jmap for r in runs]
    per_chunk = benchkit.chunks(n, runs[0].max_set)
    return [
        limit,
        str(n),
        benchkit.count(jmap),
        benchkit.count([r.pass_.carddav for r in runs]),
        str(per_chunk),
        f"{statistics.median(jmap) / per_chunk:.2f}",
        benchkit.spread([r.pass_.seconds for r in runs]),
        f"{statistics.median(r.pass_.seconds for r in runs) / n * 1000:.2f}",
        benchkit.spread([r.fill_s for r in runs], digits=1),
        benchkit.spread([r.index_s for r in runs], digits=1),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="backlog sizes N")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument(
        "--forced-limit",
        type=int,
        default=500,
        help="maxObjectsInGet/Set the client is made to see in a second series (0: skip)",
    )
    args = parser.parse_args(argv)
    rows = []
    with benchkit.cyrus() as server:
        server_limits = benchkit.server_limits(server)
        for forced in [None, args.forced_limit] if args.forced_limit else [None]:
            name = f"forced {forced}" if forced else "server's"
            for n in benchkit.sizes(args.sizes):
                runs = [one_run(server, n, forced) for _ in range(args.runs)]
                rows.append(row(name, n, runs))
                print(f"done: {name} limits, N={n}", file=sys.stderr)
    benchkit.table(
        f"Sender backlog: one sender, N emails in the Screener, one labelled "
        f"({args.runs} runs each; server: {server_limits})",
        [
            "limits",
            "N",
            "JMAP req",
            "CardDAV req",
            "ceil(N/maxSet)",
            "JMAP/ceil",
            "pass time median [min-max]",
            "ms/email",
            "fill time",
            "index wait",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
