"""The worker loop, driven by a fake clock, scripted wakes and a plain fake pass function."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mailroom.errors import ServerError, ServerNotAnswering, TransportError
from mailroom.jmap.models import SetResult
from mailroom.run.statefiles import StatusFile, iso, read_status
from mailroom.service.wake import Wake, WakeSender
from mailroom.service.worker import (
    MAX_CONSECUTIVE_FAILURES,
    PARKED_KEPT,
    Worker,
    initial_status,
    parked_entries,
    serve,
)
from mailroom.triage.report import PassReport
from mailroom.version import version
from mailroom_dev.wait import wait_until

START = 1000.0
POLL = 60.0
DEBOUNCE = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class ScriptedWakes:
    """Wakes that arrive at fake times; ``wait`` moves the clock, never sleeps.

    When the script is spent and the clock passes ``until``, it stops the worker.
    """

    def __init__(self, clock: Clock, until: float) -> None:
        self.clock = clock
        self.until = until
        self.arrivals: list[tuple[float, Wake]] = []
        self.stop: Callable[[], None] = lambda: None

    def at(self, t: float, *wakes: Wake) -> None:
        self.arrivals.extend((t, w) for w in wakes)
        self.arrivals.sort(key=lambda a: a[0])

    def wait(self, timeout: float) -> list[Wake]:
        target = self.clock.now + max(timeout, 0.0)
        if self.arrivals and self.arrivals[0][0] <= target:
            self.clock.now = max(self.clock.now, self.arrivals[0][0])
            ready = [w for t, w in self.arrivals if t <= self.clock.now]
            self.arrivals = [(t, w) for t, w in self.arrivals if t > self.clock.now]
            return ready
        self.clock.now = min(target, max(self.until, self.clock.now))
        if self.clock.now >= self.until:
            self.stop()
        return []

    def drain(self) -> list[Wake]:
        """The wakes that arrived by now (during a pass), without moving the clock."""
        ready = [w for t, w in self.arrivals if t <= self.clock.now]
        self.arrivals = [(t, w) for t, w in self.arrivals if t > self.clock.now]
        return ready

    def interrupt(self) -> None:
        pass


class FakePass:
    """Records each pass (trigger, fake time); answers from a list of outcomes."""

    def __init__(self, clock: Clock, duration: float = 1.0) -> None:
        self.clock = clock
        self.duration = duration
        self.calls: list[tuple[str, float]] = []
        self.outcomes: list[PassReport | Exception] = []
        self.during: Callable[[], None] = lambda: None

    def __call__(self, trigger: str) -> PassReport:
        self.calls.append((trigger, self.clock.now))
        self.during()
        self.clock.now += self.duration
        outcome = self.outcomes.pop(0) if self.outcomes else PassReport(trigger=trigger)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @property
    def triggers(self) -> list[str]:
        return [t for t, _ in self.calls]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def status(tmp_path: Path) -> StatusFile:
    return StatusFile(tmp_path / "worker.json", initial_status(None, poll_interval=POLL, now=0.0))


def make_worker(
    clock: Clock, status: StatusFile, *, until: float, spacing: float = DEBOUNCE
) -> tuple[Worker, ScriptedWakes, FakePass]:
    wakes = ScriptedWakes(clock, until)
    fake = FakePass(clock)
    worker = Worker(fake, wakes, status, poll_interval=POLL, debounce_seconds=spacing, clock=clock)
    wakes.stop = worker.stop
    return worker, wakes, fake


def email(state: str) -> Wake:
    return Wake(changed={"Email": state}, reason="state")


def wrote(scanned: str, *chain: str) -> PassReport:
    writes, old = [], scanned
    for new in chain:
        writes.append(SetResult(old_state=old, new_state=new, created={}))
        old = new
    return PassReport(trigger="push", email_state_scanned=scanned, writes=tuple(writes))


def test_the_first_pass_is_a_startup_catch_up(clock: Clock, status: StatusFile) -> None:
    worker, _, fake = make_worker(clock, status, until=START + 10)
    assert worker.run() == 0
    assert fake.calls == [("startup", START)]


def test_without_wakes_the_fallback_timer_runs_a_pass_every_poll_interval(
    clock: Clock, status: StatusFile
) -> None:
    worker, _, fake = make_worker(clock, status, until=START + 130)
    assert worker.run() == 0
    # Each pass takes 1 s of fake time; the interval counts from the end of the last.
    assert fake.calls == [("startup", START), ("fallback", START + 61), ("fallback", START + 122)]


def test_a_lone_wake_gets_a_push_pass_at_once(clock: Clock, status: StatusFile) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    wakes.at(START + 5, email("s1"))
    assert worker.run() == 0
    assert fake.calls == [("startup", START), ("push", START + 5)]
    assert status.snapshot()["counters"]["passes_held"] == 0


SPACING = 0.5  # the default debounce_seconds


def test_at_the_defaults_news_during_a_pass_makes_one_more_as_it_ends(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30, spacing=SPACING)
    for k in range(10):  # a burst of ten within one second; each pass takes 1 s
        wakes.at(START + 5 + k * 0.1, email(f"s{k}"))
    assert worker.run() == 0
    assert fake.calls == [("startup", START), ("push", START + 5), ("push", START + 6)]
    assert status.snapshot()["counters"]["passes_held"] == 0


def test_at_the_defaults_a_person_labelling_every_1_5_s_gets_a_pass_at_once_each_time(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30, spacing=SPACING)
    fake.duration = 0.2
    label_at = [START + 5 + k * 1.5 for k in range(8)]
    for k, t in enumerate(label_at):
        wakes.at(t, email(f"s{k}"))
    assert worker.run() == 0
    assert fake.calls == [("startup", START)] + [("push", t) for t in label_at]


def test_at_the_defaults_the_own_echo_of_a_pass_wakes_nothing(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30, spacing=SPACING)
    fake.outcomes = [PassReport(trigger="startup"), wrote("s1", "s2", "s3")]
    wakes.at(START + 5, email("s1"))
    wakes.at(START + 5.5, email("s2"))  # during the pass: an intermediate state of its chain
    wakes.at(START + 7, email("s3"))  # after it: its last write
    assert worker.run() == 0
    assert fake.calls == [("startup", START), ("push", START + 5)]
    assert status.snapshot()["counters"]["echoes_skipped"] == 2


def test_a_burst_of_ten_wakes_costs_two_passes(clock: Clock, status: StatusFile) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    for k in range(10):
        wakes.at(START + 5 + k * 0.1, email(f"s{k}"))
    with capture_logs() as logs:
        assert worker.run() == 0
    # the first at once; the nine that came during it wait for the window to end
    assert fake.calls == [("startup", START), ("push", START + 5), ("push", START + 5 + DEBOUNCE)]
    collapsed = [e for e in logs if e["event"] == "debounce_collapsed"]
    assert collapsed == [{"event": "debounce_collapsed", "wakes": 9, "log_level": "debug"}]
    counters = status.snapshot()["counters"]
    assert counters["wakes"] == 10
    assert counters["passes_held"] == 1


def test_news_soon_after_the_startup_pass_waits_for_its_window(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    wakes.at(START + 1.5, Wake(changed={}, reason="connect"))  # the listener's first connect
    assert worker.run() == 0
    assert fake.calls == [("startup", START), ("push", START + DEBOUNCE)]


def test_the_fallback_timer_is_unchanged_by_leading_edge_passes(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 75)
    wakes.at(START + 10, email("s1"))
    assert worker.run() == 0
    # the push pass at +10 ends at +11; the fallback comes poll_interval after that
    assert fake.calls == [("startup", START), ("push", START + 10), ("fallback", START + 71)]


def test_the_echo_of_our_own_writes_is_skipped(clock: Clock, status: StatusFile) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    fake.outcomes = [wrote("10", "11", "12")]
    wakes.at(START + 2, email("12"))
    assert worker.run() == 0
    assert fake.triggers == ["startup"]
    assert status.snapshot()["counters"]["echoes_skipped"] == 1


def test_a_connect_wake_gets_a_pass_even_with_our_own_state(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    fake.outcomes = [wrote("10", "11")]
    wakes.at(START + 2, Wake(changed={"Email": "11"}, reason="connect"))
    assert worker.run() == 0
    assert fake.triggers == ["startup", "push"]


def test_a_state_inside_a_long_write_that_arrives_during_the_pass_is_skipped(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 40)
    fake.outcomes = [PassReport(trigger="startup"), wrote("20", "4020", "4021")]
    wakes.at(START + 5, email("20"))

    def server_reports_a_state_inside_the_move() -> None:
        if fake.triggers == ["startup", "push"]:
            wakes.at(clock.now + 0.5, email("2011"))  # no newState names it

    fake.during = server_reports_a_state_inside_the_move
    wakes.at(START + 7, email("4021"))  # the usual echo of the last write, after the pass
    assert worker.run() == 0
    assert fake.triggers == ["startup", "push"]
    assert status.snapshot()["counters"]["echoes_skipped"] == 2


def test_a_real_change_during_a_pass_gets_another_pass(clock: Clock, status: StatusFile) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 40)
    fake.outcomes = [PassReport(trigger="startup"), wrote("20", "21")]
    wakes.at(START + 5, email("20"))

    def user_labels_another_email() -> None:
        if fake.triggers == ["startup", "push"]:
            # Arrive just after the push pass: our echo and someone else's change.
            wakes.at(clock.now + fake.duration + 0.5, email("21"), email("22"))

    fake.during = user_labels_another_email
    assert worker.run() == 0
    assert fake.triggers == ["startup", "push", "push"]
    assert fake.calls[2] == ("push", START + 5 + DEBOUNCE)  # the push pass's window
    assert status.snapshot()["counters"]["echoes_skipped"] == 1


def test_a_late_event_for_the_scanned_state_gets_no_pass(clock: Clock, status: StatusFile) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    fake.outcomes = [PassReport(trigger="startup", email_state_scanned="30")]
    wakes.at(START + 2, email("30"))
    assert worker.run() == 0
    assert fake.triggers == ["startup"]
    assert status.snapshot()["counters"]["seen_skipped"] == 1


def test_ten_failed_passes_in_a_row_exit_non_zero(clock: Clock, status: StatusFile) -> None:
    worker, _, fake = make_worker(clock, status, until=START + 10_000)
    fake.outcomes = [TransportError("JMAP", "https://example.test/", "refused")] * 20
    assert worker.run() == 1
    assert len(fake.calls) == MAX_CONSECUTIVE_FAILURES
    doc = status.snapshot()
    assert doc["consecutive_failures"] == MAX_CONSECUTIVE_FAILURES
    assert doc["counters"]["failures"] == MAX_CONSECUTIVE_FAILURES
    assert doc["last_error"].startswith("TransportError: cannot reach the JMAP server")


def test_a_pass_ended_by_a_503_waits_for_the_servers_retry_after(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 150)
    busy = ServerError("JMAP", 503, "https://example.test/jmap/", retry_after=120.0)
    fake.outcomes = [ServerNotAnswering(busy)]
    wakes.at(START + 10, email("news"))  # news during the hold: no pass before 120 s
    assert worker.run() == 0
    assert fake.calls == [("startup", START), ("push", START + 1 + 120)]


def test_a_successful_pass_resets_the_failure_count(clock: Clock, status: StatusFile) -> None:
    worker, _, fake = make_worker(clock, status, until=START + 18 * 61 + 5)
    boom = RuntimeError("bug")
    fake.outcomes = [boom] * 9 + [PassReport(trigger="fallback")] + [boom] * 9
    assert worker.run() == 0
    assert len(fake.calls) == 19
    assert status.snapshot()["consecutive_failures"] == 9


def test_a_successful_pass_is_recorded_in_the_status_file(clock: Clock, status: StatusFile) -> None:
    worker, wakes, _ = make_worker(clock, status, until=START + 30)
    wakes.at(START + 5, email("1"))
    assert worker.run() == 0
    doc = read_status(status.path)
    assert doc is not None
    assert doc["status"] == "running"
    assert doc["last_poll_trigger"] == "push"
    assert doc["last_successful_poll"] is not None
    assert doc["consecutive_failures"] == 0
    assert doc["counters"] == {
        "passes": 2,
        "failures": 0,
        "wakes": 1,
        "echoes_skipped": 0,
        "seen_skipped": 0,
        "passes_held": 0,
        "emails_moved": 0,
        "senders_failed": 0,
        "senders_parked": 0,
    }
    assert doc["passes_by_trigger"] == {"startup": 1, "push": 1}
    assert doc["version"] == version()


def test_what_passes_did_is_summed_for_metrics(clock: Clock, status: StatusFile) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 30)
    wakes.at(START + 5, email("1"))
    fake.outcomes = [
        PassReport(trigger="startup", emails_moved=3, triaged=(("Feed", 2),), failures=1),
        PassReport(
            trigger="push",
            emails_moved=4,
            triaged=(("Feed", 1), ("Paper Trail", 1)),
            parked=("a@x.test: refused",),
        ),
    ]
    assert worker.run() == 0
    doc = read_status(status.path)
    assert doc is not None
    assert doc["triaged"] == {"Feed": 3, "Paper Trail": 1}
    assert doc["passes_by_trigger"] == {"startup": 1, "push": 1}
    counters = doc["counters"]
    assert (counters["emails_moved"], counters["senders_failed"], counters["senders_parked"]) == (
        7,
        1,
        1,
    )


def test_stop_during_a_pass_lets_it_finish_and_runs_no_other(
    clock: Clock, status: StatusFile
) -> None:
    worker, wakes, fake = make_worker(clock, status, until=START + 1000)
    wakes.at(START + 5, email("1"))
    wakes.at(START + 9, email("2"))
    fake.during = lambda: worker.stop() if len(fake.calls) == 2 else None
    fake.outcomes = [PassReport(trigger="startup"), PassReport(trigger="push")]
    assert worker.run() == 0
    assert fake.triggers == ["startup", "push"]
    assert status.snapshot()["counters"]["passes"] == 2


def test_a_new_worker_carries_over_the_last_successful_pass() -> None:
    previous = {"last_successful_poll": "2024-01-01T00:00:00+00:00", "last_poll_trigger": "push"}
    doc = initial_status(previous, poll_interval=30.0, now=0.0)
    assert doc["last_successful_poll"] == "2024-01-01T00:00:00+00:00"
    assert doc["last_poll_trigger"] == "push"
    assert doc["poll_interval"] == 30.0
    assert doc["pid"] == os.getpid()
    assert doc["counters"]["passes"] == 0


def test_parked_senders_are_listed_in_the_status_file_newest_last(
    clock: Clock, status: StatusFile
) -> None:
    wakes = ScriptedWakes(clock, START + 30)
    fake = FakePass(clock)
    worker = Worker(
        fake,
        wakes,
        status,
        poll_interval=POLL,
        debounce_seconds=DEBOUNCE,
        clock=clock,
        wall=lambda: 1_700_000_000.0,
    )
    wakes.stop = worker.stop
    wakes.at(START + 5, email("1"))
    wakes.at(START + 15, email("2"))
    fake.outcomes = [
        PassReport(trigger="startup", parked=("a@x.test: JmapMethodError: forbidden",)),
        PassReport(trigger="push", parked=("b@x.test: CardDavError: 507",)),
        PassReport(trigger="push"),  # a pass that parks nobody keeps the list
    ]
    assert worker.run() == 0
    assert fake.triggers == ["startup", "push", "push"]
    doc = read_status(status.path)
    assert doc is not None
    at = iso(1_700_000_000.0)
    assert doc["parked"] == [
        {"sender": "a@x.test", "reason": "JmapMethodError: forbidden", "parked_at": at},
        {"sender": "b@x.test", "reason": "CardDavError: 507", "parked_at": at},
    ]


def test_the_parked_list_is_bounded_and_a_sender_parked_again_moves_to_the_end() -> None:
    lines = [f"s{i}@x.test: failed {i}" for i in range(PARKED_KEPT + 5)]
    kept = parked_entries([], lines, 10.0)
    assert [e["sender"] for e in kept] == [f"s{i}@x.test" for i in range(5, PARKED_KEPT + 5)]
    again = parked_entries(kept, ["s5@x.test: failed again"], 20.0)
    assert again[-1] == {"sender": "s5@x.test", "reason": "failed again", "parked_at": iso(20.0)}
    assert [e["sender"] for e in again].count("s5@x.test") == 1
    assert parked_entries([{"sender": 1}, "junk", *kept[:1]], [], 0.0) == kept[:1]


def test_a_new_worker_carries_over_the_parked_senders() -> None:
    entry = {"sender": "a@x.test", "reason": "boom", "parked_at": iso(5.0)}
    doc = initial_status({"parked": [entry, {"sender": None}]}, poll_interval=30.0, now=0.0)
    assert doc["parked"] == [entry]
    assert initial_status(None, poll_interval=30.0, now=0.0)["parked"] == []


# -- serve(): lock, socket, signals (real processes) -----------------------------


@pytest.fixture
def state_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mrw", dir="/tmp") as d:  # short: AF_UNIX limit
        yield Path(d)


def test_a_second_worker_exits_at_once_with_a_clear_message(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(trigger: str) -> PassReport:
        raise AssertionError("a refused worker must not pass")

    with open(state_dir / "worker.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242\n")
        held.flush()
        with capture_logs():
            assert serve(never, state_dir, poll_interval=POLL, debounce_seconds=0) == 1
    err = capsys.readouterr().err
    assert "another mailroom worker (pid 4242)" in err
    assert "MAILROOM_STATE_DIR" in err


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mailroom.service.worker import serve
    from mailroom.triage.report import PassReport

    state_dir = Path(sys.argv[1])
    log = state_dir / "passes.log"

    def fake_pass(trigger):
        with log.open("a") as f:
            f.write(f"start {trigger}\\n")
        if trigger == "push":
            time.sleep(1.5)  # the pass in flight when SIGTERM arrives
        with log.open("a") as f:
            f.write(f"end {trigger}\\n")
        return PassReport(trigger=trigger)

    sys.exit(serve(fake_pass, state_dir, poll_interval=60.0, debounce_seconds=0.1))
    """
)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def spawn_child(state_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigterm_during_a_pass_finishes_it_and_exits_zero(state_dir: Path) -> None:
    child = spawn_child(state_dir)
    passes = state_dir / "passes.log"
    sender = WakeSender(state_dir / "wake.sock")
    try:
        wait_until(lambda: "end startup" in lines(passes), "the startup pass", 20, every=0.02)
        assert sender.send(email("1"))
        wait_until(lambda: "start push" in lines(passes), "the push pass to start", 20, every=0.02)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=20)
    finally:
        sender.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err.decode()
    assert lines(passes) == ["start startup", "end startup", "start push", "end push"]
    doc: dict[str, Any] | None = read_status(state_dir / "worker.json")
    assert doc is not None
    assert doc["status"] == "stopped"
    assert doc["last_poll_trigger"] == "push"
    assert not (state_dir / "wake.sock").exists()


