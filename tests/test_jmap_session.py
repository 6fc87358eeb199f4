"""Parsing the JMAP session resource: Cyrus's relative URLs and Fastmail's absolute ones."""

from __future__ import annotations

import dataclasses

import pytest

from mailroom.errors import JmapError
from mailroom.jmap.models import Session
from mailroom.jmap.session import expand_event_source_url, expand_upload_url, parse_session

CYRUS_SESSION = {
    "username": "test",
    "apiUrl": "/jmap/",
    "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
    "uploadUrl": "/jmap/upload/{accountId}/",
    "eventSourceUrl": "/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
    "state": "0",
    "capabilities": {
        "urn:ietf:params:jmap:core": {
            "maxSizeUpload": 1073741824,
            "maxCallsInRequest": 50,
            "maxObjectsInGet": 4096,
            "maxObjectsInSet": 4096,
        },
        "urn:ietf:params:jmap:mail": {},
    },
    "accounts": {"test": {"name": "test", "isPrimary": True}},
    "primaryAccounts": {
        "urn:ietf:params:jmap:mail": "test",
        "urn:ietf:params:jmap:submission": "test",
    },
}

FASTMAIL_SESSION = {
    "apiUrl": "https://api.fastmail.com/jmap/api/",
    "uploadUrl": "https://api.fastmail.com/jmap/upload/{accountId}/",
    "eventSourceUrl": "https://api.fastmail.com/jmap/event/",
    "capabilities": {"urn:ietf:params:jmap:core": {"maxObjectsInGet": 4096}},
    "primaryAccounts": {"urn:ietf:params:jmap:mail": "u1234abcd"},
}


def test_cyrus_relative_urls_are_resolved_against_the_session_url():
    session = parse_session(CYRUS_SESSION, "http://127.0.0.1:8008/jmap")

    assert session == Session(
        session_url="http://127.0.0.1:8008/jmap",
        api_url="http://127.0.0.1:8008/jmap/",
        event_source_url=(
            "http://127.0.0.1:8008/jmap/eventsource/"
            "?types={types}&closeafter={closeafter}&ping={ping}"
        ),
        upload_url="http://127.0.0.1:8008/jmap/upload/{accountId}/",
        account_id="test",
        max_objects_in_get=4096,
        max_objects_in_set=4096,
        max_calls_in_request=50,
        capabilities=frozenset({"urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"}),
        download_url="http://127.0.0.1:8008/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
        username="test",
    )


def test_fastmail_absolute_urls_are_kept_and_missing_limits_fall_to_rfc_floors():
    session = parse_session(FASTMAIL_SESSION, "https://api.fastmail.com/jmap/session")

    assert session.api_url == "https://api.fastmail.com/jmap/api/"
    assert session.event_source_url == "https://api.fastmail.com/jmap/event/"
    assert session.account_id == "u1234abcd"
    assert session.max_objects_in_get == 4096
    assert (session.max_objects_in_set, session.max_calls_in_request) == (500, 16)


def test_no_core_capability_gives_the_rfc_floors():
    data = {**FASTMAIL_SESSION, "capabilities": {}}

    session = parse_session(data, "https://api.fastmail.com/jmap/session")

    limits = (session.max_objects_in_get, session.max_objects_in_set, session.max_calls_in_request)
    assert limits == (500, 500, 16)


def test_a_session_without_event_source_or_upload_urls_has_none():
    data = {"apiUrl": "/jmap/", "primaryAccounts": {"urn:ietf:params:jmap:mail": "a"}}

    session = parse_session(data, "http://h/jmap/")

    assert (session.event_source_url, session.upload_url) == (None, None)
    assert expand_event_source_url(session) is None
    assert expand_upload_url(session) is None


def test_a_session_without_a_mail_account_says_to_check_the_token():
    data = {**CYRUS_SESSION, "primaryAccounts": {"urn:ietf:params:jmap:submission": "test"}}

    with pytest.raises(JmapError, match=r"no mail account.*Mail access"):
        parse_session(data, "http://127.0.0.1:8008/jmap/")


def test_a_document_without_api_url_is_not_a_session():
    with pytest.raises(JmapError, match="no apiUrl"):
        parse_session({"primaryAccounts": {}}, "http://127.0.0.1:8008/jmap/")


def test_cyrus_event_source_template_is_expanded():
    session = parse_session(CYRUS_SESSION, "http://127.0.0.1:8008/jmap/")

    url = expand_event_source_url(session)

    assert url == (
        "http://127.0.0.1:8008/jmap/eventsource/?types=Email,Mailbox&closeafter=no&ping=30"
    )


def test_template_expansion_takes_other_values():
    session = parse_session(CYRUS_SESSION, "http://127.0.0.1:8008/jmap/")

    url = expand_event_source_url(session, types="Email", closeafter="state", ping=5)

    assert url == "http://127.0.0.1:8008/jmap/eventsource/?types=Email&closeafter=state&ping=5"


def test_fastmail_plain_event_source_url_gets_the_query_appended():
    session = parse_session(FASTMAIL_SESSION, "https://api.fastmail.com/jmap/session")

    url = expand_event_source_url(session)

    assert url == "https://api.fastmail.com/jmap/event/?types=Email,Mailbox&closeafter=no&ping=30"


def test_a_plain_url_with_a_query_gets_the_parameters_after_an_ampersand():
    session = parse_session(FASTMAIL_SESSION, "https://api.fastmail.com/jmap/session")
    session = dataclasses.replace(session, event_source_url="https://e.example/ev?x=1")

    url = expand_event_source_url(session, ping=0)

    assert url == "https://e.example/ev?x=1&types=Email,Mailbox&closeafter=no&ping=0"


def test_upload_url_names_the_account():
    session = parse_session(CYRUS_SESSION, "http://127.0.0.1:8008/jmap/")

    assert expand_upload_url(session) == "http://127.0.0.1:8008/jmap/upload/test/"
