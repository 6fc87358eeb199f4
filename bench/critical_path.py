"""The critical path of a triage in round trips, through a proxy adding 40 ms each way.

On Fastmail the network sets the pace: every sequential request costs a round trip.
This script puts ``mailroom_dev.delayproxy`` (127.0.0.1, --delay s each way) between
mailroom and the test Cyrus, and measures two things.

1. Passes in this process, through the proxy, each request recorded (start, end): an
   initial triage of a fresh sender with one labelled and --other more emails in the
   Screener. The round trips on the critical path are the longest chain of requests
   each starting after the one before ended (requests that overlap are one round);
   all requests of a pass, counted one by one, are what a pass that sends them one
   after another (mailroom before issue 16) has on its critical path.
2. `mailroom run` through the proxy (its JMAP, EventSource and CardDAV traffic), the
   label put on by this script directly: label -> triaged (t1 - t0), the push as this
   script's own EventSource stream sees it (direct, not through the proxy: tp - t0),
   and our share t1 - tp, as bench/latency.py measures them at the defaults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from latency import Mode, Probe, StateEvents, Trial, nearest_rank, one_trial, service

from mailroom.carddav.client import CardDavClient
from mailroom.config import load_settings
from mailroom.jmap.client import JmapClient
from mailroom.triage.engine import Triager
from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.delayproxy import DelayProxy
from mailroom_dev.triagebox import Box

DEFAULTS = Mode("defaults, through the proxy", True, 0.5, 60.0)


@dataclass(frozen=True, slots=True)
class Span:
    what: str
    start: float
    end: float


class Recorder(httpx.BaseTransport):
    """Records every request's span (sent -> answer read whole); thread-safe appends."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.spans: list[Span] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        start = time.monotonic()
        response = self.inner.handle_request(request)
        content = response.read()
        response.close()
        end = time.monotonic()
        self.spans.append(Span(describe(request), start, end))
        drop = {"content-length", "content-encoding", "transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in drop]
        return httpx.Response(response.status_code, headers=headers, content=content)

    def close(self) -> None:
        self.inner.close()


def describe(request: httpx.Request) -> str:
    if request.method == "POST" and request.url.path.startswith("/jmap"):
        body = request.content.decode(errors="replace")
        methods = [m for m in ("Mailbox/get", "Email/query", "Email/set") if f'"{m}"' in body]
        return f"JMAP {'+'.join(methods) or 'call'}"
    return f"CardDAV {request.method}"


def chain(spans: Sequence[Span]) -> list[Span]:
    """The longest chain of requests each starting after the last one ended (greedy by end:
    the most pairwise non-overlapping spans)."""
    picked: list[Span] = []
    for span in sorted(spans, key=lambda s: s.end):
        if not picked or span.start >= picked[-1].end:
            picked.append(span)
    return picked


@dataclass(frozen=True, slots=True)
class PassRun:
    requests: int
    rounds: int
    seconds: float
    spans: tuple[Span, ...]


def via(url: str, port: int) -> str:
    """``url`` with its port replaced by the proxy's (both on 127.0.0.1)."""
    scheme, rest = url.split("://", 1)
    host, _, path = rest.partition("/")
    return f"{scheme}://{host.rsplit(':', 1)[0]}:{port}/{path}"


def measure_pass(box: Box, proxy: DelayProxy, n: int, other: int, senders: int) -> PassRun:
    """A warm-up pass (the first reads the mailboxes on their own), then the measured
    one: ``senders`` fresh senders, each with one labelled and ``other`` more emails."""
    run = uuid.uuid4().hex[:6]
    warm = box.deliver(from_addr=f"warm-{run}@mailroom-bench.invalid", subject=f"warm {n}")
    box.label(warm, "@ToFeed")
    s, c = box.settings, box.settings.credentials()
    recorder = Recorder()
    jmap = JmapClient(via(s.jmap_session_url, proxy.port), c.jmap_token, transport=recorder)
    carddav = CardDavClient(
        via(s.carddav_url, proxy.port), c.carddav_username, c.carddav_password, transport=recorder
    )
    try:
        triager = Triager(s, jmap, carddav)
        triager.run_pass("bench")
        labelled = []
        for j in range(senders):
            sender = f"path-{run}-{n}-{j}@mailroom-bench.invalid"
            labelled.append(box.deliver(from_addr=sender, subject=f"path {n} {j}"))
            for k in range(other):
                box.deliver(from_addr=sender, subject=f"path {n} {j} other {k}")
        for email_id in labelled:
            box.label(email_id, "@ToFeed")
        recorder.spans.clear()
        started = time.monotonic()
        report = triager.run_pass("bench")
        seconds = time.monotonic() - started
    finally:
        jmap.close()
        carddav.close()
    if (report.senders_triaged, report.failures) != (senders, 0):
        raise RuntimeError(f"the measured pass did not triage its {senders} senders: {report}")
    if any(box.where(e) != {"Feed"} for e in labelled):
        raise RuntimeError("the measured pass left a labelled email out of Feed")
    spans = tuple(recorder.spans)
    return PassRun(len(spans), len(chain(spans)), seconds, spans)


def print_path(run: PassRun) -> None:
    t0 = min(s.start for s in run.spans)
    on_path = set(chain(run.spans))
    print("\none measured pass, request by request (ms from its first request):")
    for span in sorted(run.spans, key=lambda s: s.start):
        mark = "*" if span in on_path else " "
        start, end = (span.start - t0) * 1000, (span.end - t0) * 1000
        print(f"  {mark} {start:6.0f} -> {end:6.0f}  {span.what}")
    print("  (* on the critical path)")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--delay", type=float, default=0.040, help="s added each way (0.040)")
    p.add_argument("--passes", type=int, default=5, help="in-process passes measured (5)")
    p.add_argument("--trials", type=int, default=10, help="labels with the service (10; 0: none)")
    p.add_argument("--other", type=int, default=1, help="the sender's other Screener mail (1)")
    p.add_argument("--senders", type=int, default=1, help="senders in the measured pass (1)")
    args = p.parse_args(argv)
    with cyrus() as server:
        box = prepared_box(server)
        port = int(box.settings.jmap_session_url.split("://", 1)[1].split("/")[0].rsplit(":", 1)[1])
        with DelayProxy(port, args.delay) as proxy:
            runs = [
                measure_pass(box, proxy, n, args.other, args.senders) for n in range(args.passes)
            ]
            trials = served_trials(box, proxy, args.trials) if args.trials else []
    print_path(runs[0])
    rounds, requests = sorted({r.rounds for r in runs}), sorted({r.requests for r in runs})
    print(f"critical path: {'/'.join(map(str, rounds))} round trips, ", end="")
    print(f"{'/'.join(map(str, requests))} requests")
    delay_ms = args.delay * 1000
    table(
        f"One pass through a proxy adding {delay_ms:.0f} ms each way: initial triages of "
        f"{args.senders} new sender(s), {args.other} more email(s) each in the Screener",
        [
            "passes",
            "requests (the critical path when sent one by one)",
            "round trips on the critical path",
            "pass duration (median)",
        ],
        [
            [
                str(len(runs)),
                "/".join(sorted({str(r.requests) for r in runs})),
                "/".join(sorted({str(r.rounds) for r in runs})),
                f"{statistics.median(r.seconds for r in runs):.3f} s",
            ]
        ],
    )
    if not trials:
        return 0
    lat = [t.latency for t in trials]
    table(
        f"`mailroom run` through the proxy ({delay_ms:.0f} ms each way), label -> triaged",
        [
            "trials",
            "median",
            "p90",
            "push delay tp-t0 (median)",
            "our share t1-tp (median)",
            "pass duration (median)",
            "push passes/label",
        ],
        [
            [
                str(len(trials)),
                f"{statistics.median(lat):.3f} s",
                f"{nearest_rank(lat, 0.9):.3f} s",
                f"{statistics.median(t.push_delay for t in trials):.3f} s",
                f"{statistics.median(t.latency - t.push_delay for t in trials):.3f} s",
                f"{statistics.median(t.pass_seconds for t in trials):.3f} s",
                "/".join(sorted({str(t.push_passes) for t in trials})),
            ]
        ],
    )
    return 0


def served_trials(box: Box, proxy: DelayProxy, n: int) -> list[Trial]:
    """``n`` labels with `mailroom run` talking through the proxy; the probe goes direct
    for the label and the polling, through the proxy for its push stream."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    env.update(box.account.env())
    direct = load_settings(env)
    proxied = dict(env)
    proxied["MAILROOM_JMAP_SESSION_URL"] = via(direct.jmap_session_url, proxy.port)
    proxied["MAILROOM_CARDDAV_URL"] = via(direct.carddav_url, proxy.port)
    trials: list[Trial] = []
    with Probe.open(direct, uuid.uuid4().hex[:8]) as probe:
        try:
            with StateEvents.open(probe) as events, service(box, proxied, DEFAULTS) as svc:
                for k in range(n):
                    trials.append(one_trial(svc, probe, events, DEFAULTS, 9000 + k, 0.025))
                    print(f"trial {k + 1}: {trials[-1]}", flush=True)
        finally:
            probe.clean_up()
    return trials


if __name__ == "__main__":
    sys.exit(main())
