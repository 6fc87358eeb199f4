"""mailroom.logs: JSON off a terminal, pretty on one, levels, snake_case, redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog

from mailroom.errors import ConfigError
from mailroom.logs import REDACTED, configure_logging, redact


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_off_a_tty_each_event_is_one_json_line() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    structlog.get_logger().info("poll_completed", trigger="push", emails_moved=3)
    (line,) = json_lines(stream)
    assert line["event"] == "poll_completed"
    assert line["level"] == "info"
    assert line["trigger"] == "push"
    assert line["emails_moved"] == 3
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0)


def test_on_a_tty_the_output_is_pretty_not_json() -> None:
    stream = FakeTty()
    configure_logging("info", stream=stream)
    structlog.get_logger().info("poll_completed", trigger="push")
    text = stream.getvalue()
    assert "poll_completed" in text
    assert "push" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_explicit_format_beats_the_tty_guess() -> None:
    tty = FakeTty()
    configure_logging("info", "json", stream=tty)
    structlog.get_logger().info("started")
    assert json_lines(tty)[0]["event"] == "started"
    plain = io.StringIO()
    configure_logging("info", "console", stream=plain)
    structlog.get_logger().info("started")
    assert not plain.getvalue().startswith("{")


def test_levels_below_the_configured_one_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", stream=stream)
    log = structlog.get_logger()
    log.debug("debug_event")
    log.info("info_event")
    log.warning("warning_event")
    log.error("error_event")
    assert [line["event"] for line in json_lines(stream)] == ["warning_event", "error_event"]


def test_event_names_are_snake_case_and_the_text_is_kept() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    structlog.get_logger().info("Poll Completed!")
    (line,) = json_lines(stream)
    assert line["event"] == "poll_completed"
    assert line["message"] == "Poll Completed!"


def test_secret_keys_are_redacted_at_any_depth() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    structlog.get_logger().info(
        "request_sent",
        token="t0k3n",
        jmap_token="t0k3n",
        carddav_password="pa55",
        headers={"Authorization": "Bearer t0k3n", "Accept": "text/event-stream"},
        items=[{"client_secret": "s3cr3t", "name": "ok"}],
        url="http://127.0.0.1/jmap/",
    )
    (line,) = json_lines(stream)
    assert "t0k3n" not in stream.getvalue()
    assert "pa55" not in stream.getvalue()
    assert "s3cr3t" not in stream.getvalue()
    assert line["token"] == line["jmap_token"] == line["carddav_password"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "text/event-stream"}
    assert line["items"] == [{"client_secret": REDACTED, "name": "ok"}]
    assert line["url"] == "http://127.0.0.1/jmap/"


def test_credential_looking_values_are_redacted_whatever_their_key() -> None:
    assert redact({"note": "Bearer abc.def", "basic": "Basic dXNlcjpwYXNz", "n": 1}) == {
        "note": REDACTED,
        "basic": REDACTED,
        "n": 1,
    }
    assert redact(["bearer x", "a bearer of news"]) == [REDACTED, "a bearer of news"]


def test_redaction_also_covers_console_output() -> None:
    stream = FakeTty()
    configure_logging("info", stream=stream)
    structlog.get_logger().info("login", password="hunter2")
    assert "hunter2" not in stream.getvalue()
    assert REDACTED in stream.getvalue()


def test_exceptions_are_logged_as_text_in_json() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger().exception("pass_failed")
    (line,) = json_lines(stream)
    assert line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]


def test_library_logging_is_rendered_alike_from_warning_up() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    lib = logging.getLogger("somelibrary")
    lib.info("chatty %s", "detail")
    lib.warning("retrying %s", "soon")
    (line,) = json_lines(stream)
    assert line["logger"] == "somelibrary"
    assert line["level"] == "warning"
    assert line["message"] == "retrying soon"


def test_an_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="log_level"):
        configure_logging("loud")


class RecordingStream(io.StringIO):
    """Remembers each write() call, as supervisord would receive them."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_each_log_line_is_written_whole_in_one_call() -> None:
    stream = RecordingStream()
    configure_logging("info", "json", stream=stream)
    structlog.get_logger().info("first_event", n=1)
    structlog.get_logger().info("second_event", n=2)
    written = [w for w in stream.writes if w]
    assert len(written) == 2
    assert all(w.endswith("\n") and w.count("\n") == 1 for w in written)
