"""The JMAP side against a hostile server (tests/faultserver.py): bounded, never a loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mailroom.config import load_settings
from mailroom.jmap.query import MAX_PAGES
from mailroom_dev.faultserver import TOKEN, EndlessPages, FaultServer


def mailbox_names(env: dict[str, str]) -> list[str]:
    """Every mailbox the default config needs, so the pass gets as far as its scan."""
    s = load_settings(env)
    names = [s.screener_mailbox, s.error_label, s.warning_label, "Inbox"]
    for c in s.categories:
        names += [c.label, c.destination_mailbox]
    return list(dict.fromkeys(names))


def test_poll_against_a_server_that_never_ends_a_page_sequence_ends_with_an_error(
    tmp_path: Path,
) -> None:
    with FaultServer() as server:
        env = {
            "MAILROOM_JMAP_SESSION_URL": server.session_url,
            "MAILROOM_JMAP_TOKEN": TOKEN,
            "MAILROOM_CARDDAV_URL": f"{server.base_url}/dav/",
            "MAILROOM_CARDDAV_USERNAME": "u",
            "MAILROOM_CARDDAV_PASSWORD": "pw",
            "MAILROOM_STATE_DIR": str(tmp_path),
        }
        api = EndlessPages(mailbox_names(env))
        server.api = api
        base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
        result = subprocess.run(
            [sys.executable, "-m", "mailroom", "poll"],
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert result.returncode == 1, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert f"answered {MAX_PAGES} full pages for Email/query" in line
    assert "never a last one" in line
    assert api.queries == MAX_PAGES  # it stopped at the cap, not later
