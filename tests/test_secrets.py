"""Secret values are blanked wherever text leaves: logs, status files, errors, the CLI.

Unit tests of mailroom.redaction and the places that call it; the end-to-end proof
against a real server and a running service is tests/test_secrets_real.py.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from mailroom import redaction
from mailroom.cli import main
from mailroom.config import load_settings
from mailroom.errors import JmapMethodError, JmapRequestError, MailroomError, TransportError
from mailroom.logs import configure_logging
from mailroom.redaction import REDACTED, clip, remember, remember_basic, scrub
from mailroom.run.statefiles import ERROR_TEXT_LIMIT, error_summary, read_status, write_status

TOKEN = "tok-3f9a1c0e7b2d4c58a6e1"
PASSWORD = "pw-b7e2c9d41a0f"
ENV = {
    "HOME": "/home/test",
    "MAILROOM_JMAP_TOKEN": TOKEN,
    "MAILROOM_CARDDAV_USERNAME": "ann@example.com",
    "MAILROOM_CARDDAV_PASSWORD": PASSWORD,
}


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    redaction.forget_all()
    yield
    redaction.forget_all()
    structlog.reset_defaults()
    logging.getLogger().handlers = []


def test_scrub_blanks_every_spelling_of_a_remembered_value() -> None:
    remember('a b"c\\d\n')
    assert scrub('{"x": "a b\\"c\\\\d\\n"}') == f'{{"x": "{REDACTED}"}}'
    assert scrub("repr: 'a b\"c\\\\d\\n'") == f"repr: '{REDACTED}'"
    assert scrub("url: a%20b%22c%5Cd%0A") == f"url: {REDACTED}"
    assert scrub('trimmed a b"c\\d!') == f"trimmed {REDACTED}!"


def test_the_basic_auth_header_form_is_blanked_too() -> None:
    remember_basic("ann", "secret-pw")
    assert scrub("Authorization: Basic YW5uOnNlY3JldC1wdw==") == f"Authorization: Basic {REDACTED}"


def test_short_values_are_not_treated_as_secrets() -> None:
    remember("ab")
    assert scrub("a tab and a cab") == "a tab and a cab"


def test_load_settings_remembers_the_credentials() -> None:
    load_settings(ENV)
    assert scrub(f"sent {TOKEN} and {PASSWORD}") == f"sent {REDACTED} and {REDACTED}"


def test_a_refused_credential_is_remembered_before_it_is_refused() -> None:
    with pytest.raises(MailroomError) as caught:
        load_settings({**ENV, "MAILROOM_JMAP_TOKEN": TOKEN + "\n"})
    assert TOKEN not in str(caught.value)
    assert scrub(TOKEN) == REDACTED


def test_url_userinfo_is_remembered_and_refused() -> None:
    url = "https://ann:hunter2-pass@dav.example.com/"
    with pytest.raises(MailroomError) as caught:
        load_settings({**ENV, "MAILROOM_CARDDAV_URL": url})
    assert "hunter2-pass" not in str(caught.value)
    assert "MAILROOM_CARDDAV_URL holds a user name or password" in str(caught.value)
    assert "hunter2-pass" not in scrub(f"GET {url}")


def test_a_mailroom_error_never_shows_a_secret() -> None:
    load_settings(ENV)
    exc = TransportError(
        "JMAP", "https://h/s", f"LocalProtocolError: Illegal header Bearer {TOKEN}"
    )
    assert TOKEN not in str(exc)
    assert REDACTED in str(exc)


def test_server_text_in_an_error_is_clipped() -> None:
    huge = "x" * 10_000_000
    assert len(str(JmapMethodError("Email/set", "serverFail", huge))) < 400
    assert len(str(JmapRequestError(500, "urn:x", huge))) < 400


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_log_line_and_its_traceback_show_no_secret(fmt: str) -> None:
    load_settings(ENV)
    stream = io.StringIO()
    configure_logging("info", fmt, stream=stream)
    try:
        raise httpx.LocalProtocolError(f"Illegal header value b'Bearer {TOKEN} '")
    except httpx.LocalProtocolError:
        structlog.get_logger().exception("pass_failed", note=f"pw={PASSWORD}")
    logging.getLogger("httpx").warning("sent %s", TOKEN)
    text = stream.getvalue()
    assert TOKEN not in text
    assert PASSWORD not in text
    assert "LocalProtocolError" in text
    assert text.count(REDACTED) >= 3


def test_a_long_log_value_is_cut() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    structlog.get_logger().warning("server_said", text="y" * 100_000)
    line = json.loads(stream.getvalue())
    assert len(line["text"]) < 2100
    assert line["text"].endswith("(98000 more characters)")


def test_status_files_are_scrubbed_and_errors_summarised(tmp_path: Path) -> None:
    load_settings(ENV)
    exc = RuntimeError(f"boom with {TOKEN}\nand a header\n" + "z" * 5000)
    summary = error_summary(exc)
    assert summary.startswith("RuntimeError: boom with [redacted] and a header zzz")
    assert len(summary) <= ERROR_TEXT_LIMIT
    write_status(tmp_path / "w.json", {"last_error": summary, "raw": f"x{PASSWORD}x"})
    text = (tmp_path / "w.json").read_text()
    assert TOKEN not in text
    assert PASSWORD not in text
    assert (read_status(tmp_path / "w.json") or {})["raw"] == f"x{REDACTED}x"


def test_clip_flattens_and_cuts() -> None:
    assert clip("a\n  b\tc") == "a b c"
    assert clip("q" * 50, 10) == "q" * 9 + "…"


def test_the_cli_scrubs_whatever_a_command_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAILROOM_CARDDAV_URL", "http://127.0.0.1:9/dav/")

    def loud(settings: object) -> int:
        print(f"token {TOKEN}")
        raise MailroomError(f"failed with {PASSWORD}")

    monkeypatch.setattr("mailroom.cli.load_entry", lambda module, function: loud)
    assert main(["check"]) == 1
    out, err = capsys.readouterr()
    assert out == f"token {REDACTED}\n"
    assert err == f"mailroom check: failed with {REDACTED}\n"
