"""`mailroom poll`: one triage pass now, then exit (the composition root of a pass)."""

from __future__ import annotations

from mailroom.clients import open_clients
from mailroom.config import Settings
from mailroom.paths import ensure_state_dir
from mailroom.triage import strikes
from mailroom.triage.engine import Triager


def main(settings: Settings) -> int:
    """One pass; exit 0 when every labelled sender was handled."""
    ensure_state_dir(settings.state_dir)
    kept = settings.state_dir / strikes.STRIKES_FILE
    with open_clients(settings) as (jmap, carddav):
        report = Triager(settings, jmap, carddav, strikes_file=kept).run_pass("manual")
    return 0 if report.ok else 1
