"""The demo's pure parts: its output in one format, and the labels it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailroom.categories import DEFAULT_CATEGORIES
from mailroom.errors import MailroomError
from mailroom.ops.demo import SUPERVISORD_CHATTER, built, console_line
from mailroom.ops.demo_mail import check_label


def test_a_json_line_is_shown_in_the_console_layout() -> None:
    line = (
        '{"timestamp": "2026-12-03T13:37:42.121935Z", "level": "info", '
        '"event": "health_listening", "host": "127.0.0.1", "port": 48111}'
    )
    assert console_line(line) == (
        "2026-12-03T13:37:42.121935Z [info     ] health_listening               "
        "host='127.0.0.1' port=48111"
    )
    assert console_line("config error: no token") == "config error: no token"
    assert console_line('{"not": "a log line"}') == '{"not": "a log line"}'


@pytest.mark.parametrize(
    ("line", "dropped"),
    [
        ("2026-12-03 13:27:59,343 INFO spawned: 'worker' with pid 12", True),
        (
            "2026-12-03 13:27:59,335 CRIT Supervisor is running as root.  Privileges were "
            "not dropped because no user is specified in the config file.",
            True,
        ),
        (
            "2026-12-03 13:27:59,343 CRIT Server 'unix_http_server' running without any "
            "HTTP authentication checking",
            True,
        ),
        ("2026-12-03 13:27:59,343 CRIT another critical line", False),
        ("2026-12-03 13:27:59,343 WARN exited: worker (terminated by SIGKILL)", False),
        ("2026-12-03 13:44:46,227 WARN received SIGTERM indicating exit request", True),
        ("2026-12-03 13:44:46,384 WARN stopped: worker (exit status 0)", True),
        ("2026-12-03 13:44:48,617 WARN stopped: fatal (terminated by SIGTERM)", True),
        ("2026-12-03 13:44:48,617 WARN stopped: worker (terminated by SIGKILL)", False),
        ("2026-12-03 13:44:48,617 WARN killing 'worker' (123) with SIGKILL", False),
        ("2026-12-03T13:37:42Z [info     ] worker_started", False),
    ],
)
def test_only_supervisords_chatter_is_dropped(line: str, dropped: bool) -> None:
    assert bool(SUPERVISORD_CHATTER.match(line)) is dropped


def test_an_unknown_label_names_all_seven() -> None:
    labels = [c.label for c in DEFAULT_CATEGORIES]
    assert len(labels) == 7
    with pytest.raises(MailroomError) as caught:
        check_label("@ToNowhere", labels)
    assert (
        str(caught.value) == f"'@ToNowhere' is not a triage label; use one of {', '.join(labels)}"
    )
    check_label("@ToFeed", labels)  # a real one passes


def test_the_build_counts_as_done_only_with_its_mark_and_binary(tmp_path: Path) -> None:
    assert not built(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "httpd").write_text("")
    assert not built(tmp_path)  # an interrupted build
    (tmp_path / ".built-ok").write_text("")
    assert built(tmp_path)
