"""A hanging Email/set: how long a pass takes, and how many writes it tries, for 1 and N senders.

A real Cyrus behind ``faultserver.WriteHolder``, a proxy that forwards every request
but holds those carrying an ``Email/set`` without a byte of answer. The JMAP client's
read timeout is shortened (``--read``, default 1 s; mailroom's is 30 s) so a run takes
seconds; the figure that does not depend on it is the number of write attempts, and
the duration at mailroom's defaults follows: attempts x 30 s, cut at the 300 s pass
deadline.

    .venv/bin/python bench/hanging_write.py [--senders 1,50] [--read 1.0] [--runs 1]

Each run: a fresh account, S senders with two emails each in the Screener, the first
labelled @ToFeed; one pass through the proxy, timed until it returns or raises. Run it
with ``PYTHONPATH=<a checkout of another version>`` to measure that version (the
harness, mailroom_dev, stays this one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from mailroom.carddav.client import CardDavClient
from mailroom.httpbounds import HttpLimits
from mailroom.jmap.client import JmapClient
from mailroom.triage.engine import PASS_DEADLINE_S, Triager
from mailroom_dev import benchkit
from mailroom_dev.faultserver import WriteHolder
from mailroom_dev.realserver import CyrusServer

DEFAULT_READ_S = HttpLimits().read


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    attempts: int
    ended_by: str


def one_run(server: CyrusServer, senders: int, read: float) -> Run:
    box = benchkit.prepared_box(server)
    try:
        labels = {}
        for n in range(senders):
            first = box.deliver(from_addr=f"s{n}@hang.example", subject=f"s{n}-0")
            box.deliver(from_addr=f"s{n}@hang.example", subject=f"s{n}-1")
            labels[first] = "@ToFeed"
        benchkit.label(box.account, labels)
        s, c = box.settings, box.settings.credentials()
        with WriteHolder(box.account.session_url) as proxy:
            jmap = JmapClient(proxy.session_url, c.jmap_token, limits=HttpLimits(read=read))
            carddav = CardDavClient(s.carddav_url, c.carddav_username, c.carddav_password)
            try:
                started = time.perf_counter()
                try:
                    report = Triager(s, jmap, carddav).run_pass("bench")
                    ended = f"returned, {report.failures} failed"
                except Exception as exc:  # the outcome is what is measured
                    ended = type(exc).__name__
                seconds = time.perf_counter() - started
            finally:
                jmap.close()
                carddav.close()
            return Run(seconds, proxy.held, ended)
    finally:
        box.account.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=benchkit.sizes, default=[1, 50])
    parser.add_argument("--read", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    rows = []
    with benchkit.cyrus() as server:
        for senders in args.senders:
            runs = [one_run(server, senders, args.read) for _ in range(args.runs)]
            attempts = benchkit.count([r.attempts for r in runs])
            at_defaults = min(max(r.attempts for r in runs) * DEFAULT_READ_S, PASS_DEADLINE_S)
            rows.append(
                [
                    str(senders),
                    attempts,
                    benchkit.spread([r.seconds for r in runs], "s", 1),
                    f"{statistics.median(r.seconds for r in runs) / args.read:.1f}",
                    f"~{at_defaults:.0f} s",
                    runs[0].ended_by,
                ]
            )
    benchkit.table(
        f"A hanging Email/set (read timeout {args.read:g} s, mailroom's {DEFAULT_READ_S:g} s)",
        ["senders", "Email/set attempts", "pass", "pass / timeout", "at defaults", "ended by"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
