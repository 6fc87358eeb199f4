"""The listener against a scripted local EventSource server (tests/faultserver.py).

Wakes arrive on a real Unix datagram socket; listener.json is read from disk. Most
tests run the loop in the test's own thread on a fake clock: its waits between
attempts are recorded and advance the clock, never sleep, and the loop stops after a
set number of them (``Stepped``). Tests of a stream held open run the loop in a thread
and poll for an observable effect, with a deadline that only bounds a failure.
"""

from __future__ import annotations

import email.utils
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from mailroom.errors import ConfigError
from mailroom.procsettings import load_process_settings
from mailroom.run.statefiles import read_status, write_status
from mailroom.service.backoff import Backoff
from mailroom.service.listener import ListenerOptions, run, safe_url
from mailroom.service.sse import MAX_LINE_BYTES
from mailroom.service.wake import Wake, WakeReceiver
from mailroom_dev.faultserver import ACCOUNT, PING, TOKEN, FaultServer, Play, state_event
from mailroom_dev.wait import wait_until

FAST = Backoff(initial=0.01, cap=0.2)
DEADLINE = 10.0
EPOCH = 1_800_000_000.0  # the fake wall clock's zero


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # short: a Unix socket path must fit in 107 bytes
    path = Path(tempfile.mkdtemp(prefix="mrl", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def until(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """The harness's one poll loop, at the short interval these in-process effects need."""
    return wait_until(check, what, timeout, every=0.01)


class Running:
    """A listener loop in a thread, with the worker's end of the wake socket."""

    def __init__(self, server: FaultServer, state_dir: Path, **options: Any) -> None:
        self.state_dir = state_dir
        self.receiver = WakeReceiver(state_dir / "wake.sock")
        self.stop = threading.Event()
        self.result: list[int] = []
        options.setdefault("backoff", FAST)
        self.options = ListenerOptions(server.session_url, TOKEN, state_dir, **options)
        self.thread = threading.Thread(
            target=lambda: self.result.append(run(self.options, self.stop))
        )
        self.thread.start()

    def status(self) -> dict[str, Any]:
        return read_status(self.state_dir / "listener.json") or {}

    def status_until(self, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        return until(lambda: (s := self.status()) and check(s) and s, what)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(3)
        assert not self.thread.is_alive(), "the listener did not stop within 3 s"
        self.receiver.close()
        return self.result[0]


class FakeTime:
    """The listener's clock and wait: ``wait`` records the delay, moves the clock and,
    after ``waits`` of them, sets ``stop``. ``tick`` moves the clock on every reading."""

    def __init__(
        self, stop: threading.Event, waits: int, tick: float = 0.0, window: float | None = None
    ) -> None:
        self.stop, self.left, self.tick, self.window = stop, waits, tick, window
        self.now = 0.0
        self.delays: list[float] = []

    def clock(self) -> float:
        self.now += self.tick
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    def wait(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay
        self.left -= 1
        if self.left <= 0 or (self.window is not None and self.now >= self.window):
            self.stop.set()


class Stepped:
    """A listener run to its end in the test's thread: it stops after ``waits`` waits."""

    def __init__(
        self,
        server: FaultServer,
        state_dir: Path,
        *,
        waits: int,
        tick: float = 0.0,
        window: float | None = None,
        token: str = TOKEN,
        worker: bool = True,
        **options: Any,
    ) -> None:
        receiver = WakeReceiver(state_dir / "wake.sock") if worker else None
        stop = threading.Event()
        self.time = FakeTime(stop, waits, tick, window)
        options.setdefault("backoff", Backoff())
        opts = ListenerOptions(
            server.session_url,
            token,
            state_dir,
            clock=self.time.clock,
            wall=self.time.wall,
            wait=self.time.wait,
            **options,
        )
        try:
            self.code = run(opts, stop)
            self.wakes = receiver.drain() if receiver else []  # all sent before run() returned
        finally:
            if receiver:
                receiver.close()
        self.status = read_status(state_dir / "listener.json") or {}

    @property
    def delays(self) -> list[float]:
        return self.time.delays


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in list(logs) if entry["event"] == name]


def test_connect_wake_then_a_state_wake_with_the_changed_states(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    script = [Play(chunks=(state_event({"Email": "72"}, "72"),))]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=1)
    assert run.code == 0
    assert run.wakes == [
        Wake(changed={}, reason="connect"),
        Wake(changed={"Email": "72"}, reason="state"),
    ]
    status = run.status
    assert status["last_event_at"] is not None
    assert status["reconnect_count"] == 0
    assert status["pid"] == os.getpid()
    [request] = server.stream_requests()
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "last-event-id" not in request.headers
    assert request.query == {"types": ["Email,Mailbox"], "closeafter": ["no"], "ping": ["30"]}
    [started] = events(logs, "eventsource_listener_started")
    assert started["url"].startswith(server.base_url + "/events?")
    assert len(events(logs, "eventsource_connected")) == 1


def test_a_clean_recycle_resumes_with_last_event_id_and_needs_no_catch_up_pass(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    script = [Play(chunks=(state_event({"Email": "7"}, "7"),)), Play()]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=2)
    first, second = server.stream_requests()
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "7"
    # the server replays anything after event 7 on the resumed stream: no connect wake
    assert [w.reason for w in run.wakes] == ["connect", "state"]
    assert run.status["reconnect_count"] == 1
    assert run.status["last_error"] is None
    closed = events(logs, "eventsource_disconnected")
    assert [(e["log_level"], e.get("routine")) for e in closed] == [("info", True)] * 2
    assert run.delays == [1.0, 1.0]  # each connect resets the backoff
    [reconnected] = events(logs, "eventsource_reconnected")
    assert reconnected["catch_up"] is False


def test_a_reconnect_after_an_error_wakes_the_worker_for_a_catch_up_even_when_resuming(
    state_dir: Path,
) -> None:
    script = [Play(chunks=(state_event({"Email": "7"}, "7"),)), Play(status=500), Play()]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=3)
    assert server.stream_requests()[2].headers["last-event-id"] == "7"
    assert [w.reason for w in run.wakes] == ["connect", "state", "connect"]


def test_the_first_connect_of_a_stream_without_ids_always_catches_up(state_dir: Path) -> None:
    with FaultServer([Play()]) as server:
        run = Stepped(server, state_dir, waits=2)
    assert [w.reason for w in run.wakes] == ["connect", "connect"]  # nothing to resume from


def test_server_retry_field_sets_the_next_delay(state_dir: Path) -> None:
    slow = Backoff(initial=60, cap=60)  # without `retry:` the reconnect would wait a minute
    script = [Play(chunks=(b"retry: 2500\n\n",)), Play()]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=2, backoff=slow)
    assert run.delays == [2.5, 60]  # the field sets only the next delay


@pytest.mark.parametrize("field", [b"retry: 0", b"retry: 1", b"retry: 999"])
def test_a_tiny_server_retry_gives_at_most_one_reconnect_a_second(
    field: bytes, state_dir: Path
) -> None:
    # each stream delivers (a ping): the floor alone bounds a working stream's recycling;
    # a stream that delivers nothing backs off further (the tests of failed streams below)
    with FaultServer([Play(chunks=(field + b"\n\n", PING))]) as server:
        run = Stepped(server, state_dir, waits=20)
    assert run.delays == [1.0] * 20
    assert server.connections == 20
    assert server.connections / sum(run.delays) <= 1.0  # per second of (fake) time


BROKEN_STREAMS = {
    "garbage": Play(chunks=(b"\x00\xff\xfe not an event stream at all\n\n" * 10,)),
    "an over-long line": Play(chunks=(b"data: " + b"x" * (MAX_LINE_BYTES + 10),)),
    "retry: 0": Play(chunks=(b"retry: 0\n\n",)),
}


@pytest.mark.parametrize("broken", BROKEN_STREAMS)
def test_a_stream_that_delivers_nothing_backs_off_to_the_cap_and_logs_once(
    broken: str, state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    # ten minutes of fake time against a server that accepts every stream and breaks it
    with FaultServer([BROKEN_STREAMS[broken]]) as server:
        run = Stepped(server, state_dir, waits=10_000, window=600.0)
    assert server.connections == 15  # not one a second (600): 1+2+4+...+32, then 60 s each
    assert run.delays == [1, 2, 4, 8, 16, 32] + [60] * 9
    loud = [e["event"] for e in logs if e["log_level"] != "debug"]
    assert loud == [  # one line per change of state, not two per connect
        "eventsource_listener_started",
        "eventsource_connected",
        "eventsource_disconnected",
        "eventsource_reconnected",
    ]
    assert [e["failed_streams"] for e in events(logs, "eventsource_disconnected")] == list(
        range(1, 16)
    )


def test_a_stream_that_delivers_ends_the_run_of_failed_streams(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    bad = BROKEN_STREAMS["garbage"]
    with FaultServer([bad, bad, bad, Play(chunks=(PING,)), bad]) as server:
        run = Stepped(server, state_dir, waits=5)
    assert run.delays == [1, 2, 4, 1, 1]  # the ping: back to the first delay
    [recovered] = events(logs, "eventsource_streams_recovered")
    assert recovered["failed_streams"] == 3
    closed = events(logs, "eventsource_disconnected")
    assert [e["log_level"] for e in closed] == ["info", "debug", "debug", "info", "info"]


def test_a_negative_server_retry_is_ignored(state_dir: Path) -> None:
    with FaultServer([Play(chunks=(b"retry: -1\n\n", PING))]) as server:
        run = Stepped(server, state_dir, waits=3, backoff=Backoff(initial=5, cap=60))
    assert run.delays == [5, 5, 5]


def test_a_huge_server_retry_is_held_to_the_cap(state_dir: Path) -> None:
    with FaultServer([Play(chunks=(b"retry: 86400000\n\n",))]) as server:
        run = Stepped(server, state_dir, waits=1)
    assert run.delays == [60.0]


def test_a_stream_that_never_pings_is_recycled_quietly_by_the_read_timeout(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    with FaultServer([Play(then="stall")]) as server:
        run = Stepped(server, state_dir, waits=1, read_timeout=0.2)
    [recycled] = events(logs, "eventsource_disconnected")
    assert recycled["log_level"] == "info"
    assert "does not ping" in recycled["error"]
    assert run.status["last_error"] is None


def test_a_stream_that_pinged_then_went_silent_is_a_warning(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    with FaultServer([Play(chunks=(PING,), then="stall")]) as server:
        run = Stepped(server, state_dir, waits=1, read_timeout=0.3)
    [dead] = events(logs, "eventsource_disconnected")
    assert dead["log_level"] == "warning"
    assert "read timeout" in run.status["last_error"]
    assert [w.reason for w in run.wakes] == ["connect"]


def test_a_trickling_stream_that_completes_no_event_is_recycled(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    # A byte now and then (each read returns long before the read timeout) but never a
    # whole event; every reading of the fake clock is a second later.
    with FaultServer([Play(chunks=(PING,), trickle=b"data: never ends ")]) as server:
        run = Stepped(server, state_dir, waits=1, tick=1.0, read_timeout=5)
    [stale] = events(logs, "eventsource_disconnected")
    assert stale["log_level"] == "warning"
    assert "completed no event within the read timeout (5 s)" in stale["error"]
    assert "completed no event" in run.status["last_error"]
    assert server.connections == 1


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_200_mb_line_without_newline_is_refused_with_bounded_memory(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    before = rss_kib()
    with FaultServer([Play(chunks=(b"data: ",), flood=200 * 2**20)]) as server:
        run = Stepped(server, state_dir, waits=1)
        grown = rss_kib() - before
    [refused] = events(logs, "eventsource_disconnected")
    assert refused["log_level"] == "warning"
    assert f"a line longer than {MAX_LINE_BYTES} bytes" in run.status["last_error"]
    # it hung up after the first 64 KiB line (plus what the sockets' buffers held)
    assert server.flood_sent < 32 * 2**20
    assert grown < 32 * 1024  # KiB: the listener kept no more than a line's worth


def test_garbage_and_lines_split_across_writes_are_handled(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    good = state_event({"Email": "9", "Mailbox": "3"}, "9")
    chunks = (
        b": comment\n",
        b"event: state\ndata: {not json",
        b"}\n\n",
        b"event:sta",
        b'te\r\ndata:{"changed":{"' + ACCOUNT.encode() + b'":{"Email":"8"}},',
        b'"type":"change"}\r\n\r',
        b"\n" + good[:11],
        good[11:],
    )
    with FaultServer([Play(chunks=chunks)]) as server:
        run = Stepped(server, state_dir, waits=1)
    assert run.wakes == [
        Wake(changed={}, reason="connect"),
        Wake(changed={"Email": "8"}, reason="state"),
        Wake(changed={"Email": "9", "Mailbox": "3"}, reason="state"),
    ]
    assert run.status["last_error"] is None  # a bad event is skipped, the stream goes on
    assert len(events(logs, "eventsource_bad_event")) == 1
    assert server.connections == 1


def test_unauthorized_is_reported_and_retried_at_the_cap(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    with FaultServer([Play(status=401), Play()]) as server:
        run = Stepped(server, state_dir, waits=2)
    refused = events(logs, "eventsource_disconnected")[0]
    assert refused["log_level"] == "error"
    assert refused["next_delay"] == 60.0
    assert "MAILROOM_JMAP_TOKEN" in refused["error"]
    assert run.delays == [60.0, 1.0]
    assert "HTTP 401" in run.status["last_error"]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_back_off_then_recover(status: int, state_dir: Path) -> None:
    with FaultServer([Play(status=status), Play(status=status), Play()]) as server:
        run = Stepped(server, state_dir, waits=3)
    assert run.delays == [1.0, 2.0, 1.0]  # doubling, then reset by the connect
    assert run.status["reconnect_count"] == 0  # the first successful connect


@pytest.mark.parametrize(("retry_after", "delay"), [("7", 7.0), ("0", 1.0), ("9999", 300.0)])
def test_retry_after_on_503_sets_the_next_delay_within_bounds(
    retry_after: str, delay: float, state_dir: Path
) -> None:
    slow = Backoff(initial=60, cap=300)
    script = [Play(status=503, headers=(("Retry-After", retry_after),)), Play()]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=1, backoff=slow)
    assert run.delays == [delay]


def test_retry_after_as_an_http_date_sets_the_next_delay(state_dir: Path) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    script = [Play(status=503, headers=(("Retry-After", when),)), Play()]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=1, backoff=Backoff(initial=1, cap=300))
    [delay] = run.delays
    assert 100 < delay <= 120  # the date is whole seconds; the run takes a moment


def test_no_content_means_push_is_not_available_and_the_listener_idles(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    with FaultServer([Play(status=204)]) as server:
        listener = Running(server, state_dir, heartbeat_interval=0.05)
        first = listener.status_until(lambda s: s["status"] == "not_available", "not_available")
        listener.status_until(lambda s: s["heartbeat"] != first["heartbeat"], "a fresh heartbeat")
        assert listener.finish() == 0
    assert server.connections == 1
    assert len(events(logs, "eventsource_not_available")) == 1


def test_a_session_without_event_source_url_is_not_available(state_dir: Path) -> None:
    with FaultServer(event_source=False) as server:
        listener = Running(server, state_dir)
        listener.status_until(lambda s: s["status"] == "not_available", "not_available")
        assert listener.finish() == 0
    assert server.connections == 0


def test_a_rejected_session_is_retried_and_reported(state_dir: Path) -> None:
    with FaultServer() as server:
        run = Stepped(server, state_dir, waits=2, token="wrong-token")
    assert run.status["status"] == "disconnected"
    assert "HTTP 401" in run.status["last_error"]
    assert run.delays == [60.0, 60.0]  # bad credentials: at the cap, every time
    assert server.connections == 0
    assert "wrong-token" not in (state_dir / "listener.json").read_text()


def test_stop_ends_a_read_blocked_on_a_silent_stream_at_once(state_dir: Path) -> None:
    with FaultServer([Play(then="stall")]) as server:
        listener = Running(server, state_dir, read_timeout=600)
        listener.status_until(lambda s: s["status"] == "connected", "connected")
        assert listener.finish() == 0  # finish() fails unless the loop ends within 3 s
    assert listener.status()["status"] == "disconnected"


def test_wakes_without_a_worker_are_dropped_and_counted(state_dir: Path) -> None:
    script = [Play(chunks=(state_event({"Email": "1"}, "1"),))]
    with FaultServer(script) as server:
        run = Stepped(server, state_dir, waits=1, worker=False)  # no worker socket
    assert run.code == 0
    assert run.status["wakes_dropped"] == 2
    assert run.status["last_event_at"] is not None


def test_sigterm_exits_zero_at_once_while_a_stream_is_open(state_dir: Path) -> None:
    script = (
        "import sys\n"
        "from mailroom.procsettings import load_process_settings\n"
        "from mailroom.service.listener import main\n"
        "sys.exit(main(load_process_settings()))\n"
    )
    with FaultServer([Play(then="stall")]) as server:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "MAILROOM_JMAP_TOKEN": TOKEN,
            "MAILROOM_JMAP_SESSION_URL": server.session_url,
            "MAILROOM_STATE_DIR": str(state_dir),
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", script], cwd=Path(__file__).parent.parent, env=env
        )
        try:
            until(
                lambda: (
                    (read_status(state_dir / "listener.json") or {}).get("status") == "connected"
                ),
                "the subprocess to connect",
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=3) == 0
        finally:
            proc.kill()
            proc.wait()


def test_the_listener_without_a_token_is_a_config_error(state_dir: Path) -> None:
    with pytest.raises(ConfigError, match="MAILROOM_JMAP_TOKEN is not set"):
        load_process_settings({"MAILROOM_STATE_DIR": str(state_dir)})


def test_safe_url_drops_credentials() -> None:
    assert safe_url("https://u:p@h.example:8443/ev?x=1") == "https://h.example:8443/ev?x=1"
    assert safe_url("http://h/ev") == "http://h/ev"


def test_a_listener_restarted_after_a_crash_counts_its_first_connect_as_a_reconnect(
    state_dir: Path, logs: list[dict[str, Any]]
) -> None:
    # what a listener killed with -9 leaves behind: it was connected, and wrote nothing more
    crashed = {"status": "connected", "connected_since": "2026-11-22T00:00:00+00:00"}
    write_status(state_dir / "listener.json", {**crashed, "reconnect_count": 2})
    with FaultServer([Play()]) as server:
        run = Stepped(server, state_dir, waits=1)
    assert run.status["reconnect_count"] == 3
    assert events(logs, "eventsource_connected") == []
    assert len(events(logs, "eventsource_reconnected")) == 1


def test_a_cleanly_stopped_and_started_listener_is_a_fresh_start(state_dir: Path) -> None:
    with FaultServer([Play()]) as server:
        first = Stepped(server, state_dir, waits=1)
        second = Stepped(server, state_dir, waits=1)
    assert first.status["reconnect_count"] == second.status["reconnect_count"] == 0
    assert server.connections == 2


def test_a_listener_that_never_connected_before_starts_counting_at_zero(state_dir: Path) -> None:
    write_status(state_dir / "listener.json", {"status": "not_available", "reconnect_count": 5})
    with FaultServer([Play()]) as server:
        run = Stepped(server, state_dir, waits=1)
    assert server.connections == 1
    assert run.status["reconnect_count"] == 0


def test_a_stopped_listener_leaves_its_status_disconnected(state_dir: Path) -> None:
    with FaultServer([Play(chunks=(), then="stall")]) as server:
        listener = Running(server, state_dir)
        listener.status_until(lambda s: s["status"] == "connected", "a connect")
        assert listener.finish() == 0
        status = listener.status()
    assert status["status"] == "disconnected"
    assert status["connected_since"] is None
