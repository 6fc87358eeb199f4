"""Idle pass: nothing labelled. After start-up (session + mailboxes, read once), a pass
must cost exactly 1 JMAP HTTP request and 0 CardDAV requests (triage.md, issue 2).

    .venv/bin/python bench/idle_pass.py [--runs 5] [--screener 20]

Exits 1 when an idle pass after start-up costs anything but 1 JMAP and 0 CardDAV.
"""

from __future__ import annotations

import argparse
import sys

import common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="idle passes to time (default 5)")
    parser.add_argument(
        "--screener", type=int, default=20, help="unlabelled emails in the Screener (default 20)"
    )
    args = parser.parse_args(argv)
    with common.cyrus() as server:
        box = common.prepared_box(server)
        common.fill_screener(box, "quiet@idle.example", args.screener)
        bench = common.Bench(box)
        try:
            startup = bench.run()
            idle = [bench.run() for _ in range(args.runs)]
            box.deliver(from_addr="late@idle.example", subject="new mail")
            after_mail = bench.run()
            session = bench.session
        finally:
            bench.close()
            box.account.close()
    rows = [
        _row("start-up (first pass)", 1, [startup]),
        _row("idle pass", args.runs, idle),
        _row("idle pass after new Screener mail", 1, [after_mail]),
    ]
    common.table(
        f"Idle pass: nothing labelled, {args.screener} emails in the Screener "
        f"(server: {common.limits(session)})",
        ["scenario", "passes", "JMAP req", "CardDAV req", "wall time median [min-max]"],
        rows,
    )
    met = all((m.jmap, m.carddav) == (1, 0) for m in idle)
    verdict = "met" if met else "NOT MET"
    print(f"\ncontract (an idle pass after start-up: 1 JMAP, 0 CardDAV): {verdict}")
    return 0 if met else 1


def _row(name: str, passes: int, runs: list[common.Measured]) -> list[str]:
    return [
        name,
        str(passes),
        common.count([m.jmap for m in runs]),
        common.count([m.carddav for m in runs]),
        common.spread([m.seconds * 1000 for m in runs], "ms", 1),
    ]


if __name__ == "__main__":
    sys.exit(main())
