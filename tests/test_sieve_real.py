"""mailroom's Sieve rules next to the user's own script, against a real Cyrus: the user's
script keeps filing before and after setup and after reset; reset puts back exactly what
was active and takes mailroom's rules away; check tells current from missing or stale."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mailroom.config import load_settings
from mailroom.errors import JmapError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.sieve import CYRUS_SIEVE, SieveScripts
from mailroom.ops import check, reset, setup
from mailroom.routing.sieve import RULES_NAME, WRAPPER_NAME
from mailroom_dev.realserver import (
    Account,
    delivered,
    lmtp_deliver,
    put_sieve_script,
    sieve_call,
    sieve_scripts,
)
from mailroom_dev.triagebox import Box

pytestmark = pytest.mark.real

RECEIPTS = """require ["fileinto"];
if header :contains "subject" "receipt" { fileinto "Receipts"; }
"""


@pytest.fixture
def box(account: Account) -> Box:
    return Box.create(account)


def arrive(account: Account, from_addr: str, subject: str) -> frozenset[str]:
    lmtp_deliver(account, from_addr=from_addr, subject=subject)
    return delivered(account, subject).mailboxes


def run_reset(box: Box) -> tuple[int, str]:
    jmap, carddav = box.clients()
    out = io.StringIO()
    try:
        code = reset.run(
            box.settings, jmap, carddav, apply=True, yes=True, stdin=io.StringIO(), stdout=out
        )
    finally:
        jmap.close()
        carddav.close()
    return code, out.getvalue()


def rules_finding(box: Box) -> check.Finding:
    jmap, carddav = box.clients()
    try:
        return check.check_rules(box.settings, jmap, carddav)
    finally:
        jmap.close()
        carddav.close()


def user_script(account: Account) -> None:
    account.create_mailbox("Receipts")
    put_sieve_script(account, "my rules", RECEIPTS, activate=True)


def test_the_users_script_keeps_filing_before_and_after_setup_and_after_reset(
    account: Account,
) -> None:
    user_script(account)
    assert arrive(account, "shop@store.example", "receipt 1") == {"Receipts"}

    box = Box.create(account)
    assert sieve_scripts(account) == {"my rules": False, RULES_NAME: False, WRAPPER_NAME: True}
    # the user's script runs first and still files; mailroom's rules then screen the stranger
    assert "Receipts" in arrive(account, "shop@store.example", "receipt 2")
    assert arrive(account, "other@store.example", "no match") == {"Screener"}

    code, out = run_reset(box)
    assert code == 0, out
    assert sieve_scripts(account) == {"my rules": True}
    assert arrive(account, "shop@store.example", "receipt 3") == {"Receipts"}
    # mailroom's rules no longer route: a stranger stays in the Inbox
    assert arrive(account, "stranger@else.example", "after reset") == {"Inbox"}


def test_reset_without_a_script_of_the_users_leaves_none_active(box: Box) -> None:
    assert arrive(box.account, "a@b.example", "before reset") == {"Screener"}
    code, out = run_reset(box)
    assert code == 0, out
    assert sieve_scripts(box.account) == {}
    assert arrive(box.account, "a@b.example", "after reset") == {"Inbox"}


def test_a_second_setup_changes_nothing_and_a_second_reset_plans_nothing(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    user_script(account)
    box = Box.create(account)
    listed = sieve_call(account, "SieveScript/get", {"ids": None})["list"]
    assert setup.main(box.settings, apply=True) == 0
    assert sieve_call(account, "SieveScript/get", {"ids": None})["list"] == listed
    assert "mailroom-rules   current" in capsys.readouterr().out

    assert run_reset(box)[0] == 0
    code, out = run_reset(box)
    assert (code, sieve_scripts(account)) == (0, {"my rules": True})
    assert "Sieve" not in out


def test_an_interrupted_reset_finishes_when_run_again(account: Account) -> None:
    user_script(account)
    box = Box.create(account)
    ids = {s["name"]: s["id"] for s in sieve_call(account, "SieveScript/get", {})["list"]}
    # the first step of reset happened (the user's script is active), the deletes did not
    sieve_call(account, "SieveScript/set", {"onSuccessActivateScript": ids["my rules"]})

    code, out = run_reset(box)
    assert code == 0, out
    assert sieve_scripts(account) == {"my rules": True}


def test_setup_regenerates_the_rules_when_the_categories_change(
    account: Account, tmp_path: Path
) -> None:
    box = Box.create(account)
    triage_feed = box.deliver(from_addr="news@feed.example", subject="first")
    box.label(triage_feed, "@ToFeed")
    box.searchable("news@feed.example")
    box.triage()
    assert arrive(account, "news@feed.example", "before the change") == {"Feed"}

    config = tmp_path / "config.yaml"
    config.write_text(
        "categories:\n  - Imbox\n  - {name: Feed, add_to_inbox: true}\n  - Paper Trail\n"
        "  - Jail\n  - {name: Person, parent: Imbox, contact_type: person}\n"
        "  - {name: Billboard, parent: Paper Trail}\n  - {name: Truck, parent: Paper Trail}\n"
    )
    changed = load_settings({**account.env(), "MAILROOM_CONFIG": str(config)})
    assert rules_finding(Box(account, changed)).level == "problem"  # stale
    assert setup.main(changed, apply=True) == 0
    assert arrive(account, "news@feed.example", "after the change") == {"Feed", "Inbox"}
    assert rules_finding(Box(account, changed)).level == "ok"


def test_check_fails_on_missing_or_stale_rules_and_passes_when_current(box: Box) -> None:
    found = rules_finding(box)
    assert (found.level, found.text) == (
        "ok",
        "routing rules: installed, current and active (7 groups)",
    )
    ids = {s["name"]: s["id"] for s in sieve_call(box.account, "SieveScript/get", {})["list"]}

    rules_id = ids[RULES_NAME]
    blob = box.account._http.post(
        f"{box.account.base_url}/jmap/upload/{box.account.account_id}/",
        content=b'require ["fileinto"];\nfileinto "Screener";\n',
        headers={"Content-Type": "application/sieve"},
    ).json()["blobId"]
    sieve_call(box.account, "SieveScript/set", {"update": {rules_id: {"blobId": blob}}})
    found = rules_finding(box)
    assert found.level == "problem"
    assert "stale" in found.text

    # Cyrus's draft deactivates with null (RFC 9661: onSuccessDeactivateScript)
    sieve_call(box.account, "SieveScript/set", {"onSuccessActivateScript": None})
    sieve_call(box.account, "SieveScript/set", {"destroy": list(ids.values())})
    found = rules_finding(box)
    assert found.level == "problem"
    assert "not installed" in found.text

    assert setup.main(box.settings, apply=True) == 0
    assert rules_finding(box).level == "ok"


def test_a_script_the_server_refuses_is_never_written(account: Account) -> None:
    with JmapClient(account.session_url, account.token) as jmap:
        api = SieveScripts(jmap, CYRUS_SIEVE)
        with pytest.raises(JmapError, match=r"refused the Sieve script 'broken': .*syntax error"):
            api.upload_valid("broken", "if true {\n")
        text = 'require ["fileinto"];\nfileinto "Screener";\n'
        blob = api.upload_valid("fine", text)
        created = api.set(create={"s": {"name": "fine", "blobId": blob}})
        (script,) = api.list()
        assert (script.id, script.name, api.text(script)) == (created["s"], "fine", text)


# -- a user's script called mailroom-rules is never taken (issue 18) ---------------------

MINE = """require ["fileinto"];
if header :contains "subject" "mine" { fileinto "Receipts"; }
"""


def script_text(account: Account, name: str) -> str:
    with JmapClient(account.session_url, account.token) as jmap:
        api = SieveScripts(jmap, CYRUS_SIEVE)
        (script,) = [s for s in api.list() if s.name == name]
        return api.text(script)


def test_a_users_active_script_called_mailroom_rules_is_wrapped_then_restored_unchanged(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    account.create_mailbox("Receipts")
    put_sieve_script(account, RULES_NAME, MINE, activate=True)

    box = Box.create(account)  # setup --apply

    out = capsys.readouterr().out
    assert f"  sieve    {RULES_NAME}-2 created" in out
    assert f"runs your script '{RULES_NAME}' first, unchanged" in out
    assert f"a script of yours is called '{RULES_NAME}'" in out
    assert script_text(account, RULES_NAME) == MINE
    assert sieve_scripts(account) == {
        RULES_NAME: False,
        f"{RULES_NAME}-2": False,
        WRAPPER_NAME: True,
    }
    assert "Receipts" in arrive(account, "shop@store.example", "mine 1")  # theirs runs first
    assert arrive(account, "other@store.example", "no match") == {"Screener"}  # then ours
    listed = sieve_call(account, "SieveScript/get", {"ids": None})["list"]
    assert setup.main(box.settings, apply=True) == 0
    assert sieve_call(account, "SieveScript/get", {"ids": None})["list"] == listed
    assert rules_finding(box).level == "ok"

    code, out = run_reset(box)

    assert code == 0, out
    assert sieve_scripts(account) == {RULES_NAME: True}  # active again, as before setup
    assert script_text(account, RULES_NAME) == MINE
    assert arrive(account, "shop@store.example", "mine 2") == {"Receipts"}


def test_reset_never_deletes_an_inactive_script_of_the_users_called_mailroom_rules(
    account: Account,
) -> None:
    put_sieve_script(account, RULES_NAME, MINE, activate=False)
    box = Box.create(account)
    assert sieve_scripts(account) == {
        RULES_NAME: False,
        f"{RULES_NAME}-2": False,
        WRAPPER_NAME: True,
    }
    code, out = run_reset(box)
    assert code == 0, out
    assert f"'{RULES_NAME}-2'" in out
    assert sieve_scripts(account) == {RULES_NAME: False}
    assert script_text(account, RULES_NAME) == MINE
