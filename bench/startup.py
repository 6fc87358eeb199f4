"""Start-up: from `mailroom run` to the first pass, and to a waiting label triaged.

Each run takes a brand-new account (prepared by `mailroom setup --apply`, not timed)
with one email from a fresh sender in the Screener, already labelled (``@ToFeed``),
as if the user had labelled it while mailroom was stopped. At t0 the script starts
`mailroom run` (``python -m mailroom run``, as ServiceBox does), then reads the
programs' JSON log lines until the first pass is done. Figures, from t0, by the
lines' own timestamps (the same wall clock):

- ``health up``: health's ``health_listening`` line;
- ``worker up``: the worker's ``worker_started`` line (its clients, lock and wake
  socket ready; the first pass starts next);
- ``first pass start`` and ``first pass done``: the first ``poll_completed`` line,
  minus its ``duration_s``, and itself;
- ``label triaged``: the first ``poll_completed`` that triaged a sender; the email is
  then checked to have left the Screener and the label.

It prints the median [min-max] of each over --runs runs. Interleave runs of two
checkouts by hand (``--runs 1`` in a loop) to compare them on a loaded machine.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.realserver import CyrusServer
from mailroom_dev.servicebox import ServiceBox
from mailroom_dev.wait import wait_until

LABEL = "@ToFeed"  # files to Feed only: nothing lands in the Inbox
FIGURES = ("health up", "worker up", "first pass start", "first pass done", "label triaged")


def stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def first(svc: ServiceBox, name: str, **match: Any) -> dict[str, Any] | None:
    for event in svc.log_events(name):
        if all(pred(event.get(key)) for key, pred in match.items()):
            return event
    return None


def one_run(server: CyrusServer, n: int) -> dict[str, float]:
    box = prepared_box(server)
    sender = f"startup-{n}-{time.time_ns()}@mailroom-bench.invalid"
    email_id = box.deliver(from_addr=sender, subject=f"start-up bench {n}")
    box.label(email_id, LABEL)
    box.searchable(sender)
    t0 = time.time()
    with (
        contextlib.redirect_stdout(sys.stderr),  # ServiceBox prints the output's tail
        ServiceBox.running(box, poll_interval=60, debounce_seconds=3, ready=False) as svc,
    ):

        def triaged() -> dict[str, Any] | None:
            return first(svc, "poll_completed", senders_triaged=lambda v: bool(v))

        done = wait_until(triaged, "the waiting label to be triaged", 120)
        assert done is not None
        health = wait_until(lambda: first(svc, "health_listening"), "health to listen", 60)
        worker = first(svc, "worker_started")
        passed = first(svc, "poll_completed")
        assert worker is not None
        assert passed is not None
    where = box.where(email_id)
    if LABEL in where or box.settings.screener_mailbox in where:
        raise RuntimeError(f"the labelled email is still in {sorted(where)}")
    return {
        "health up": stamp(health) - t0,
        "worker up": stamp(worker) - t0,
        "first pass start": stamp(passed) - float(passed["duration_s"]) - t0,
        "first pass done": stamp(passed) - t0,
        "label triaged": stamp(done) - t0,
    }


def seconds(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="runs (5)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs: list[dict[str, float]] = []
    with cyrus() as server:
        for n in range(args.runs):
            runs.append(one_run(server, n))
            print(" ".join(f"{k}={v:.2f}" for k, v in runs[-1].items()), file=sys.stderr)
    rows = [[name, seconds([r[name] for r in runs])] for name in FIGURES]
    table(
        f"From `mailroom run` to ..., seconds: median [min-max] of {args.runs} runs",
        ["event", "s"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
