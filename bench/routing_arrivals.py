"""Routing new mail without server rules (`MAILROOM_ROUTING=enforce`): latency, requests, a flood.

On a fresh account of the test Cyrus after `mailroom setup --apply`, with mailroom's
Sieve rules taken out again (new mail lands in the Inbox, as on Fastmail with no rules):

- requests (in process, the worker's pass function ``ArrivalRouter.run_pass``, after a
  warm-up pass so the once-per-process reads are done): a quiet pass; a pass after one
  arrival that is already where the model puts it (a stranger's email imported into the
  Screener, as a rule would have filed it); a pass after one misrouted arrival (LMTP into
  the Inbox) that it moves. JMAP and CardDAV requests counted separately.
- a flood (in process): --flood emails from as many different strangers appended to the
  Inbox over IMAP, then ONE pass: its time, its requests, tracemalloc's peak during it,
  and where the mail ended.
- latency (the whole service, `mailroom run`, push, the defaults: debounce 3 s, poll
  60 s): each trial delivers a stranger's email over LMTP at t0 and polls raw JMAP every
  --poll-every s until it sits in the Screener only (t1). Trials are --gap s apart, more
  than the debounce window, so each meets an idle worker. From the worker's log: t0 to
  the start of the pass that moved it (the server's push delay and the wake), and that
  pass's own duration.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence

from mailroom.routing.arrivals import ArrivalRouter
from mailroom.triage.engine import Triager
from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.realserver import REALM, build_message, imap_append, lmtp_deliver
from mailroom_dev.servicebox import ServiceBox, log_time
from mailroom_dev.triagebox import Box, without_rules
from mailroom_dev.wait import wait_until


def stamp(event: dict[str, object]) -> float:
    """A log line's time (its ``timestamp``, UTC)."""
    found = log_time(event)
    if found is None:
        raise ValueError(f"a log line without a readable timestamp: {event!r}")
    return found


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Counted:
    """The worker's pass function on its own clients, counting each pass's requests."""

    def __init__(self, box: Box) -> None:
        settings = box.settings.model_copy(update={"routing": "enforce"})
        self.jmap, self.carddav = box.clients()
        triager = Triager(settings, self.jmap, self.carddav)
        self.router = ArrivalRouter(settings, self.jmap, self.carddav, triager)

    def run(self) -> tuple[int, int, float]:
        jmap, carddav = self.jmap.requests_made, self.carddav.requests_made
        started = time.perf_counter()
        self.router.run_pass("bench")
        seconds = time.perf_counter() - started
        return self.jmap.requests_made - jmap, self.carddav.requests_made - carddav, seconds

    def close(self) -> None:
        self.jmap.close()
        self.carddav.close()


@contextlib.contextmanager
def counted(box: Box) -> Iterator[Counted]:
    bench = Counted(box)
    try:
        bench.run()  # startup: judging begins at the current state
        yield bench
    finally:
        bench.close()


def requests_table(box: Box) -> None:
    rows = []
    with counted(box) as bench:
        box.deliver("Screener", from_addr="warm@up.example", subject="warm-up")
        bench.run()  # the first arrival reads the mailboxes and identities once
        jmap, carddav, s = bench.run()
        rows.append(["quiet pass", str(jmap), str(carddav), f"{s * 1000:.0f} ms"])
        box.deliver("Screener", from_addr="routed@x.example", subject="already routed")
        jmap, carddav, s = bench.run()
        rows.append(["one arrival, routed", str(jmap), str(carddav), f"{s * 1000:.0f} ms"])
        lmtp_deliver(box.account, from_addr="misrouted@x.example", subject="misrouted")
        wait_until(lambda: box.account.emails("Inbox"), "the delivery", 10, every=0.02)
        jmap, carddav, s = bench.run()
        moved = bench.router.doc["moved"]
        rows.append([f"one arrival, misrouted and moved ({moved})", str(jmap), str(carddav),
                     f"{s * 1000:.0f} ms"])  # fmt: skip
    table("requests per pass", ["pass", "JMAP", "CardDAV", "time"], rows)


def flood_table(box: Box, flood: int) -> None:
    to = f"{box.account.username}@{REALM}"
    raws = [build_message(f"s{n}@flood.example", None, to, f"flood {n}") for n in range(flood)]
    with counted(box) as bench:
        imap_append(box.account, "INBOX", raws)
        tracemalloc.start()
        jmap, carddav, seconds = bench.run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        doc = bench.router.doc
    screener = len(box.account.emails("Screener"))
    table(
        f"a flood of {flood} strangers' emails in the Inbox, one pass (enforce)",
        ["time", "JMAP", "CardDAV", "peak (tracemalloc)", "moved", "in the Screener"],
        [[f"{seconds:.2f} s", str(jmap), str(carddav), f"{peak / 2**20:.1f} MiB",
          str(doc["moved"]), str(screener)]],
    )  # fmt: skip


def latency_table(box: Box, trials: int, gap: float, poll: float) -> None:
    latencies, to_pass, durations = [], [], []
    with ServiceBox.running(box, poll_interval=60, debounce_seconds=3,
                            MAILROOM_ROUTING="enforce") as service:  # fmt: skip
        screener = box.account.mailbox_ids()["Screener"]
        for n in range(trials):
            time.sleep(gap)  # past the debounce window of the last pass
            subject = f"latency {uuid.uuid4().hex[:8]}"
            since = service.mark()
            t0 = time.time()
            lmtp_deliver(box.account, from_addr=f"lat{n}@x.example", subject=subject)

            def routed(subject: str = subject) -> bool:
                got = box.account.call("Email/query", {"filter": {"subject": subject}})["ids"]
                if not got:
                    return False
                (email,) = box.account.call(
                    "Email/get", {"ids": got, "properties": ["mailboxIds"]}
                )["list"]
                return set(email["mailboxIds"]) == {screener}

            wait_until(routed, "the email routed to the Screener", 30, every=poll)
            latencies.append(time.time() - t0)
            judged = wait_until(lambda s=since: service.log_events("arrivals_judged", s),
                                "the arrivals_judged line", 10)  # fmt: skip
            first = service.passes(since=since)[0]  # its poll_completed: triage's part
            start = stamp(first) - first["duration_s"]
            to_pass.append(start - t0)
            durations.append(stamp(judged[0]) - start)
    table(
        f"delivery -> routed (enforce, push, debounce 3 s), {trials} trials",
        ["median", "p90", "t0 -> pass start (median)", "the pass incl. the move (median)"],
        [[f"{statistics.median(latencies):.3f} s", f"{nearest_rank(latencies, 0.9):.3f} s",
          f"{statistics.median(to_pass):.3f} s", f"{statistics.median(durations):.3f} s"]],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--gap", type=float, default=4.0)
    parser.add_argument("--poll-every", type=float, default=0.02)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    with cyrus() as server:
        requests_table(without_rules(prepared_box(server)))
        flood_table(without_rules(prepared_box(server)), args.flood)
        if not args.skip_latency:
            latency_table(
                without_rules(prepared_box(server)), args.trials, args.gap, args.poll_every
            )


if __name__ == "__main__":
    main()
