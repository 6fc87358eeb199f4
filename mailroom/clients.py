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
    settings.require_credentials()
    assert settings.jmap_token is not None
    assert settings.carddav_username is not None
    assert settings.carddav_password is not None
    jmap = JmapClient(settings.jmap_session_url, settings.jmap_token.get_secret_value())
    carddav = CardDavClient(
        settings.carddav_url,
        settings.carddav_username,
        settings.carddav_password.get_secret_value(),
    )
    try:
        yield jmap, carddav
    finally:
        jmap.close()
        carddav.close()
