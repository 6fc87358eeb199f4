"""A person screening: one label every 1.5 s, sender after sender, with the service running.

Each round imports one fresh email from each of --senders fresh senders into the
Screener, waits for a quiet spell (the worker idle, as when a person opens the
Screener) and a further (r + 0.5) / rounds of Cyrus's 1 s push tick in round r (so
that the rounds spread the labels over the tick's phases, alike for every
configuration), then labels one sender's email every --pace seconds (one Email/set each,
t0 just before it) while a poller of its own reads all the labelled emails in one
Email/get every 25 ms and notes when each is triaged (label gone, out of the
Screener, in the destination: t1). It prints the median and max of t1 - t0 over every
label, and the passes each round of labels caused (push passes, and those that
triaged someone). Configurations run interleaved round by round on one account:
the defaults (debounce_seconds 0.5: passes at least 0.5 s apart), debounce_seconds 3
(the old 3 s window's behaviour), and with --before DIR the service run from another
checkout DIR (e.g. `git archive main | tar -x -C DIR`) at its own defaults, through
PYTHONPATH, so that before and after meet the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from latency import PUSH_TICK, Mode, Probe, StateEvents, nearest_rank, quiet_spell, service

from mailroom.config import load_settings
from mailroom.jmap.client import JmapClient
from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.servicebox import ServiceBox
from mailroom_dev.triagebox import Box

MODES = {
    "default": Mode("defaults (debounce_seconds 0.5)", True, 0.5, 60.0),
    "window3": Mode("debounce_seconds 3 (the old window)", True, 3.0, 60.0),
    "before": Mode("--before checkout, debounce_seconds 3", True, 3.0, 60.0),
}


@dataclass(frozen=True, slots=True)
class Round:
    latencies: tuple[float, ...]  # t1 - t0 of each label, in labelling order
    push_delays: tuple[float, ...]  # tp - t0: the first state event after t0 on our stream
    push_passes: int
    triaging_passes: int
    held: int  # push passes that waited for the spacing (worker.json's passes_held)
    pass_seconds: tuple[float, ...]  # duration_s of each triaging pass


class Poller:
    """Reads every labelled email in one Email/get every ``every`` s; notes when each is
    triaged. Its own JMAP client, so the labelling thread's requests never wait on it."""

    def __init__(self, probe: Probe, every: float) -> None:
        self.probe, self.every = probe, every
        self.pending: dict[str, float] = {}  # email id -> t0
        self.done: dict[str, float] = {}  # email id -> t1
        self.lock = threading.Lock()
        self.stop = threading.Event()
        c = probe.credentials
        self.client = JmapClient(probe.settings.jmap_session_url, c.jmap_token)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    @contextlib.contextmanager
    def running(cls, probe: Probe, every: float) -> Iterator[Poller]:
        poller = cls(probe, every)
        poller.thread.start()
        try:
            yield poller
        finally:
            poller.stop.set()
            poller.thread.join()
            poller.client.close()

    def watch(self, email_id: str, t0: float) -> None:
        with self.lock:
            self.pending[email_id] = t0

    def _run(self) -> None:
        p = self.probe
        while not self.stop.wait(self.every):
            with self.lock:
                ids = list(self.pending)
            if not ids:
                continue
            get = ("Email/get", {"accountId": p.account, "ids": ids,
                                 "properties": ["id", "mailboxIds"]}, "g")  # fmt: skip
            found = self.client.call([get])[0][1].get("list") or []
            now = time.monotonic()
            for email in found:
                boxes = {k for k, v in (email.get("mailboxIds") or {}).items() if v}
                if not boxes & {p.label_id, p.screener} and p.destinations <= boxes:
                    with self.lock:
                        self.pending.pop(email["id"], None)
                        self.done[email["id"]] = now

    def wait_all(self, ids: Sequence[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(i in self.done for i in ids):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"not triaged within {timeout:.0f} s: {set(ids) - set(self.done)}")


def one_round(
    svc: ServiceBox,
    probe: Probe,
    events: StateEvents,
    mode: Mode,
    n: int,
    senders: int,
    pace: float,
    every: float,
    phase: float,
) -> Round:
    before_import = svc.mark()
    ids = [probe.import_fresh(n * 100 + k) for k in range(senders)]
    quiet_spell(svc, mode, before_import)
    # The quiet spell ends a fixed time after the import's pass, which started at one of
    # the listener's push ticks: without this the first label (and every other one, at a
    # 1.5 s pace) would meet the same phase of Cyrus's 1 s push poll in every round, a
    # different one for each debounce_seconds. Round r waits (r + 0.5) / rounds of a tick.
    time.sleep(phase)
    mark = svc.mark()
    held = int(svc.worker_status().get("counters", {}).get("passes_held", 0))
    t0s: dict[str, float] = {}
    with Poller.running(probe, every) as poller:
        start = time.monotonic()
        for k, email_id in enumerate(ids):
            time.sleep(max(0.0, start + k * pace - time.monotonic()))
            t0s[email_id] = time.monotonic()
            poller.watch(email_id, t0s[email_id])
            probe.label(email_id)
        poller.wait_all(ids, mode.debounce + 60)
        done = dict(poller.done)
    time.sleep(mode.debounce + 2.5)  # would a stray pass come?
    passes = svc.passes(since=mark)
    triaging = [p for p in passes if int(p.get("senders_triaged", 0)) > 0]
    now_held = int(svc.worker_status().get("counters", {}).get("passes_held", 0))
    return Round(
        tuple(done[i] - t0s[i] for i in ids),
        tuple(events.first_after(t0s[i], 30) - t0s[i] for i in ids),
        sum(1 for p in passes if p.get("trigger") == "push"),
        len(triaging),
        now_held - held,
        tuple(float(p.get("duration_s", 0.0)) for p in triaging),
    )


def report(results: dict[str, list[Round]], args: argparse.Namespace, server: str) -> None:
    rows = []
    for name, rounds in results.items():
        lat = [x for r in rounds for x in r.latencies]
        push = [x for r in rounds for x in r.push_delays]
        ours = [a - b for a, b in zip(lat, push, strict=True)]
        seconds = [x for r in rounds for x in r.pass_seconds]
        rows.append(
            [
                MODES[name].name,
                f"{len(rounds)} x {args.senders}",
                f"{statistics.median(lat):.3f} s",
                f"{nearest_rank(lat, 0.90):.3f} s",
                f"{max(lat):.3f} s",
                f"{statistics.median(push):.3f} s",
                f"{statistics.median(ours):.3f} s / {max(ours):.3f} s",
                f"{statistics.median(seconds):.3f} s",
                "/".join(str(r.push_passes) for r in rounds),
                "/".join(str(r.triaging_passes) for r in rounds),
                "/".join(str(r.held) for r in rounds),
            ]
        )
    table(
        f"A person screening: a label every {args.pace:g} s, {args.senders} senders a round, "
        f"label -> triaged ({server}; polled every {args.poll_every * 1000:.0f} ms)",
        [
            "configuration",
            "rounds x labels",
            "median",
            "p90",
            "max",
            "push delay tp-t0 (median)",
            "t1-tp median / max",
            "pass duration (median)",
            "push passes/round",
            "triaging passes/round",
            "held/round",
        ],
        rows,
    )


def run(box: Box, env: dict[str, str], args: argparse.Namespace) -> dict[str, list[Round]]:
    settings = load_settings(env)
    names = [m for m in args.modes.split(",") if m]
    results: dict[str, list[Round]] = {name: [] for name in names}
    with Probe.open(settings, uuid.uuid4().hex[:8]) as probe:
        try:
            with StateEvents.open(probe) as events:
                n = 0
                for r in range(args.rounds):
                    phase = (r + 0.5) / args.rounds * PUSH_TICK  # the same phases for each
                    for name in names:  # interleaved: the machine's load falls on both alike
                        n += 1
                        one = served_round(box, env, probe, events, MODES[name], n, phase, args)
                        results[name].append(one)
                        lat = " ".join(f"{x:.2f}" for x in one.latencies)
                        print(f"round {n} {name}: {lat} s; {one.push_passes} push passes")
        finally:
            probe.clean_up()
    return results


def served_round(
    box: Box,
    env: dict[str, str],
    probe: Probe,
    events: StateEvents,
    mode: Mode,
    n: int,
    phase: float,
    args: argparse.Namespace,
) -> Round:
    """One round on a service of its own (started for it, stopped after)."""
    if mode is MODES["before"]:
        env = {**env, "PYTHONPATH": f"{args.before}:{args.before}/dev"}
    with service(box, env, mode) as svc:
        return one_round(
            svc, probe, events, mode, n, args.senders, args.pace, args.poll_every, phase
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=4, help="rounds per configuration (4)")
    p.add_argument("--senders", type=int, default=8, help="labels per round (8)")
    p.add_argument("--pace", type=float, default=1.5, help="s between two labels (1.5)")
    p.add_argument("--poll-every", type=float, default=0.025, help="s between polls (0.025)")
    p.add_argument("--modes", default="default,window3", help="of default,window3,before")
    p.add_argument("--before", default=None, help="the checkout the `before` mode runs")
    args = p.parse_args(argv)
    if "before" in args.modes and not args.before:
        p.error("the `before` mode needs --before DIR (a checkout of the code to compare)")
    with cyrus() as server:
        box = prepared_box(server)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        env.update(box.account.env())
        results = run(box, env, args)
    report(results, args, "the test Cyrus on loopback, jmap_pushpoll 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
