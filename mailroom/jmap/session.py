"""The JMAP session resource (RFC 8620 §2), parsed into a ``Session``.

Pure: ``JmapClient`` fetches the document; this module only reads it. Cyrus gives
relative URLs (``/jmap/``), Fastmail absolute ones; both come out absolute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urljoin

from mailroom.errors import JmapError
from mailroom.jmap.models import Session

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"

# RFC 8620 §2: the smallest limits a server may advertise.
FLOOR_OBJECTS_IN_GET = 500
FLOOR_OBJECTS_IN_SET = 500
FLOOR_CALLS_IN_REQUEST = 16

_TEMPLATE_VARS = ("{types}", "{closeafter}", "{ping}")


def parse_session(data: Mapping[str, Any], session_url: str) -> Session:
    """Read a session document fetched from ``session_url`` (the URL after redirects)."""
    api_url = data.get("apiUrl")
    if not isinstance(api_url, str) or not api_url:
        raise JmapError(
            f"the JMAP session at {session_url} has no apiUrl; "
            "check MAILROOM_JMAP_SESSION_URL points at a JMAP session resource"
        )
    account_id = (data.get("primaryAccounts") or {}).get(MAIL)
    if not account_id:
        raise JmapError(
            f"the JMAP session at {session_url} names no mail account; "
            "check that the token has Mail access"
        )
    core = (data.get("capabilities") or {}).get(CORE) or {}
    return Session(
        session_url=session_url,
        api_url=urljoin(session_url, api_url),
        event_source_url=_absolute(session_url, data.get("eventSourceUrl")),
        upload_url=_absolute(session_url, data.get("uploadUrl")),
        account_id=str(account_id),
        max_objects_in_get=_limit(core, "maxObjectsInGet", FLOOR_OBJECTS_IN_GET),
        max_objects_in_set=_limit(core, "maxObjectsInSet", FLOOR_OBJECTS_IN_SET),
        max_calls_in_request=_limit(core, "maxCallsInRequest", FLOOR_CALLS_IN_REQUEST),
        capabilities=frozenset(data.get("capabilities") or {}),
        download_url=_absolute(session_url, data.get("downloadUrl")),
        username=str(data.get("username") or ""),
    )


def _absolute(session_url: str, url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    return urljoin(session_url, url)


def _limit(core: Mapping[str, Any], key: str, floor: int) -> int:
    value = core.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return floor


def expand_event_source_url(
    session: Session,
    *,
    types: str = "Email,Mailbox",
    closeafter: str = "no",
    ping: int = 30,
) -> str | None:
    """The EventSource URL to connect to, or None when the server offers none.

    Cyrus gives a URI template (``...?types={types}&closeafter={closeafter}&ping={ping}``),
    Fastmail a plain URL to which the query is appended.
    """
    url = session.event_source_url
    if url is None:
        return None
    if any(var in url for var in _TEMPLATE_VARS):
        return (
            url.replace("{types}", types)
            .replace("{closeafter}", closeafter)
            .replace("{ping}", str(ping))
        )
    query = urlencode({"types": types, "closeafter": closeafter, "ping": ping}, safe=",")
    return f"{url}{'&' if '?' in url else '?'}{query}"


def expand_upload_url(session: Session) -> str | None:
    """The upload URL for the session's account (template variable ``{accountId}``)."""
    if session.upload_url is None:
        return None
    return session.upload_url.replace("{accountId}", quote(session.account_id, safe=""))


def expand_download_url(session: Session, blob_id: str, *, type: str, name: str) -> str | None:
    """The download URL of one blob (RFC 8620 §6.2 template variables)."""
    if session.download_url is None:
        return None
    values = {"accountId": session.account_id, "blobId": blob_id, "type": type, "name": name}
    url = session.download_url
    for key, value in values.items():
        url = url.replace("{" + key + "}", quote(value, safe=""))
    return url
