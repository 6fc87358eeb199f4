"""Shared fixtures: hermetic environment, the real Cyrus server, throwaway accounts.

The Cyrus server is started once per session, before the first test runs (so a
one-time build does not count against a test's timeout), and only when a selected
test uses it. It is stopped at the end only if this session started it and
MAILROOM_TEST_KEEP_CYRUS is unset; set that variable during development so the
shared server stays up between runs.

Under pytest-xdist (``make test`` runs ``-n``) each worker process is a session of
its own and starts a Cyrus of its own (``cyrus_settings(..., worker=)``):
no two workers share a server, an account or a port. The one-time build is shared
(start.sh takes a lock for it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mailroom_dev.realserver import (
    Account,
    CyrusServer,
    cyrus_settings,
    new_account,
    start_cyrus,
    stop_cyrus,
)

_SERVER = pytest.StashKey[CyrusServer | BaseException]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start Cyrus before the first test when a selected test needs it."""
    if any("cyrus" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_once(session.config)


def _start_once(config: pytest.Config) -> CyrusServer | BaseException:
    found = config.stash.get(_SERVER, None)
    if found is not None:
        return found
    try:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        found = start_cyrus(cyrus_settings(os.environ, worker=worker))
    except Exception as exc:  # reported by the `cyrus` fixture, test by test
        found = exc
    config.stash[_SERVER] = found
    if isinstance(found, CyrusServer) and found.started_here and not _keep():
        server = found
        config.add_cleanup(lambda: stop_cyrus(server))
    return found


def _keep() -> bool:
    return bool(os.environ.get("MAILROOM_TEST_KEEP_CYRUS"))


@pytest.fixture(scope="session")
def cyrus(pytestconfig: pytest.Config) -> CyrusServer:
    """The real Cyrus server (JMAP + CardDAV, push-capable build) on 127.0.0.1."""
    found = _start_once(pytestconfig)
    if isinstance(found, BaseException):
        pytest.fail(f"the Cyrus test server did not start: {found}", pytrace=False)
    return found


@pytest.fixture
def account(cyrus: CyrusServer) -> Iterator[Account]:
    """A brand-new Cyrus user for this test only."""
    acct = new_account(cyrus)
    try:
        yield acct
    finally:
        acct.close()


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MAILROOM_* variable from the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("MAILROOM_"):
            monkeypatch.delenv(name)
