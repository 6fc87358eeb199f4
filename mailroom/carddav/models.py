"""Values parsed from CardDAV answers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Card:
    """One vCard resource: where it lives, its ETag, and its text as the server sent it."""

    href: str  # absolute path on the server, e.g. /dav/addressbooks/user/u/Default/x.vcf
    etag: str | None
    text: str
