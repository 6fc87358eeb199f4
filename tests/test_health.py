"""Health: the pure verdict, and a real health process answering HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailroom.run.statefiles import iso, stamp, write_status
from mailroom.service.health import (
    BACKLOG,
    IDLE_TIMEOUT,
    STARTUP_GRACE,
    answer,
    evaluate,
    make_server,
)
from mailroom_dev.probes import request_all

NOW = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[1]


def worker_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": "running",
        "pid": 101,
        **stamp("started_at", NOW - 3600),
        "heartbeat": NOW - 5,
        "poll_interval": 60.0,
        **stamp("last_successful_poll", NOW - 30),
        "last_poll_trigger": "push",
        "consecutive_failures": 0,
        "last_error": None,
        "counters": {"passes": 12, "failures": 0, "wakes": 40, "echoes_skipped": 9},
    }
    doc.update(overrides)
    return doc


def listener_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": "connected",
        "pid": 102,
        "heartbeat": NOW - 5,
        "connected_since": iso(NOW - 3000),
        "last_event_at": iso(NOW - 31),
        "reconnect_count": 2,
        "last_error": None,
    }
    doc.update(overrides)
    return doc


def test_all_well_is_200_ok() -> None:
    code, body = evaluate(worker_doc(), listener_doc(), NOW)
    assert code == 200
    assert body["status"] == "ok"
    assert body["last_poll_age_seconds"] == 30.0
    assert body["last_poll_trigger"] == "push"
    assert body["worker"]["status"] == "up"
    assert body["worker"]["counters"]["passes"] == 12
    assert body["eventsource"] == {
        "status": "connected",
        "connected_since": iso(NOW - 3000),
        "last_event_at": iso(NOW - 31),
        "reconnect_count": 2,
        "last_error": None,
        "heartbeat_age_seconds": 5.0,
    }


def test_a_last_pass_older_than_twice_the_poll_interval_is_503() -> None:
    code, body = evaluate(
        worker_doc(**stamp("last_successful_poll", NOW - 121)), listener_doc(), NOW
    )
    assert code == 503
    assert body["status"] == "failing"
    assert body["last_poll_age_seconds"] == 121.0


def test_the_threshold_follows_the_workers_poll_interval() -> None:
    doc = worker_doc(poll_interval=300.0, **stamp("last_successful_poll", NOW - 500))
    assert evaluate(doc, listener_doc(), NOW)[0] == 200
    doc = worker_doc(poll_interval=10.0, **stamp("last_successful_poll", NOW - 25))
    assert evaluate(doc, listener_doc(), NOW)[0] == 503


def test_a_dead_worker_stays_200_until_twice_the_poll_interval_then_503() -> None:
    dead = {"heartbeat": NOW - 90}
    code, body = evaluate(worker_doc(**dead, **stamp("last_successful_poll", NOW - 100)), None, NOW)
    assert code == 200
    assert body["worker"]["status"] == "down"
    assert body["status"] == "degraded"
    code, body = evaluate(worker_doc(**dead, **stamp("last_successful_poll", NOW - 130)), None, NOW)
    assert code == 503
    assert body["worker"]["status"] == "down"


def test_the_parked_senders_of_worker_json_are_in_the_body() -> None:
    entry = {"sender": "a@x.test", "reason": "JmapMethodError: forbidden", "parked_at": iso(NOW)}
    code, body = evaluate(worker_doc(parked=[entry, {"sender": 7}, "junk"]), listener_doc(), NOW)
    assert code == 200  # parking is news for the user, not a failing service
    assert body["status"] == "ok"
    assert body["parked"] == [entry]
    assert evaluate(worker_doc(), listener_doc(), NOW)[1]["parked"] == []
    assert evaluate(None, None, NOW)[1]["parked"] == []


def test_a_cleanly_stopped_worker_is_down() -> None:
    _, body = evaluate(worker_doc(status="stopped"), listener_doc(), NOW)
    assert body["worker"]["status"] == "down"


def test_a_worker_that_has_not_passed_yet_is_healthy_from_its_start() -> None:
    fresh = worker_doc(
        **stamp("last_successful_poll", None),
        last_poll_trigger=None,
        **stamp("started_at", NOW - 10),
    )
    code, body = evaluate(fresh, listener_doc(), NOW)
    assert code == 200
    assert body["last_poll_age_seconds"] is None
    assert body["last_poll_trigger"] is None
    stuck = worker_doc(**stamp("last_successful_poll", None), **stamp("started_at", NOW - 200))
    assert evaluate(stuck, listener_doc(), NOW)[0] == 503


AUTH = "AuthError: the JMAP server rejected the credentials (HTTP 401); check the token"


def test_a_rejected_token_in_the_workers_last_pass_is_503_at_once() -> None:
    # a fresh worker whose start-up pass was refused: no grace to wait for
    doc = worker_doc(
        **stamp("started_at", NOW - 2),
        **stamp("last_successful_poll", None),
        consecutive_failures=1,
        last_error=AUTH,
    )
    code, body = evaluate(doc, listener_doc(), NOW)
    assert code == 503
    assert body["status"] == "failing"
    assert body["reason"] == (
        "authentication failed: the JMAP server rejected the credentials (HTTP 401); "
        "check the token"
    )
    # a token revoked while running: failing at once too, whatever the last good pass
    doc = worker_doc(consecutive_failures=1, last_error=AUTH)
    assert evaluate(doc, listener_doc(), NOW)[0] == 503


def test_a_listener_refused_while_not_connected_is_503_at_once() -> None:
    fresh = worker_doc(**stamp("started_at", NOW - 2), **stamp("last_successful_poll", None))
    listener = listener_doc(status="connecting", connected_since=None, last_error=AUTH)
    code, body = evaluate(fresh, listener, NOW)
    assert code == 503
    assert body["reason"].startswith("authentication failed: the JMAP server rejected")
    # connected again: an old error in the file is history, not a verdict
    assert evaluate(worker_doc(), listener_doc(last_error=AUTH), NOW)[0] == 200


def test_other_errors_are_not_taken_for_authentication() -> None:
    doc = worker_doc(consecutive_failures=2, last_error="ServerError: HTTP 503 AuthError: x")
    code, body = evaluate(doc, listener_doc(), NOW)
    assert code == 200  # retried on the next push or the timer; 503 once it is too old
    assert body["status"] == "degraded"
    assert (
        body["reason"] == "the last 2 pass(es) failed (retried): ServerError: HTTP 503 AuthError: x"
    )


def test_no_successful_pass_since_start_is_503_once_the_grace_is_past() -> None:
    def fresh(age: float, **more: Any) -> dict[str, Any]:
        return worker_doc(
            **stamp("started_at", NOW - age), **stamp("last_successful_poll", None), **more
        )

    assert evaluate(fresh(STARTUP_GRACE - 1), listener_doc(), NOW)[0] == 200
    error = "TransportError: cannot reach the JMAP server"
    code, body = evaluate(fresh(STARTUP_GRACE + 1, last_error=error), listener_doc(), NOW)
    assert code == 503
    assert body["reason"] == (
        f"no successful pass since the worker started {STARTUP_GRACE + 1:.0f} s ago; "
        f"last error: {error}"
    )


def test_a_previous_workers_pass_does_not_count_for_a_restarted_one() -> None:
    # worker.json carries the last good pass over a restart; it was before this start
    restarted = {
        **stamp("started_at", NOW - STARTUP_GRACE - 5),
        **stamp("last_successful_poll", NOW - 50),
    }
    code, body = evaluate(worker_doc(**restarted), listener_doc(), NOW)
    assert code == 503
    assert body["reason"].startswith("no successful pass since the worker started")
    assert body["last_poll_age_seconds"] == 50.0


def test_a_reason_says_why_the_service_is_degraded_and_ok_has_none() -> None:
    assert evaluate(worker_doc(), listener_doc(), NOW)[1]["reason"] is None
    _, body = evaluate(worker_doc(), listener_doc(status="disconnected"), NOW)
    assert body["reason"] == (
        "push is disconnected: mail is triaged on the fallback timer (every 60 s) "
        "until it reconnects"
    )
    _, body = evaluate(worker_doc(**stamp("last_successful_poll", NOW - 121)), listener_doc(), NOW)
    assert body["reason"] == (
        "the last successful pass was 121 s ago (failing past twice the poll interval, 120 s)"
    )


def test_push_down_is_still_200_but_shows_in_the_body() -> None:
    listener = listener_doc(status="disconnected", last_error="connection refused")
    code, body = evaluate(worker_doc(), listener, NOW)
    assert code == 200
    assert body["status"] == "degraded"
    assert body["eventsource"]["status"] == "disconnected"
    assert body["eventsource"]["last_error"] == "connection refused"


def test_a_missing_listener_file_reports_push_down() -> None:
    code, body = evaluate(worker_doc(), None, NOW)
    assert code == 200
    assert body["eventsource"]["status"] == "down"
    assert body["eventsource"]["connected_since"] is None


def test_a_stale_listener_heartbeat_reports_push_down() -> None:
    code, body = evaluate(worker_doc(), listener_doc(heartbeat=NOW - 61), NOW)
    assert code == 200
    assert body["eventsource"]["status"] == "down"
    assert body["eventsource"]["reconnect_count"] == 2  # the last known figures stay visible


def test_a_missing_worker_file_is_503() -> None:
    code, body = evaluate(None, listener_doc(), NOW)
    assert code == 503
    assert body["worker"]["status"] == "down"
    assert body["last_poll_age_seconds"] is None


@pytest.mark.parametrize(
    "broken",
    [
        {"heartbeat": "garbage", "last_successful_poll": 12, "poll_interval": "x", "counters": []},
        {"poll_interval": -5, "last_successful_poll": "yesterday"},
        {"poll_interval": True, "heartbeat": None},
        {"heartbeat": True, "started_at_epoch": float("nan"), "last_successful_poll_epoch": "x"},
    ],
)
def test_nonsense_in_a_status_file_never_crashes_the_verdict(broken: dict[str, Any]) -> None:
    code, body = evaluate(worker_doc(**broken), listener_doc(status=None), NOW)
    assert code in (200, 503)
    json.dumps(body)  # always serialisable
    assert body["eventsource"]["status"] == "down"


def test_answer_reads_the_files_and_tolerates_torn_ones(tmp_path: Path) -> None:
    (tmp_path / "worker.json").write_text('{"status": "running", "heartb')
    write_status(tmp_path / "listener.json", listener_doc())
    code, body = answer(tmp_path, "/healthz", NOW)
    assert code == 503
    assert body["worker"]["status"] == "down"
    assert body["eventsource"]["status"] == "connected"


def test_answer_ignores_a_query_string(tmp_path: Path) -> None:
    write_status(tmp_path / "worker.json", worker_doc())
    assert answer(tmp_path, "/healthz?probe=1", NOW)[0] == 200


@pytest.mark.parametrize("path", ["/", "/health", "/healthz/x", "/../worker.json"])
def test_any_other_path_is_404(tmp_path: Path, path: str) -> None:
    assert answer(tmp_path, path, NOW)[0] == 404


# -- a real health process -----------------------------------------------------------


def child_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT",)}
    return {**env, "PYTHONPATH": str(REPO), "MAILROOM_STATE_DIR": str(state_dir), **extra}


HEALTH = "from mailroom.service.health import main; raise SystemExit(main())"


@pytest.fixture
def health(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = child_env(tmp_path, MAILROOM_HEALTH_PORT="0")
    child = subprocess.Popen(
        [sys.executable, "-c", HEALTH], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline())
        assert first["event"] == "health_listening"
        yield child, f"http://127.0.0.1:{first['port']}"
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def get(url: str) -> tuple[int, dict[str, Any]]:
    resp = httpx.get(url, timeout=10)
    return resp.status_code, resp.json()


def test_a_health_process_answers_http(
    tmp_path: Path, health: tuple[subprocess.Popen[str], str]
) -> None:
    _, base = health
    code, body = get(f"{base}/healthz")
    assert code == 503  # no worker yet
    assert body["worker"]["status"] == "down"
    now = time.time()
    write_status(
        tmp_path / "worker.json",
        worker_doc(heartbeat=now, **stamp("started_at", now), **stamp("last_successful_poll", now)),
    )
    code, body = get(f"{base}/healthz")
    assert code == 200
    assert body["worker"]["status"] == "up"
    assert get(f"{base}/elsewhere")[0] == 404
    scrape = httpx.get(f"{base}/metrics", timeout=10)
    assert scrape.status_code == 200
    assert scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
    assert [s.value for s in families["mailroom_ready"].samples] == [1.0]


def test_a_health_process_exits_zero_on_sigterm(health: tuple[subprocess.Popen[str], str]) -> None:
    child, _ = health
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=10) == 0


def test_health_falls_back_to_port_then_refuses_a_bad_one(tmp_path: Path) -> None:
    env = child_env(tmp_path, PORT="not-a-port")
    done = subprocess.run(
        [sys.executable, "-c", HEALTH], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 78
    assert "'not-a-port' is not a port number" in done.stderr


@pytest.mark.parametrize(
    "environ",
    [
        {"HOME": "/home/ann"},
        {"HOME": "/home/ann", "XDG_STATE_HOME": "/var/state"},
        {"HOME": "/home/ann", "XDG_STATE_HOME": "relative/ignored"},
    ],
)
def test_health_and_config_agree_on_the_default_state_dir(environ: dict[str, str]) -> None:
    from mailroom.config import load_settings
    from mailroom.procsettings import read_environment, state_dir

    assert load_settings(environ).state_dir == Path(state_dir(read_environment(environ)))


@pytest.mark.parametrize(
    "value",
    ["/srv/m", "/srv//m/./x/", "relative/dir", ".", "~", "~/state", "~//a/../b", "//net/x", ""],
)
@pytest.mark.parametrize("home", ["/home/ann", "/home/ann/", "relative-home"])
def test_the_state_dir_text_is_what_pathlib_makes_of_the_variables(value: str, home: str) -> None:
    from mailroom.procsettings import default_state_dir, read_environment, state_dir

    environ = {"MAILROOM_STATE_DIR": value, "HOME": home}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", home)  # what Path.expanduser reads
        if value:
            expected = Path(value).expanduser().absolute()
        else:
            expected = (Path(home) / ".local" / "state" / "mailroom").absolute()
        assert Path(state_dir(read_environment(environ))) == expected
    assert Path(default_state_dir({"HOME": home})) == Path(home) / ".local" / "state" / "mailroom"


@pytest.mark.parametrize(
    "target",
    [
        "/healthz",
        "/healthz?x=1",
        "/healthz#f",
        "/healthz/",
        "/x?/healthz",
        "//healthz",
        "http://h/healthz",
        "healthz",
        "*",
        "/healthz;p",
        "/health\tz",
        "/%68ealthz",
    ],
)
def test_the_request_path_is_read_as_urlsplit_reads_it(target: str) -> None:
    from urllib.parse import urlsplit

    from mailroom.service.health import _path_of

    assert _path_of(target) == urlsplit(target).path


def test_health_reads_state_dir_from_the_environment() -> None:
    from mailroom.procsettings import read_environment, state_dir

    def state_dir_from_env(environ: dict[str, str]) -> Path:
        return Path(state_dir(read_environment(environ)))

    assert state_dir_from_env({"MAILROOM_STATE_DIR": "/srv/m", "HOME": "/h"}) == Path("/srv/m")
    assert state_dir_from_env({"MAILROOM_STATE_DIR": "", "HOME": "/h"}) == Path(
        "/h/.local/state/mailroom"
    )


# -- under load ------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_thousand_concurrent_requests_are_all_answered(
    tmp_path: Path, health: tuple[subprocess.Popen[str], str]
) -> None:
    now = time.time()
    write_status(
        tmp_path / "worker.json",
        worker_doc(heartbeat=now, **stamp("started_at", now), **stamp("last_successful_poll", now)),
    )
    port = int(health[1].rsplit(":", 1)[1])
    answers = request_all(port, 1000)
    assert len(answers) == 1000
    assert all(a.startswith(b"HTTP/1.0 200 ") for a in answers)
    bodies = [json.loads(a.split(b"\r\n\r\n", 1)[1]) for a in answers]
    assert {b["worker"]["status"] for b in bodies} == {"up"}


def test_the_health_process_listens_with_a_deep_backlog(
    health: tuple[subprocess.Popen[str], str],
) -> None:
    port = health[1].rsplit(":", 1)[1]
    listing = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listing[0] == "LISTEN"
    assert int(listing[2]) == BACKLOG  # Send-Q of a listening socket: its backlog


@pytest.mark.timeout(60)
def test_an_idle_connection_is_closed_by_the_health_process(
    health: tuple[subprocess.Popen[str], str],
) -> None:
    port = int(health[1].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=IDLE_TIMEOUT * 6) as idle:
        assert idle.recv(1) == b""  # closed by the server, not by our own timeout
    assert get(f"{health[1]}/healthz")[0] == 503  # and it still answers


@pytest.mark.timeout(30)
def test_idle_and_trickling_connections_hold_no_thread_past_the_timeout(tmp_path: Path) -> None:
    server = make_server(tmp_path, "127.0.0.1", 0, idle_timeout=0.2)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        port = server.server_address[1]
        idle = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(20)]
        half = socket.create_connection(("127.0.0.1", port), timeout=20)
        half.sendall(b"GET /healthz HTTP/1.0\r\n")  # never finishes its headers
        for sock in [*idle, half]:
            assert sock.recv(1) == b""
            sock.close()
        assert request_all(port, 1)[0].startswith(b"HTTP/1.0 503 ")
    finally:
        server.shutdown()
        server.server_close()
        serving.join(5)


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.timeout(30)
def test_head_has_no_body_and_other_methods_or_garbage_are_refused(tmp_path: Path) -> None:
    server = make_server(tmp_path, "127.0.0.1", 0, idle_timeout=5)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        port = server.server_address[1]
        head = exchange(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 503 Service Unavailable\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        assert length > 0
        assert head.endswith(b"\r\n\r\n")  # the body is left out
        post = exchange(port, b"POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert post.startswith(b"HTTP/1.0 501 ")
        assert exchange(port, b"nonsense\r\n\r\n").startswith(b"HTTP/1.0 400 ")
        get = exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"Content-Type: application/json\r\n" in get
        assert json.loads(get.split(b"\r\n\r\n", 1)[1])["worker"]["status"] == "down"
    finally:
        server.shutdown()
        server.server_close()
        serving.join(5)
