"""Many senders: one pass over S labelled senders (default 50), each new to the address
book, labelled round-robin across every configured category, each with a few more
emails in the Screener. Prints requests per sender and the total time.

    .venv/bin/python bench/many_senders.py [--senders 50] [--per-sender 3] [--runs 3]

Each run uses a fresh account: fill, wait until every sender is searchable, one pass
with nothing labelled (start-up, not counted), label one email per sender in one
Email/set, then the measured pass.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from mailroom_dev import benchkit
from mailroom_dev.realserver import CyrusServer, wait_searchable_counts
from mailroom_dev.triagebox import fill_screener


def one_run(server: CyrusServer, senders: int, per_sender: int) -> benchkit.Measured:
    box = benchkit.prepared_box(server)
    try:
        addresses = [f"sender{i:03d}@many{i:03d}.example" for i in range(senders)]
        triggers = {a: fill_screener(box, a, per_sender) for a in addresses}
        wait_searchable_counts(
            box.account, dict.fromkeys(addresses, per_sender), timeout=60 + senders
        )
        labels = [c.label for c in box.settings.categories]
        bench = benchkit.Bench(box)
        try:
            bench.run()
            benchkit.label(
                box.account, {triggers[a]: labels[i % len(labels)] for i, a in enumerate(addresses)}
            )
            measured = bench.run()
        finally:
            bench.close()
    finally:
        box.account.close()
    report = measured.report
    if (report.senders_triaged, report.emails_moved) != (senders, senders * per_sender):
        raise RuntimeError(f"triaged {report.senders_triaged} of {senders} senders")
    return measured


def row(senders: int, runs: list[benchkit.Measured]) -> list[str]:
    jmap = statistics.median(m.jmap for m in runs)
    carddav = statistics.median(m.carddav for m in runs)
    seconds = [m.seconds for m in runs]
    return [
        str(senders),
        benchkit.count([m.jmap for m in runs]),
        benchkit.count([m.carddav for m in runs]),
        f"{jmap / senders:.2f}",
        f"{carddav / senders:.2f}",
        f"{(jmap + carddav) / senders:.2f}",
        benchkit.spread(seconds),
        f"{statistics.median(seconds) / senders * 1000:.1f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", default="50", help="sender counts, comma-separated")
    parser.add_argument("--per-sender", type=int, default=3, help="emails per sender (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    args = parser.parse_args(argv)
    rows = []
    with benchkit.cyrus() as server:
        server_limits = benchkit.server_limits(server)
        for senders in benchkit.sizes(args.senders):
            runs = [one_run(server, senders, args.per_sender) for _ in range(args.runs)]
            rows.append(row(senders, runs))
    benchkit.table(
        f"Many senders: S new senders labelled, {args.per_sender} emails each in the Screener "
        f"({args.runs} runs each; server: {server_limits})",
        [
            "senders",
            "JMAP req",
            "CardDAV req",
            "JMAP/sender",
            "CardDAV/sender",
            "all/sender",
            "pass time median [min-max]",
            "ms/sender",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
