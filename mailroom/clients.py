"""Open the JMAP and CardDAV clients from settings, and close them after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings
from mailroom.jmap.client import JmapClient


@contextmanager
def open_clients(settings: Settings) -> Iterator[tuple[JmapClient, CardDavClient]]:
    """Both clients, built from checked credentials; closed on the way out."""
    creds = settings.credentials()
    jmap = JmapClient(settings.jmap_session_url, creds.jmap_token)
    carddav = CardDavClient(settings.carddav_url, creds.carddav_username, creds.carddav_password)
    try:
        yield jmap, carddav
    finally:
        jmap.close()
        carddav.close()
