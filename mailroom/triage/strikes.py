"""Parking strikes kept in the state dir, so that neither a worker restart nor a run of
`mailroom poll` (a new process each time) starts every sender's count over.

The file is ``strikes.json``: ``{"strikes": {"address": failed passes in a row}}``,
written atomically after a pass that changed a count. A file that is missing, torn,
too large or not of this shape reads as no strikes (with one warning): a count lost
costs at most ``PARK_AFTER`` more passes, never mail. At most ``STRIKES_KEPT``
senders are kept (the highest counts), so the file stays small whatever the server does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from mailroom.errors import ConfigError
from mailroom.paths import read_small_file, write_atomic
from mailroom.statenames import STRIKES_FILE as STRIKES_FILE  # its importers' name
from mailroom.triage.parking import Strikes
from mailroom.triage.sender import SenderId

log = structlog.get_logger("mailroom.triage")

STRIKES_KEPT = 1000
STRIKES_READ_LIMIT = 256 * 1024  # 1,000 addresses of up to 255 characters


def strikes_from_json(doc: Any) -> Strikes | None:
    """The strikes in a parsed document; None when it is not of the file's shape (pure)."""
    counts = doc.get("strikes") if isinstance(doc, Mapping) else None
    if not isinstance(counts, Mapping):
        return None
    kept: dict[SenderId, int] = {}
    for address, count in counts.items():
        sender = SenderId.of(address) if isinstance(address, str) else None
        if sender is None or not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return None
        kept[sender] = count
    return Strikes(kept)


def strikes_json(strikes: Strikes) -> str:
    """The file's text: the ``STRIKES_KEPT`` highest counts, sorted (pure)."""
    ranked = sorted(strikes.counts.items(), key=lambda item: (-item[1], item[0]))
    counts = {str(sender): n for sender, n in sorted(ranked[:STRIKES_KEPT])}
    return json.dumps({"strikes": counts}, indent=2) + "\n"


def load(path: Path) -> Strikes:
    """The strikes in ``path``; none (and one warning) if it cannot be read as such."""
    try:
        text = read_small_file(path, STRIKES_READ_LIMIT, what="strikes file")
        found = strikes_from_json(json.loads(text))
    except FileNotFoundError:
        return Strikes()
    except (ConfigError, OSError, ValueError):
        found = None
    if found is None:
        log.warning("strikes_file_unreadable", path=str(path), action="counting from zero")
        return Strikes()
    return found


def save(path: Path, strikes: Strikes) -> None:
    """Write ``strikes`` to ``path`` atomically; a failure is logged, not raised."""
    try:
        write_atomic(path, strikes_json(strikes))
    except OSError as exc:
        log.warning("strikes_file_unwritable", path=str(path), error=exc.strerror)
