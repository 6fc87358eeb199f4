"""JMAP Sieve build/parse pairs (exact JSON) and the install/check/reset decisions (pure)."""

from __future__ import annotations

import json

import httpx
import pytest

from mailroom.errors import ConfigError, JmapError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.models import Session
from mailroom.jmap.session import expand_download_url, parse_session
from mailroom.jmap.sieve import (
    CYRUS_SIEVE,
    RFC_SIEVE,
    SieveScript,
    SieveScripts,
    parse_sieve_script_get,
    parse_sieve_script_validate,
    sieve_capability,
    sieve_script_get,
    sieve_script_set,
    sieve_script_validate,
)
from mailroom.ops.rules import plan_lines
from mailroom.routing.install import Installed, is_ours, plan_install, plan_restore, verdict
from mailroom.routing.sieve import (
    RULES_KIND,
    RULES_NAME,
    WRAPPER_KIND,
    WRAPPER_NAME,
    seal,
    unseal,
    wrapper_script,
)

RULES = 'require ["fileinto"];\nfileinto "Screener";\n'
USERS = SieveScript("u", "my rules", "Gu", is_active=True)


def session(*capabilities: str) -> Session:
    return Session("s", "a", None, None, "acc", 500, 500, 16, frozenset(capabilities))


def test_the_rfc_capability_is_preferred_over_cyrus_and_none_means_none() -> None:
    assert sieve_capability(session(CYRUS_SIEVE, RFC_SIEVE)) == RFC_SIEVE
    assert sieve_capability(session(CYRUS_SIEVE)) == CYRUS_SIEVE
    assert sieve_capability(session("urn:ietf:params:jmap:mail")) is None


def test_get_validate_and_set_are_built_as_the_rfc_says() -> None:
    assert sieve_script_get("acc") == ("SieveScript/get", {"accountId": "acc", "ids": None}, "sg")
    assert sieve_script_validate("acc", "G1") == (
        "SieveScript/validate",
        {"accountId": "acc", "blobId": "G1"},
        "sv",
    )
    assert sieve_script_set(
        "acc",
        create={"w": {"name": "mailroom", "blobId": "G2"}},
        update={"id1": {"blobId": "G3"}},
        activate="#w",
    ) == (
        "SieveScript/set",
        {
            "accountId": "acc",
            "create": {"w": {"name": "mailroom", "blobId": "G2"}},
            "update": {"id1": {"blobId": "G3"}},
            "onSuccessActivateScript": "#w",
        },
        "ss",
    )
    assert sieve_script_set("acc", destroy=["a", "b"]) == (
        "SieveScript/set",
        {"accountId": "acc", "destroy": ["a", "b"]},
        "ss",
    )


def test_deactivation_speaks_the_dialect_of_the_capability() -> None:
    rfc = sieve_script_set("acc", deactivate=True)[1]
    cyrus = sieve_script_set("acc", deactivate=True, capability=CYRUS_SIEVE)[1]
    assert rfc == {"accountId": "acc", "onSuccessDeactivateScript": True}
    assert cyrus == {"accountId": "acc", "onSuccessActivateScript": None}


def test_get_and_validate_answers_are_parsed() -> None:
    answer = {"list": [{"id": "1", "name": "x", "blobId": "G", "isActive": True}]}
    assert parse_sieve_script_get(answer) == [SieveScript("1", "x", "G", True)]
    assert parse_sieve_script_validate({"error": None}) is None
    bad = {"error": {"type": "invalidScript", "description": "line 1: syntax error\r\n"}}
    assert parse_sieve_script_validate(bad) == "line 1: syntax error"
    with pytest.raises(JmapError, match="no 'list'"):
        parse_sieve_script_get({})


def installed(*scripts: SieveScript, rules: str | None = None, wrapper: str | None = None):
    return Installed(tuple(scripts), rules, wrapper)


def test_a_first_install_wraps_the_users_active_script() -> None:
    plan = plan_install(installed(USERS), RULES)
    assert (plan.rules, plan.wrapper, plan.wraps, plan.activate) == (
        "create",
        "create",
        "my rules",
        True,
    )
    assert plan.wrapper_text == wrapper_script("my rules")