def test_sigterm_while_idle_exits_zero_without_waiting_for_the_timer(state_dir: Path) -> None:
    child = spawn_child(state_dir)
    passes = state_dir / "passes.log"
    try:
        wait_until(lambda: "end startup" in lines(passes), "the startup pass", 20, every=0.02)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=20)  # the fallback timer is 60 s away
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err.decode()
    assert lines(passes) == ["start startup", "end startup"]


STOPPED_MID_LINE = textwrap.dedent(
    """
    import io, os, signal, sys
    from pathlib import Path

    import structlog

    from mailroom.service.worker import serve
    from mailroom.triage.report import PassReport


    class Output(io.StringIO):
        signalled = False

        def write(self, text):
            if "poll_completed" in text and not Output.signalled:
                Output.signalled = True  # SIGTERM lands while the logger's lock is held
                os.kill(os.getpid(), signal.SIGTERM)
            sys.__stdout__.write(text)
            return len(text)


    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=Output()))
    log = structlog.get_logger()


    def one_pass(trigger):
        log.info("poll_completed", trigger=trigger)
        return PassReport(trigger=trigger)


    sys.exit(serve(one_pass, Path(sys.argv[1]), poll_interval=60.0, debounce_seconds=0.5))
    """
)


def test_a_stop_signal_in_the_middle_of_a_log_line_still_stops_the_worker(tmp_path: Path) -> None:
    """supervisord's SIGTERM (or the parent-death one) can land while the worker writes a
    log line; the stop must not wait for the logger's lock, which that write holds (a
    worker that logged in its handler waited forever, left behind by its run)."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_MID_LINE, str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stops = [line for line in done.stdout.splitlines() if "worker_stop" in line]
    assert len(stops) == 2, done.stdout
    assert "worker_stopping" in stops[0], done.stdout
    assert "signal=SIGTERM" in stops[0], done.stdout
    assert "worker_stopped" in stops[1], done.stdout
