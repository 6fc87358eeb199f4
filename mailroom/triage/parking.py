"""Parking a sender the server keeps refusing: after ``PARK_AFTER`` passes in a row
that failed for it, it gets the error label (with the reason in the log and the
pass report) instead of being retried for ever. Removing the error label retries it.

Pure: ``Strikes`` counts failed passes per sender and says who to park.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mailroom.triage.sender import SenderId

PARK_AFTER = 3
REASON_CHARS = 300  # a server's error text can be huge; the user needs its start


@dataclass(frozen=True, slots=True)
class Parked:
    sender: SenderId
    passes: int  # failed passes in a row
    reason: str  # the last failure, shortened


@dataclass(frozen=True, slots=True)
class Strikes:
    counts: Mapping[SenderId, int] = field(default_factory=dict)

    def after_pass(
        self, failed: Mapping[SenderId, str], done: Iterable[SenderId]
    ) -> tuple[Strikes, tuple[Parked, ...]]:
        """The counts after a pass, and the senders that reached ``PARK_AFTER``.

        A sender that failed gets one more strike; one that was triaged starts over;
        one the pass did not see keeps its count. Parked senders are forgotten.
        """
        counts = dict(self.counts)
        for sender in done:
            counts.pop(sender, None)
        parked = []
        for sender, reason in sorted(failed.items()):
            counts[sender] = counts.get(sender, 0) + 1
            if counts[sender] >= PARK_AFTER:
                parked.append(Parked(sender, counts.pop(sender), shorten(reason)))
        return Strikes(counts), tuple(parked)

    def unpark(self, parked: Iterable[Parked]) -> Strikes:
        """Put back the strikes of senders whose parking write failed (next pass retries)."""
        counts = dict(self.counts)
        for p in parked:
            counts[p.sender] = p.passes
        return Strikes(counts)


def shorten(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"