def test_an_install_that_is_current_does_nothing_and_keeps_what_it_wraps() -> None:
    scripts = (
        SieveScript("u", "my rules", "Gu", False),
        SieveScript("r", RULES_NAME, "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", True),
    )
    current = installed(*scripts, rules=RULES, wrapper=wrapper_script("my rules"))
    plan = plan_install(current, RULES)
    assert plan.nothing_to_do
    assert plan.wraps == "my rules"
    assert verdict(current, RULES) == "current"
    assert verdict(current, RULES + "#changed\n") == "stale"
    assert plan_install(current, RULES + "#changed\n").rules == "update"


def test_a_user_who_activated_another_script_after_setup_gets_it_wrapped() -> None:
    scripts = (
        SieveScript("v", "vacation", "Gv", True),
        SieveScript("r", RULES_NAME, "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", False),
    )
    state = installed(*scripts, rules=RULES, wrapper=wrapper_script("my rules"))
    plan = plan_install(state, RULES)
    assert (plan.wrapper, plan.wraps, plan.activate) == ("update", "vacation", True)
    assert verdict(state, RULES) == "inactive"


def test_a_users_own_script_called_mailroom_is_refused() -> None:
    theirs = SieveScript("m", WRAPPER_NAME, "Gm", True)
    with pytest.raises(ConfigError, match="rename yours"):
        plan_install(installed(theirs, wrapper="keep;\n"), RULES)
    assert plan_restore(installed(theirs, wrapper="keep;\n")).empty


def test_restore_makes_the_wrapped_script_active_then_deletes_mailroom_scripts() -> None:
    scripts = (
        SieveScript("u", "my rules", "Gu", False),
        SieveScript("r", RULES_NAME, "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", True),
    )
    plan = plan_restore(installed(*scripts, rules=RULES, wrapper=wrapper_script("my rules")))
    assert (plan.switch, plan.restore, plan.missing) == (True, "my rules", None)
    assert [s.name for s in plan.destroy] == [WRAPPER_NAME, RULES_NAME]


def test_restore_after_an_interruption_only_deletes() -> None:
    scripts = (
        SieveScript("u", "my rules", "Gu", True),
        SieveScript("r", RULES_NAME, "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", False),
    )
    plan = plan_restore(installed(*scripts, rules=RULES, wrapper=wrapper_script("my rules")))
    assert (plan.switch, plan.restore) == (False, None)
    assert len(plan.destroy) == 2
    assert plan_restore(installed(scripts[0])).empty


def test_restore_of_a_wrapped_script_the_user_deleted_leaves_none_active() -> None:
    scripts = (SieveScript("w", WRAPPER_NAME, "Gw", True),)
    plan = plan_restore(installed(*scripts, wrapper=wrapper_script("gone")))
    assert (plan.switch, plan.restore, plan.missing) == (True, None, "gone")


def test_the_download_url_template_is_filled_and_quoted() -> None:
    s = parse_session(
        {
            "apiUrl": "/jmap/",
            "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
            "primaryAccounts": {"urn:ietf:params:jmap:mail": "acc"},
            "capabilities": {RFC_SIEVE: {}},
        },
        "http://127.0.0.1:1/jmap/",
    )
    assert s.capabilities == frozenset({RFC_SIEVE})
    url = expand_download_url(s, "G1", type="application/sieve", name="my rules.sieve")
    assert (
        url == "http://127.0.0.1:1/jmap/download/acc/G1/my%20rules.sieve?accept=application%2Fsieve"
    )


def test_the_shell_sends_the_sieve_capability_and_reads_scripts_as_blobs() -> None:
    seen: list[httpx.Request] = []
    session_doc = {
        "apiUrl": "/jmap/",
        "downloadUrl": "/dl/{accountId}/{blobId}/{name}?accept={type}",
        "uploadUrl": "/up/{accountId}/",
        "primaryAccounts": {"urn:ietf:params:jmap:mail": "acc"},
        "capabilities": {CYRUS_SIEVE: {}},
    }
    listed = {"list": [{"id": "1", "name": "x", "blobId": "G9", "isActive": True}]}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/jmap/" and request.method == "GET":
            return httpx.Response(200, json=session_doc)
        if request.url.path == "/jmap/":
            return httpx.Response(
                200, json={"methodResponses": [["SieveScript/get", listed, "sg"]]}
            )
        return httpx.Response(200, content=b"keep;\n")

    transport = httpx.MockTransport(handler)
    with JmapClient("http://h/jmap/", "t", transport=transport) as jmap:
        api = SieveScripts(jmap, CYRUS_SIEVE)
        (script,) = api.list()
        assert api.text(script) == "keep;\n"
    body = json.loads(seen[1].content)
    assert body["using"] == ["urn:ietf:params:jmap:core", CYRUS_SIEVE]
    assert body["methodCalls"] == [["SieveScript/get", {"accountId": "acc", "ids": None}, "sg"]]
    assert str(seen[2].url) == "http://h/dl/acc/G9/x.sieve?accept=application%2Fsieve"


