"""Build/parse pairs for each JMAP wire method, against exact JSON."""

from __future__ import annotations

import pytest

from mailroom.errors import JmapError, JmapMethodError, JmapSetError
from mailroom.jmap import methods
from mailroom.jmap.models import (
    Address,
    Email,
    EmailPatch,
    Mailbox,
    QueryPage,
    SetResult,
    WholeMailboxes,
)


def test_email_query_builds_a_sorted_page_request():
    inv = methods.email_query("u1", {"inMailbox": "mb1"}, position=40, limit=20)

    assert inv == (
        "Email/query",
        {
            "accountId": "u1",
            "filter": {"inMailbox": "mb1"},
            "sort": [{"property": "receivedAt", "isAscending": True}],
            "position": 40,
            "limit": 20,
        },
        "q",
    )


def test_parse_email_query_keeps_a_clamped_limit_and_optional_total():
    page = methods.parse_email_query(
        {
            "accountId": "u1",
            "queryState": "75:0",
            "canCalculateChanges": True,
            "position": 0,
            "limit": 256,
            "ids": ["Ma", "Mb"],
            "collapseThreads": False,
        }
    )

    assert page == QueryPage(
        ids=("Ma", "Mb"), position=0, limit=256, total=None, query_state="75:0"
    )


def test_parse_email_query_without_limit_or_state():
    page = methods.parse_email_query({"position": 3, "total": 9, "ids": []})

    assert page == QueryPage(ids=(), position=3, limit=None, total=9, query_state=None)


def test_parse_email_query_without_ids_is_malformed():
    with pytest.raises(JmapError, match="no 'ids'"):
        methods.parse_email_query({"position": 0})


def test_email_get_by_back_reference():
    ref = methods.result_ref("q", "Email/query", "/ids")
    inv = methods.email_get("u1", ref)

    assert inv == (
        "Email/get",
        {
            "accountId": "u1",
            "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
            "properties": ["from", "mailboxIds"],
        },
        "g",
    )


def test_email_get_by_ids_with_other_properties():
    inv = methods.email_get("u1", ("Ma", "Mb"), properties=("subject",), call_id="x")

    assert inv == (
        "Email/get",
        {"accountId": "u1", "ids": ["Ma", "Mb"], "properties": ["subject"]},
        "x",
    )


def test_parse_email_get_takes_the_first_sender_and_true_mailboxes():
    emails, state = methods.parse_email_get(
        {
            "accountId": "u1",
            "state": "75",
            "list": [
                {
                    "id": "Ma",
                    "from": [
                        {"name": "Alice Example", "email": "alice@example.com"},
                        {"name": None, "email": "other@example.com"},
                    ],
                    "mailboxIds": {"mb1": True, "mb2": True},
                },
                {"id": "Mb", "from": [{"name": "", "email": "bob@example.org"}], "mailboxIds": {}},
                {"id": "Mc", "from": None, "mailboxIds": {"mb1": True}},
            ],
            "notFound": [],
        }
    )

    assert state == "75"
    assert emails == [
        Email("Ma", Address("alice@example.com", "Alice Example"), frozenset({"mb1", "mb2"})),
        Email("Mb", Address("bob@example.org", None), frozenset()),
        Email("Mc", None, frozenset({"mb1"})),
    ]


def test_email_set_writes_typed_changes_as_patches_and_whole_sets():
    patch = EmailPatch(
        add=frozenset({"mb2"}),
        remove=frozenset({"mb1"}),
        set_keywords=frozenset({"$seen"}),
        unset_keywords=frozenset({"$flagged"}),
    )
    inv = methods.email_set("u1", {"Ma": patch, "Mb": WholeMailboxes(frozenset({"x", "a"}))})
    assert inv == (
        "Email/set",
        {
            "accountId": "u1",
            "update": {
                "Ma": {
                    "mailboxIds/mb2": True,
                    "mailboxIds/mb1": None,
                    "keywords/$seen": True,
                    "keywords/$flagged": None,
                },
                "Mb": {"mailboxIds": {"a": True, "x": True}},
            },
        },
        "s",
    )


def test_a_patch_then_another_is_one_patch_where_the_later_wins():
    first = EmailPatch(add=frozenset({"F", "W"}), remove=frozenset({"S"}))
    later = EmailPatch(add=frozenset({"S"}), remove=frozenset({"W", "L"}))
    assert first.then(later) == EmailPatch(add=frozenset({"F", "S"}), remove=frozenset({"W", "L"}))
    assert not EmailPatch()
    assert first.applied({"S", "X"}) == WholeMailboxes(frozenset({"F", "W", "X"}))


def test_email_set_builds_patches():
    patch = EmailPatch(add=frozenset({"mb2"}), remove=frozenset({"mb1"}))
    inv = methods.email_set("u1", {"Ma": patch})

    assert inv == (
        "Email/set",
        {"accountId": "u1", "update": {"Ma": {"mailboxIds/mb2": True, "mailboxIds/mb1": None}}},
        "s",
    )


