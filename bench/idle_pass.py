"""Idle pass: nothing labelled. After start-up (session + mailboxes, read once), a pass
must cost exactly 1 JMAP HTTP request and 0 CardDAV requests (triage.md, issue 2).
Then the requests of one user action each, on a warm worker: a new sender labelled
@ToFeed, a new sender labelled @ToPerson (a child category: two groups), and a
re-triage (the Person sender labelled @ToFeed: one group added, two removed). Each
sender has one email (the labelled one) and the Screener holds --screener others.
CardDAV discovery (once per process) is done before the actions and not counted.

    .venv/bin/python bench/idle_pass.py [--runs 5] [--screener 20]

Exits 1 when an idle pass after start-up costs anything but 1 JMAP and 0 CardDAV.
"""

from __future__ import annotations

import argparse
import sys

from mailroom_dev import benchkit
from mailroom_dev.triagebox import Box, fill_screener


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="idle passes to time (default 5)")
    parser.add_argument(
        "--screener", type=int, default=20, help="unlabelled emails in the Screener (default 20)"
    )
    args = parser.parse_args(argv)
    with benchkit.cyrus() as server:
        box = benchkit.prepared_box(server)
        fill_screener(box, "quiet@idle.example", args.screener)
        bench = benchkit.Bench(box)
        try:
            startup = bench.run()
            idle = [bench.run() for _ in range(args.runs)]
            box.deliver(from_addr="late@idle.example", subject="new mail")
            after_mail = bench.run()
            actions = _actions(box, bench)
            session = bench.session
        finally:
            bench.close()
            box.account.close()
    rows = [
        _row("start-up (first pass)", 1, [startup]),
        _row("idle pass", args.runs, idle),
        _row("idle pass after new Screener mail", 1, [after_mail]),
    ]
    benchkit.table(
        f"Idle pass: nothing labelled, {args.screener} emails in the Screener "
        f"(server: {benchkit.limits(session)})",
        ["scenario", "passes", "JMAP req", "CardDAV req", "wall time median [min-max]"],
        rows,
    )
    benchkit.table(
        "Requests per action (one pass each, after start-up)",
        ["action", "JMAP req", "CardDAV req", "total", "wall time"],
        [
            [
                name,
                str(m.jmap),
                str(m.carddav),
                str(m.jmap + m.carddav),
                f"{m.seconds * 1000:.1f} ms",
            ]
            for name, m in actions
        ],
    )
    met = all((m.jmap, m.carddav) == (1, 0) for m in idle)
    verdict = "met" if met else "NOT MET"
    print(f"\ncontract (an idle pass after start-up: 1 JMAP, 0 CardDAV): {verdict}")
    return 0 if met else 1


def _actions(box: Box, bench: benchkit.Bench) -> list[tuple[str, benchkit.Measured]]:
    before = bench.carddav.requests_made
    bench.carddav.addressbook_url()  # discovery: once per process, not per action
    print(f"CardDAV discovery: {bench.carddav.requests_made - before} request(s)", file=sys.stderr)
    feed = box.deliver(from_addr="feed@action.example", from_name="Feed Co", subject="f")
    person = box.deliver(from_addr="pat@action.example", from_name="Pat Doe", subject="p")
    box.searchable("feed@action.example", "pat@action.example")
    benchkit.label(box.account, {feed: "@ToFeed"})
    done = [("Feed (new sender)", bench.run())]
    benchkit.label(box.account, {person: "@ToPerson"})
    done.append(("Person (new sender)", bench.run()))
    benchkit.label(box.account, {person: "@ToFeed"})
    done.append(("re-triage (Person -> Feed)", bench.run()))
    if [m.report.senders_triaged for _, m in done] != [1, 1, 1]:
        raise RuntimeError("an action was not triaged")
    return done


def _row(name: str, passes: int, runs: list[benchkit.Measured]) -> list[str]:
    return [
        name,
        str(passes),
        benchkit.count([m.jmap for m in runs]),
        benchkit.count([m.carddav for m in runs]),
        benchkit.spread([m.seconds * 1000 for m in runs], "ms", 1),
    ]


if __name__ == "__main__":
    sys.exit(main())