# -- recognised by content, never by name alone (issue 18) --------------------------------


def test_a_seal_holds_only_over_the_text_it_was_made_for() -> None:
    sealed = seal(RULES_KIND, RULES)
    assert sealed.startswith("# mailroom-seal rules sha256=")
    assert unseal(sealed) == (RULES_KIND, RULES)
    assert unseal(sealed.replace("Screener", "Elsewhere")) == (
        None,
        sealed.replace("Screener", "Elsewhere"),
    )
    assert unseal(RULES) == (None, RULES)
    assert unseal(seal(WRAPPER_KIND, RULES))[0] == WRAPPER_KIND


THEIRS = SieveScript("t", RULES_NAME, "Gt", is_active=True)


def test_a_users_active_script_called_mailroom_rules_is_wrapped_and_the_rules_go_elsewhere() -> (
    None
):
    state = installed(THEIRS, rules="keep;\n")
    assert state.rules is None  # a name is not enough
    plan = plan_install(state, RULES)
    assert (plan.rules, plan.rules_name, plan.wrapper, plan.wraps, plan.activate) == (
        "create",
        f"{RULES_NAME}-2",
        "create",
        RULES_NAME,
        True,
    )
    assert plan.wrapper_text == wrapper_script(RULES_NAME, f"{RULES_NAME}-2")
    assert plan_restore(state).empty  # nothing of mailroom's to delete
    assert verdict(state, RULES) == "missing"
    assert any(
        f"keeps its rules in '{RULES_NAME}-2'" in line for line in plan_lines(plan, apply=True)
    )


def test_once_installed_around_it_the_users_script_is_restored_never_deleted() -> None:
    scripts = (
        SieveScript("t", RULES_NAME, "Gt", False),
        SieveScript("r", f"{RULES_NAME}-2", "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", True),
    )
    wrapper = seal(WRAPPER_KIND, wrapper_script(RULES_NAME, f"{RULES_NAME}-2"))
    state = Installed(scripts, "keep;\n", wrapper, {f"{RULES_NAME}-2": seal(RULES_KIND, RULES)})
    assert state.rules == scripts[1]
    assert [is_ours(state, s) for s in scripts] == [False, True, True]
    plan = plan_install(state, RULES)
    assert plan.nothing_to_do
    assert (plan.wraps, plan.rules_name) == (RULES_NAME, f"{RULES_NAME}-2")
    assert verdict(state, RULES) == "current"
    assert plan_install(state, RULES + "#changed\n").rules == "update"  # ours: updated
    restore = plan_restore(state)
    assert (restore.switch, restore.restore) == (True, RULES_NAME)
    assert [s.name for s in restore.destroy] == [WRAPPER_NAME, f"{RULES_NAME}-2"]


def test_a_script_of_mailrooms_the_user_edited_is_theirs_from_then_on() -> None:
    edited = seal(RULES_KIND, RULES).replace("Screener", "Mine")
    scripts = (
        SieveScript("r", RULES_NAME, "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", True),
    )
    state = installed(*scripts, rules=edited, wrapper=seal(WRAPPER_KIND, wrapper_script(None)))
    assert state.rules is None
    plan = plan_install(state, RULES)
    assert (plan.rules, plan.rules_name) == ("create", f"{RULES_NAME}-2")
    assert [s.name for s in plan_restore(state).destroy] == [WRAPPER_NAME]


def test_a_sealed_wrapper_vouches_for_no_unsealed_script() -> None:
    scripts = (
        SieveScript("r", RULES_NAME, "Gr", False),
        SieveScript("w", WRAPPER_NAME, "Gw", True),
    )
    state = installed(*scripts, rules=RULES, wrapper=seal(WRAPPER_KIND, wrapper_script(None)))
    assert state.rules is None  # only an unsealed (older) wrapper vouches for its rules
    legacy = installed(*scripts, rules=RULES, wrapper=wrapper_script(None))
    assert legacy.rules == scripts[0]