def test_parse_set_reads_states_and_treats_null_maps_as_empty():
    result = methods.parse_set(
        "Email/set",
        {
            "oldState": "75",
            "newState": "77",
            "created": None,
            "updated": {"Ma": None},
            "destroyed": None,
            "notCreated": None,
            "notUpdated": None,
            "notDestroyed": None,
            "accountId": "u1",
        },
    )

    assert result == SetResult(old_state="75", new_state="77", created={})


def test_parse_set_maps_creation_ids_to_server_ids():
    result = methods.parse_set(
        "Mailbox/set",
        {
            "oldState": "22",
            "newState": "68",
            "created": {"c": {"id": "pumz2", "isSubscribed": False, "showAsLabel": True}},
            "notCreated": {},
        },
    )

    assert result == SetResult(old_state="22", new_state="68", created={"c": "pumz2"})


def test_parse_set_raises_on_any_not_updated_entry():
    with pytest.raises(JmapSetError) as info:
        methods.parse_set(
            "Email/set",
            {
                "oldState": "1",
                "newState": "2",
                "updated": {"Ma": None},
                "notUpdated": {"Mzz": {"type": "notFound"}},
            },
        )

    assert info.value.method == "Email/set"
    assert info.value.failures == {"Mzz": {"type": "notFound"}}


def test_parse_set_raises_on_not_created():
    with pytest.raises(JmapSetError, match="invalidProperties"):
        methods.parse_set(
            "Mailbox/set",
            {"notCreated": {"b": {"type": "invalidProperties", "properties": ["name"]}}},
        )


def test_email_import_builds_entries():
    inv = methods.email_import(
        "u1", {"e": {"blobId": "G1", "mailboxIds": {"mb1": True}, "keywords": {"$seen": True}}}
    )

    assert inv == (
        "Email/import",
        {
            "accountId": "u1",
            "emails": {
                "e": {"blobId": "G1", "mailboxIds": {"mb1": True}, "keywords": {"$seen": True}}
            },
        },
        "i",
    )


def test_mailbox_get_all_asks_for_null_ids():
    assert methods.mailbox_get("u1") == (
        "Mailbox/get",
        {"accountId": "u1", "ids": None, "properties": ["id", "name", "parentId", "role"]},
        "m",
    )


def test_mailbox_get_some():
    assert methods.mailbox_get("u1", ["mb1"], call_id="z")[1]["ids"] == ["mb1"]


def test_parse_mailbox_get():
    boxes, state = methods.parse_mailbox_get(
        {
            "state": "22",
            "list": [
                {"id": "i", "name": "Inbox", "parentId": None, "role": "inbox"},
                {"id": "s", "name": "Screener", "parentId": "i", "role": None},
            ],
        }
    )

    assert state == "22"
    assert boxes == [Mailbox("i", "Inbox", None, "inbox"), Mailbox("s", "Screener", "i", None)]


def test_mailbox_set_create():
    inv = methods.mailbox_set_create("u1", {"c": {"name": "Screener", "parentId": None}})

    assert inv == (
        "Mailbox/set",
        {"accountId": "u1", "create": {"c": {"name": "Screener", "parentId": None}}},
        "c",
    )


def test_raise_for_invocation_returns_the_arguments():
    args = {"state": "1", "list": []}

    assert methods.raise_for_invocation(("Mailbox/get", args, "m"), "Mailbox/get") is args


def test_raise_for_invocation_turns_an_error_into_a_method_error():
    inv = ("error", {"type": "invalidArguments", "arguments": ["filter/inMailbox"]}, "q")

    with pytest.raises(JmapMethodError) as info:
        methods.raise_for_invocation(inv, "Email/query")

    assert info.value.method == "Email/query"
    assert info.value.error_type == "invalidArguments"


def test_raise_for_invocation_refuses_an_answer_to_another_method():
    with pytest.raises(JmapError, match="expected a Email/get answer"):
        methods.raise_for_invocation(("Email/query", {}, "g"), "Email/get")


def test_the_mailbox_guard_and_an_email_set_that_runs_only_if_it_passed():
    guard = methods.mailbox_set_guard("acct", "41")
    ref = methods.result_ref("ms", "Mailbox/set", "/accountId")
    update = methods.email_set(ref, {"M1": EmailPatch(add=frozenset({"F"}))})
    assert guard == ("Mailbox/set", {"accountId": "acct", "ifInState": "41"}, "ms")
    assert update == (
        "Email/set",
        {
            "#accountId": {"resultOf": "ms", "name": "Mailbox/set", "path": "/accountId"},
            "update": {"M1": {"mailboxIds/F": True}},
        },
        "s",
    )
