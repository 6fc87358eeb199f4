"""`mailroom status`: where it looks and what it counts as mailroom's (pure parts; the
real supervisords are in tests/test_operator_real.py)."""

from __future__ import annotations

from pathlib import Path

from mailroom.ops import status
from mailroom.ops.status import Place, Program

REPO = Path(__file__).resolve().parents[1]
MINE, DEMO = Path("/home/me/state"), Path("/tmp/mailroom-demo/state")


def test_status_looks_at_its_state_dir_then_the_demo_then_a_system_supervisord() -> None:
    found = status.places(MINE, DEMO, None)
    assert [(p.kind, p.socket) for p in found] == [
        ("run", MINE / "supervisor.sock"),
        ("demo", DEMO / "supervisor.sock"),
        *[("system", s) for s in status.WELL_KNOWN_SOCKETS],
    ]
    assert found[1].state_dirs == (DEMO,)
    assert found[-1].state_dirs == (MINE, status.SNIPPET_STATE_DIR)


def test_a_configured_state_dir_that_is_the_demos_is_asked_once() -> None:
    assert [p.kind for p in status.places(DEMO, DEMO, None)][:2] == ["run", "system"]


def test_a_supervisor_socket_given_is_the_only_place() -> None:
    sock = Path("/srv/sup.sock")
    assert status.places(MINE, DEMO, sock) == [
        Place("system", sock, (MINE, status.SNIPPET_STATE_DIR))
    ]


def test_only_the_mailroom_group_of_a_system_supervisord_is_mailroom() -> None:
    progs = [
        Program("mailroom:mailroom-worker", "RUNNING", 3, ""),
        Program("other", "RUNNING", 4, ""),
        Program("mailroomish", "RUNNING", 5, ""),
    ]
    system = Place("system", Path("/run/supervisor.sock"), (MINE,))
    assert status.mailroom_programs(system, progs) == (progs[0],)
    own = Place("run", MINE / "supervisor.sock", (MINE,))
    assert status.mailroom_programs(own, progs) == tuple(progs)


def test_the_snippet_runs_the_group_status_looks_for() -> None:
    snippet = (REPO / "deploy" / "supervisor" / "mailroom.conf").read_text()
    assert f"[group:{status.SNIPPET_GROUP}]" in snippet.splitlines()


def test_a_failing_verdict_shows_its_reason() -> None:
    body = {
        "status": "failing",
        "reason": "authentication failed: the JMAP server rejected the credentials",
        "last_poll_age_seconds": None,
        "worker": {"status": "up", "last_error": "AuthError: the JMAP server rejected"},
        "eventsource": {"status": "connecting", "last_error": None},
    }
    progs = [Program("worker", "RUNNING", 12, "pid 12")]
    assert status.summary(progs, (503, body)) == [
        "  worker  RUNNING   pid 12",
        "/healthz: 503 failing; no pass yet; worker up; push connecting",
        "  reason: authentication failed: the JMAP server rejected the credentials",
        "  worker last error: AuthError: the JMAP server rejected",
    ]
    assert status.exit_code(progs, 503) == 1


def test_nothing_answering_anywhere_is_found_nowhere(tmp_path: Path) -> None:
    found, notes = status.look([Place("run", tmp_path / "supervisor.sock", (tmp_path,))])
    assert (found, notes) == ([], [])
    stale = tmp_path / "stale.sock"
    stale.touch()  # a socket file nobody listens on: worth a note for a system one
    found, notes = status.look([Place("system", stale, (tmp_path,))])
    assert found == []
    assert len(notes) == 1
    assert notes[0].startswith(f"no supervisord answers on {stale} (")
