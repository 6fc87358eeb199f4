"""Who sent an email: one normalised address, and the one exact-sender match.

The server's ``from`` search matches substrings (``bob@x.com`` finds
``notbob@x.com``), so every caller that searches by sender keeps only the mail this
value says is really from the sender.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.jmap.models import Email


@dataclass(frozen=True, slots=True, order=True)
class SenderId:
    """A sender's address, trimmed and lower-cased: equal values are the same sender."""

    address: str

    @classmethod
    def of(cls, raw: str) -> SenderId | None:
        """The sender for an address as written anywhere; None when it is blank."""
        address = raw.strip().lower()
        return cls(address) if address else None

    @classmethod
    def of_email(cls, email: Email) -> SenderId | None:
        """Who sent ``email`` (its first ``from`` address); None when nobody."""
        return cls.of(email.sender.email) if email.sender is not None else None

    def sent(self, email: Email) -> bool:
        """Exact (case-insensitive) match of ``email``'s sender with this one."""
        return SenderId.of_email(email) == self

    def __str__(self) -> str:
        return self.address
