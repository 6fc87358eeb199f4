"""Latency from a triage label to the sender fully triaged, with the whole service running.

For each configuration (the defaults: push, `debounce_seconds` 0.5, `poll_interval` 60;
push with debounce 0; push off) the script starts the service, then runs trials:
import a fresh email from a fresh sender into the Screener, wait until it is searchable,
the service has dealt with the import and a quiet spell of `debounce_seconds` has
passed (a user labels mail some time after it arrived), then at t0 put the label on it
(one Email/set) and poll the email (raw JMAP, every --poll-every seconds) until the
label is gone and it sits in the destination and not in the Screener (t1).

The server's push delay is measured in the same trials, on an EventSource stream this
script keeps open: tp is the first state event on it after t0. It prints the median
and p90 of t1 - t0, the median push delay tp - t0, our share t1 - tp and its ratio to
the whole, and the passes each label caused (must be 1). The `burst` mode labels ten
fresh senders' emails within one second, --bursts times, and counts the passes each
burst caused (at most 3: passes start at least `debounce_seconds` apart).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
from httpx_sse import connect_sse

from mailroom.carddav.client import CardDavClient
from mailroom.carddav.groups import group_with_members, parse_group
from mailroom.carddav.vcard import parse_contact
from mailroom.config import Credentials, Settings, load_settings
from mailroom.errors import MailroomError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import EmailPatch
from mailroom.jmap.session import expand_event_source_url
from mailroom.run.statefiles import stamped
from mailroom_dev.benchkit import cyrus, prepared_box, table
from mailroom_dev.realserver import build_message
from mailroom_dev.servicebox import ServiceBox, free_port, log_time
from mailroom_dev.triagebox import Box
from mailroom_dev.wait import wait_until

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PUSH_TICK = 1.0  # s; Cyrus's jmap_pushpoll on the test server (Fastmail pushes at once)
DEFAULT_LABEL = "@ToFeed"  # its category files to Feed only: nothing lands in the Inbox
CAUTION = """\
Without MAILROOM_JMAP_TOKEN it runs against the local test Cyrus (a throwaway account).

With MAILROOM_JMAP_TOKEN, MAILROOM_CARDDAV_USERNAME and MAILROOM_CARDDAV_PASSWORD set
(and MAILROOM_JMAP_SESSION_URL / MAILROOM_CARDDAV_URL, Fastmail's by default) it runs
against THAT account, e.g. your own Fastmail. READ THIS FIRST:
  * the account must have been set up (`mailroom setup --apply`);
  * it imports its own test emails into your Screener (senders named
    latency-<run>-<n>@mailroom-bench.invalid), labels them, and at the end deletes
    those emails and the contacts triage made for those senders (and takes them out
    of every contact group); it touches no other mail or contact itself;
  * BUT while it runs, the mailroom service runs on your account like `mailroom run`
    does: any email YOU label in that time is triaged too. Stop your own mailroom
    service first (two workers on one account would race).
A server that is not on loopback is refused unless --i-understand is given."""


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    push: bool
    debounce: float
    poll_interval: float
    burst: int = 0  # labels per trial (0: one label per trial)


@dataclass(frozen=True, slots=True)
class Trial:
    latency: float  # t1 - t0, seconds
    push_delay: float  # tp - t0: the server's state event on our own stream
    push_passes: int  # poll_completed trigger=push from the label until settled
    triaging_passes: int  # passes (any trigger) that triaged a sender in that time
    pass_seconds: float  # duration_s of the pass that triaged it (its poll_completed line)
    to_pass: float  # t0 -> that pass's start (its log timestamp minus duration_s)
    after_pass: float  # that pass's end -> t1 (our polling and the last write's answer)


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The q-quantile by nearest rank (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# ---------------------------------------------------------------- the account, raw


class Probe:
    """This script's own view of the account: it imports, labels and watches only the
    emails it created, and cleans up those emails and their senders' contacts."""

    def __init__(
        self, settings: Settings, client: JmapClient, credentials: Credentials, run_id: str
    ) -> None:
        self.settings, self.client, self.run_id = settings, client, run_id
        self.credentials = credentials
        self.token = credentials.jmap_token
        category = next((c for c in settings.categories if c.label == DEFAULT_LABEL), None)
        category = category or settings.categories[0]
        names = {b.name: b.id for b in client.get_mailboxes()[0]}
        wanted = [settings.screener_mailbox, category.label]
        wanted += [c.destination_mailbox for c in settings.chain(category.name)]
        missing = [name for name in wanted if name not in names]
        if missing:
            raise MailroomError(f"mailboxes {missing} missing; run `mailroom setup --apply` first")
        self.screener, self.label_id = names[wanted[0]], names[wanted[1]]
        self.destinations = frozenset(names[n] for n in wanted[2:])
        self.account = client.session.account_id
        self.imported: list[str] = []
        self.senders: list[str] = []

    @classmethod
    @contextlib.contextmanager
    def open(cls, settings: Settings, run_id: str) -> Iterator[Probe]:
        credentials = settings.credentials()
        with JmapClient(settings.jmap_session_url, credentials.jmap_token) as client:
            yield cls(settings, client, credentials, run_id)

    def import_fresh(self, n: int) -> str:
        """A new email from a new sender in the Screener, searchable by its sender."""
        sender = f"latency-{self.run_id}-{n}@mailroom-bench.invalid"
        raw = build_message(sender, f"Latency Bench {n}", "bench@mailroom-bench.invalid", sender)
        self.senders.append(sender)
        email_id = self.client.import_email(raw, [self.screener])
        self.imported.append(email_id)
        query = ("Email/query", {"accountId": self.account, "filter": {"from": sender}}, "q")

        def searchable() -> bool:
            return email_id in self.client.call([query])[0][1].get("ids", [])

        wait_until(searchable, f"{sender} to be searchable after its import", 30, every=0.02)
        return email_id

    def label(self, email_id: str) -> None:
        self.client.update_emails({email_id: EmailPatch(add=frozenset({self.label_id}))})

    def keyword(self, email_id: str, on: bool) -> None:
        keyword = frozenset({"$mailroombench"})
        change = EmailPatch(set_keywords=keyword) if on else EmailPatch(unset_keywords=keyword)
        self.client.update_emails({email_id: change})

    def triaged(self, email_id: str) -> bool:
        """The label is gone, the Screener too, every destination of the chain is there."""
        get = ("Email/get", {"accountId": self.account, "ids": [email_id],
                             "properties": ["mailboxIds"]}, "g")  # fmt: skip
        found = self.client.call([get])[0][1].get("list") or [{}]
        boxes = {k for k, v in (found[0].get("mailboxIds") or {}).items() if v}
        return not boxes & {self.label_id, self.screener} and self.destinations <= boxes

    def clean_up(self) -> None:
        """Delete the emails this run imported and its senders' contacts (out of every
        group first). Nothing else is touched."""
        if self.imported:
            destroy = ("Email/set", {"accountId": self.account, "destroy": self.imported}, "d")
            self.client.call([destroy])
        c = self.credentials
        with CardDavClient(
            self.settings.carddav_url, c.carddav_username, c.carddav_password
        ) as carddav:
            cards = [card for a in self.senders for card in carddav.find_by_email(a)]
            uids = {u for c in cards if (u := parse_contact(c.text).uid)}
            for group in carddav.list_groups():
                parsed = parse_group(group.text)
                if parsed and parsed.member_uids & uids:
                    carddav.update(group, group_with_members(group.text, add=(), remove=uids))
            for card in cards:
                carddav.delete(card)
        print(f"cleaned up: {len(self.imported)} emails, {len(cards)} contacts", flush=True)


class StateEvents:
    """An EventSource stream of our own: the arrival time of every `state` event."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.arrivals = url, list[float]()
        self.ready = threading.Event()
        timeout = httpx.Timeout(10, read=None)
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        self.thread = threading.Thread(target=self._read, daemon=True)

    @classmethod
    @contextlib.contextmanager
    def open(cls, probe: Probe) -> Iterator[StateEvents]:
        url = expand_event_source_url(probe.client.session, types="Email", ping=30)
        if url is None:
            raise MailroomError("this server offers no EventSource: no push to measure")
        events = cls(url, probe.token)
        events.thread.start()
        if not events.ready.wait(30):
            raise MailroomError(f"the EventSource {events.url} did not answer in 30 s")
        try:
            yield events
        finally:
            events.http.close()  # ends the read in the thread

    def _read(self) -> None:
        """Read the stream, connecting again whenever the server ends it (Cyrus does
        after about 300 s), until ``http`` is closed."""
        while True:
            try:
                with connect_sse(self.http, "GET", self.url) as source:
                    source.response.raise_for_status()
                    self.ready.set()
                    for event in source.iter_sse():
                        if event.event == "state":
                            self.arrivals.append(time.monotonic())
            except (httpx.HTTPError, RuntimeError):
                if self.http.is_closed:
                    return
                time.sleep(0.2)

    def first_after(self, t: float, timeout: float) -> float:
        """The arrival of the first state event after ``t``."""

        def later() -> float | None:
            return next((a for a in list(self.arrivals) if a > t), None)

        return wait_until(later, "a state event after an Email/set", timeout, every=0.005)


# ---------------------------------------------------------------- the service


@contextlib.contextmanager
def service(box: Box | None, env: dict[str, str], mode: Mode) -> Iterator[ServiceBox]:
    """`mailroom run` on ``env``'s account, ready; with push off the listener is stopped
    under supervisord after start-up, so only the worker's fallback timer triages."""
    state_dir = Path(tempfile.mkdtemp(prefix="mrlt", dir="/tmp"))
    port = free_port()
    run_env = {k: v for k, v in env.items() if k != "PORT"}
    run_env.update(
        MAILROOM_STATE_DIR=str(state_dir),
        MAILROOM_HEALTH_PORT=str(port),
        MAILROOM_LOG_FORMAT="json",
        MAILROOM_LOG_LEVEL="info",
        MAILROOM_POLL_INTERVAL=str(mode.poll_interval),
        MAILROOM_DEBOUNCE_SECONDS=str(mode.debounce),
    )
    # ServiceBox only reads `box` in ServiceBox.running, which is not used here.
    svc = ServiceBox(cast(Box, box), state_dir, run_env, port, state_dir / "supervisord.out")
    try:
        svc.start()
        svc.wait_ready()
        if not mode.push:
            svc.stop_program("listener")
        yield svc
    except BaseException:
        print(svc.output_text()[-4000:], file=sys.stderr)
        raise
    finally:
        svc.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def settle_seconds(mode: Mode) -> float:
    """How long after t1 a stray further pass (an echo not recognised) would show up."""
    return mode.debounce + 2.5 if mode.push else 0.5


def quiet_spell(svc: ServiceBox, mode: Mode, since: int) -> None:
    """Wait for the imports' passes, then until no pass ran for ``debounce_seconds``
    (and none can be pending): a label now meets an idle worker, as a user's label
    does minutes after the mail came."""
    if not mode.push:
        time.sleep(0.2)
        return
    wait_until(lambda: svc.passes("push", since), "the import's pass", mode.debounce + 20)

    def quiet() -> bool:
        last = stamped(svc.worker_status(), "last_successful_poll")
        return last is not None and time.time() - last > mode.debounce + 0.5

    wait_until(quiet, "a quiet spell", mode.debounce + 60)


def wait_triaged(
    probe: Probe, email_ids: Sequence[str], t0: float, mode: Mode, every: float
) -> float:
    """When every email was seen triaged (polled every ``every`` seconds)."""
    deadline = t0 + (mode.debounce + 30 if mode.push else mode.poll_interval + 30)
    waiting = list(email_ids)

    def all_triaged() -> bool:
        waiting[:] = [e for e in waiting if not probe.triaged(e)]
        return not waiting

    what = f"emails {waiting} to be triaged {deadline - t0:.0f} s after t0"
    wait_until(all_triaged, what, deadline - time.monotonic(), every=every)
    return time.monotonic()


def one_trial(
    svc: ServiceBox, probe: Probe, events: StateEvents, mode: Mode, n: int, poll_every: float
) -> Trial:
    before_import = svc.mark()
    email_id = probe.import_fresh(n)
    quiet_spell(svc, mode, before_import)
    # Label at a random phase of what paces the pickup, or every trial would hit the same
    # one: the server's push tick (Cyrus checks every 1 s) or the worker's fallback timer.
    time.sleep(random.uniform(0, PUSH_TICK if mode.push else mode.poll_interval))
    mark = svc.mark()
    t0, t0_wall = time.monotonic(), time.time()
    probe.label(email_id)
    t1 = wait_triaged(probe, [email_id], t0, mode, poll_every)
    t1_wall = time.time()
    tp = events.first_after(t0, 30)
    time.sleep(settle_seconds(mode))  # an observation window: does a second pass come?
    passes = svc.passes(since=mark)
    triaging = [p for p in passes if int(p.get("senders_triaged", 0)) > 0]
    seconds = float(triaging[0].get("duration_s", 0.0)) if triaging else math.nan
    ended = (log_time(triaging[0]) if triaging else None) or math.nan
    return Trial(
        t1 - t0,
        tp - t0,
        sum(1 for p in passes if p.get("trigger") == "push"),
        len(triaging),
        seconds,
        ended - seconds - t0_wall,
        t1_wall - ended,
    )


def one_burst(
    svc: ServiceBox, probe: Probe, events: StateEvents, mode: Mode, n: int, poll_every: float
) -> Trial:
    """``mode.burst`` labels on fresh senders' emails within one second; passes counted."""
    before_import = svc.mark()
    email_ids = [probe.import_fresh(n * 100 + k) for k in range(mode.burst)]
    quiet_spell(svc, mode, before_import)
    mark = svc.mark()
    t0 = time.monotonic()
    gaps = sorted(random.uniform(0, 1.0) for _ in email_ids)
    for at, email_id in zip(gaps, email_ids, strict=True):
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        probe.label(email_id)
    t1 = wait_triaged(probe, email_ids, t0, mode, poll_every)
    tp = events.first_after(t0, 30)
    time.sleep(settle_seconds(mode))
    passes = svc.passes(since=mark)
    triaging = [p for p in passes if int(p.get("senders_triaged", 0)) > 0]
    return Trial(
        t1 - t0,
        tp - t0,
        sum(1 for p in passes if p.get("trigger") == "push"),
        len(triaging),
        sum(float(p.get("duration_s", 0.0)) for p in triaging),
        math.nan,
        math.nan,
    )


# ---------------------------------------------------------------- reporting


def row(mode: Mode, trials: Sequence[Trial]) -> list[str]:
    lat = [t.latency for t in trials]
    med = statistics.median(lat)
    if mode.push:
        delay = f"{statistics.median(t.push_delay for t in trials):.3f} s"
        share = [t.latency - t.push_delay for t in trials]
        ours = f"{statistics.median(share):.3f} s"
        ratio = (
            f"{statistics.median(s / t.latency for s, t in zip(share, trials, strict=True)):.2f}"
        )
    else:
        delay = ours = ratio = "n/a"
    push = sorted({t.push_passes for t in trials})
    triaging = sorted({t.triaging_passes for t in trials})
    return [
        mode.name,
        str(len(trials)),
        f"{med:.3f} s",
        f"{nearest_rank(lat, 0.90):.3f} s",
        f"{min(lat):.3f}-{max(lat):.3f} s",
        delay,
        ours,
        ratio,
        f"{statistics.median(t.to_pass for t in trials):.3f} s",
        f"{statistics.median(t.pass_seconds for t in trials):.3f} s",
        "/".join(map(str, push)) if mode.push else "-",
        "/".join(map(str, triaging)),
    ]


def report(results: list[tuple[Mode, list[Trial]]], server: str) -> bool:
    table(
        f"Label -> fully triaged (t0 before the label's Email/set, tp the server's state "
        f"event on our own stream, t1 when our poll first sees label gone + filed; {server})",
        [
            "configuration",
            "trials",
            "median",
            "p90",
            "min-max",
            "push delay tp-t0 (median)",
            "our share t1-tp (median)",
            "our share / total (median)",
            "t0 -> pass start",
            "pass duration",
            "push passes/action",
            "triaging passes/action",
        ],
        [row(mode, trials) for mode, trials in results],
    )
    single = [(m, ts) for m, ts in results if not m.burst]
    bursts = [t for m, ts in results if m.burst for t in ts]
    ok = all(t.triaging_passes == 1 for _, ts in single for t in ts) and all(
        t.push_passes == 1 for mode, ts in single if mode.push for t in ts
    )
    print(f"\npasses per single label (must be 1): {'met' if ok else 'NOT MET'}")
    if bursts:
        worst = max(t.push_passes for t in bursts)
        print(f"push passes per burst of labels within 1 s (at most 3): {worst} at most")
        ok = ok and worst <= 3
    return ok


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__,
        epilog=CAUTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trials", type=int, default=20, help="trials per configuration (20)")
    p.add_argument("--bursts", type=int, default=5, help="trials of the burst mode (5)")
    p.add_argument("--fallback-interval", type=float, default=10.0, help="poll_interval, push off")
    p.add_argument("--poll-every", type=float, default=None, help="s between polls (0.025/0.1)")
    p.add_argument(
        "--modes",
        default="default,burst",
        help="any of default,burst,window3,push0,off (default,burst)",
    )
    p.add_argument("--i-understand", action="store_true", help="allow a non-loopback server")
    return p.parse_args(argv)


def modes(args: argparse.Namespace) -> list[Mode]:
    every = {
        "default": Mode("defaults: push, debounce 0.5 s, poll_interval 60 s", True, 0.5, 60.0),
        "burst": Mode("defaults, 10 labels within 1 s", True, 0.5, 60.0, burst=10),
        "window3": Mode("push, debounce 3 s (the old default)", True, 3.0, 60.0),
        "push0": Mode("push, debounce 0 s", True, 0.0, 60.0),
        "off": Mode(
            f"push off, fallback poll every {args.fallback_interval:g} s",
            False,
            3.0,
            args.fallback_interval,
        ),
    }
    return [every[name] for name in args.modes.split(",") if name]


def run(box: Box | None, env: dict[str, str], args: argparse.Namespace, server: str) -> bool:
    settings = load_settings(env)
    loopback = (settings.jmap_session_url.split("/")[2].rsplit(":", 1)[0]) in LOOPBACK
    poll_every = args.poll_every or (0.025 if loopback else 0.1)
    run_id = uuid.uuid4().hex[:8]
    results: list[tuple[Mode, list[Trial]]] = []
    with Probe.open(settings, run_id) as probe:
        try:
            with StateEvents.open(probe) as events:
                n = 0
                for mode in modes(args):
                    with service(box, env, mode) as svc:
                        trials = []
                        trial = one_burst if mode.burst else one_trial
                        for _ in range(args.bursts if mode.burst else args.trials):
                            n += 1
                            trials.append(trial(svc, probe, events, mode, n, poll_every))
                            print(f"trial {len(trials)} of {mode.name}: {trials[-1]}", flush=True)
                    results.append((mode, trials))
        finally:
            probe.clean_up()
    print(f"\npolled every {poll_every * 1000:.0f} ms; p90 is nearest-rank", flush=True)
    return report(results, server)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.environ.get("MAILROOM_JMAP_TOKEN"):
        env = dict(os.environ)
        url = load_settings(env).jmap_session_url
        host = url.split("/")[2].rsplit(":", 1)[0]
        if host not in LOOPBACK and not args.i_understand:
            print(f"refusing {url}: not on loopback.\n\n{CAUTION}", file=sys.stderr)
            return 2
        return 0 if run(None, env, args, f"the server of MAILROOM_JMAP_SESSION_URL: {url}") else 1
    with cyrus() as server:
        box = prepared_box(server)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        env.update(box.account.env())
        ok = run(box, env, args, "the test Cyrus on loopback, jmap_pushpoll 1 s")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
