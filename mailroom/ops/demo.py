"""`mailroom demo`: the whole product on this machine, with no Fastmail account.

It starts a throwaway Cyrus IMAP (the server software Fastmail runs, built with push)
on 127.0.0.1 with the checkout's ``dev/cyrus/start.sh``, runs ``mailroom setup
--apply`` against it (which installs the routing rules: the server runs Sieve), delivers
mail from a handful of senders over LMTP (the rules put it in the Screener), starts the
service (``mailroom run``: listener, worker and health under supervisord), puts
``@ToFeed`` on one email and shows the sender triaged, then delivers a new email from
that sender (the rules file it in Feed) and one from a stranger (the Screener), shows
``mailroom check`` naming a missing rule (one more email from that sender put in the
Inbox past the rules, as a server without the rule for Feed leaves it), and says how
to go on and how to stop. Ctrl-C stops the service and the server.

In a second terminal: ``mailroom demo label ADDRESS LABEL`` puts a triage label on the
newest email of ADDRESS, as a mail client would; ``mailroom demo send ADDRESS SUBJECT``
delivers a new email from ADDRESS and says where the server's rules put it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from mailroom.errors import MailroomError
from mailroom.ops import demo_mail

DEMO_DIR = Path(os.environ.get("MAILROOM_DEMO_DIR", "/tmp/mailroom-demo"))
SENDERS = (
    ("news@paperboy.example", "The Paperboy", ("Monday digest", "Tuesday digest", "Deals")),
    ("ada@lovelace.example", "Ada Lovelace", ("Lunch?", "Notes on the engine")),
    ("billing@power.example", "Power & Light", ("Your bill", "Payment received")),
    ("promo@shouty.example", "SHOUTY DEALS", ("50% off", "Last chance", "Really last chance")),
    ("grace@hopper.example", "Grace Hopper", ("Compiler question",)),
)
NEWCOMER = "newcomer@fresh.example"


def checkout_script(name: str) -> Path:
    script = Path(__file__).resolve().parents[2] / "dev" / "cyrus" / name
    if not script.is_file():
        raise MailroomError(
            f"the demo needs a checkout of mailroom ({script} not found); "
            "clone the repository and run `make run`"
        )
    return script


def start_server() -> dict[str, str]:
    """Start (or reuse) the demo's Cyrus; returns start.sh's exports."""
    env = {
        "CYRUS_PEER_PUSH": "1",
        "CYRUS_PEER_BUILD_DIR": "/tmp/mailroom-cyrus-build",
        **os.environ,
    }
    say("starting a local Cyrus IMAP server (JMAP, CardDAV, push) on 127.0.0.1;")
    say("the first run builds it from Debian's source package: 2-3 minutes, once")
    # every demo starts from an empty server: a previous run's account is purged
    stop = checkout_script("stop.sh")
    subprocess.run(["bash", str(stop), str(DEMO_DIR / "cyrus"), "--purge"], check=False)
    done = subprocess.run(
        ["bash", str(checkout_script("start.sh")), str(DEMO_DIR / "cyrus")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MailroomError("the local Cyrus did not start; its messages are above")
    exports = {}
    for line in done.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = value.strip("'\"")
    return exports


def service_env(exports: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    return {
        **base,
        "MAILROOM_JMAP_TOKEN": exports["CYRUS_PEER_BEARER_TOKEN"],
        "MAILROOM_JMAP_SESSION_URL": exports["CYRUS_PEER_JMAP_SESSION_URL"],
        "MAILROOM_CARDDAV_URL": exports["CYRUS_PEER_CARDDAV_URL"],
        "MAILROOM_CARDDAV_USERNAME": exports["CYRUS_PEER_USER"],
        "MAILROOM_CARDDAV_PASSWORD": exports["CYRUS_PEER_PASSWORD"],
        "MAILROOM_STATE_DIR": str(DEMO_DIR / "state"),
        "MAILROOM_HEALTH_PORT": os.environ.get("MAILROOM_HEALTH_PORT", "8080"),
        "MAILROOM_LOG_FORMAT": "console",
        "MAILROOM_DEMO_IMAP": "{CYRUS_PEER_IMAP_HOST}:{CYRUS_PEER_IMAP_PORT}".format(**exports),
        "MAILROOM_DEMO_LMTP": "{CYRUS_PEER_IMAP_HOST}:{CYRUS_PEER_LMTP_PORT}".format(**exports),
    }


def fill_screener(env: Mapping[str, str]) -> None:
    """Mail from every demo sender, delivered over LMTP: the server's rules (installed by
    setup) put mail from strangers in the Screener. Once: a rerun reuses it."""
    from mailroom.jmap.client import JmapClient
    from mailroom.triage.mailboxes import find_mailbox

    total = sum(len(s[2]) for s in SENDERS)
    with JmapClient(env["MAILROOM_JMAP_SESSION_URL"], env["MAILROOM_JMAP_TOKEN"]) as jmap:
        screener = find_mailbox(jmap.get_mailboxes()[0], "Screener")
        assert screener is not None  # setup --apply created it
        if jmap.query_ids({"inMailbox": screener}):
            return
        for address, name, subjects in SENDERS:
            for subject in subjects:
                demo_mail.deliver(env, address, name, subject)

        def in_screener() -> bool:
            return len(jmap.query_ids({"inMailbox": screener})) >= total

        wait_for("the delivered mail to reach the Screener", in_screener, 30)
    say(
        f"filled the Screener: {total} emails from {len(SENDERS)} senders, delivered over "
        "LMTP; the server's rules put mail from strangers there"
    )


def send(env: Mapping[str, str], address: str, subject: str) -> list[str]:
    """Deliver a new email from ``address``; the mailboxes the server's rules put it in."""
    name = next((s[1] for s in SENDERS if s[0] == address.lower()), address.split("@")[0])
    message_id = demo_mail.deliver(env, address, name, subject)
    where = wait_for("the new email to arrive", lambda: demo_mail.landed(env, message_id), 30)
    assert isinstance(where, list)
    return where


def healthz(port: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return dict(json.loads(r.read()))
    except (OSError, ValueError):
        return None


def wait_for(what: str, check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise MailroomError(f"timed out after {timeout:.0f} s waiting for {what}")


def say(text: str) -> None:
    print(f"\n>>> {text}", flush=True)


ENV_FILE = DEMO_DIR / "service-env.json"  # the throwaway server's credentials, mode 0600


def save_env(env: Mapping[str, str]) -> None:
    keep = {k: v for k, v in env.items() if k.startswith("MAILROOM_")}
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    ENV_FILE.touch(mode=0o600)
    ENV_FILE.write_text(json.dumps(keep), encoding="utf-8")


def load_env() -> dict[str, str]:
    try:
        return dict(json.loads(ENV_FILE.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise MailroomError("no demo is running here; start one with `mailroom demo`") from exc


def prepare() -> dict[str, str]:
    """Server up, account set up, Screener filled; returns the service's environment."""
    from mailroom.config import load_settings
    from mailroom.ops import setup

    env = service_env(start_server())
    save_env(env)
    say("mailroom setup --apply: the mailboxes, labels and contact groups, and the rules")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = setup.main(load_settings(env), apply=True)
    if code != 0:
        print(out.getvalue())
        raise MailroomError("setup failed against the local server; see above")
    shown = ("Applied", "Server-side rules", "  sieve")
    print("\n".join(line for line in out.getvalue().splitlines() if line.startswith(shown)))
    fill_screener(env)
    return env


def show_first_triage(env: Mapping[str, str]) -> None:
    port = env["MAILROOM_HEALTH_PORT"]
    wait_for("the service to be healthy and connected to push", lambda: _pushing(port), 60)
    address, name, _ = SENDERS[0]
    say(f"acting as the user: putting @ToFeed on one email from {name} <{address}>")
    started = time.monotonic()
    email_id = demo_mail.apply_label(env, address, "@ToFeed")
    wait_for(
        "the label to be acted on", lambda: "@ToFeed" not in demo_mail.where_is(env, email_id), 60
    )
    took = time.monotonic() - started
    say(f"triaged in {took:.1f} s: the email is now in {demo_mail.where_is(env, email_id)}")
    print(json.dumps(healthz(port), indent=2), flush=True)
    show_routing(env, address, name)


def show_routing(env: Mapping[str, str], address: str, name: str) -> None:
    """The other half of the loop: the server's rules route the next emails."""
    say(f"a new email from {name} <{address}> arrives (over LMTP)")
    print(f"the server's rules put it in {send(env, address, 'Wednesday digest')}", flush=True)
    say("an email from a sender nobody has screened yet arrives")
    where = send(env, NEWCOMER, "Hello from a stranger")
    print(f"the server's rules put it in {where}", flush=True)
    show_check(env, address, name)


def show_check(env: Mapping[str, str], address: str, name: str) -> None:
    """`mailroom check` catching a missing rule: the next email from the triaged sender
    lands in the Inbox, as on Fastmail before the rule for Feed is made."""
    from datetime import UTC, datetime

    from mailroom.clients import open_clients
    from mailroom.config import load_settings
    from mailroom.ops.routing_check import check_routing

    say(
        f"on Fastmail before you make the rule for Feed, {name}'s next email stays in the "
        "Inbox. One put there past the rules: `mailroom check` names the missing rule"
    )
    demo_mail.into_inbox(env, address, name, "Thursday digest")
    settings = load_settings(env)
    with open_clients(settings) as (jmap, carddav):
        found = check_routing(settings, jmap, carddav, now=datetime.now(UTC))
    print("\n".join(f"{level}: {text}" for level, text in found), flush=True)


def _pushing(port: str) -> bool:
    body = healthz(port)
    source = body.get("eventsource") if body else None
    return bool(
        body
        and body.get("status") == "ok"
        and isinstance(source, dict)
        and source.get("status") == "connected"
    )


def instructions(env: Mapping[str, str]) -> None:
    say("mailroom is running against the local server. Try, in another terminal:")
    print("  .venv/bin/mailroom demo label ada@lovelace.example @ToPerson")
    print("  .venv/bin/mailroom demo label promo@shouty.example @ToJail")
    print("  .venv/bin/mailroom demo label billing@power.example @ToPaperTrail")
    print("  .venv/bin/mailroom demo send news@paperboy.example 'Friday digest'")
    print(f"  curl http://127.0.0.1:{env['MAILROOM_HEALTH_PORT']}/healthz")
    print("  .venv/bin/mailroom status    # finds the demo's service: its programs and /healthz")
    imap, user = env["MAILROOM_DEMO_IMAP"], env["MAILROOM_CARDDAV_USERNAME"]
    password = env["MAILROOM_CARDDAV_PASSWORD"]  # the throwaway demo user's, not yours
    print(f"Or point any IMAP client at {imap} (user {user}, password {password}) and")
    print("copy an email into an @To... folder. Press Ctrl-C to stop mailroom and the server.")


def run_demo(*, once: bool) -> int:
    env = prepare()
    say("starting the service: mailroom run (listener, worker, health under supervisord)")
    service = subprocess.Popen([sys.executable, "-m", "mailroom", "run"], env=env)
    try:
        show_first_triage(env)
        if not once:
            instructions(env)
            service.wait()
    except KeyboardInterrupt:
        pass
    finally:
        say("stopping mailroom and the local server")
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
        subprocess.run(
            ["bash", str(checkout_script("stop.sh")), str(DEMO_DIR / "cyrus")], check=False
        )
    return 0


def main(
    *,
    once: bool = False,
    label: tuple[str, str] | None = None,
    send_mail: tuple[str, str] | None = None,
) -> int:
    """`mailroom demo [--once]` / `demo label ADDRESS LABEL` / `demo send ADDRESS SUBJECT`."""
    if send_mail is not None:
        where = send(load_env(), *send_mail)
        address, subject = send_mail
        print(f"delivered {subject!r} from {address}: the server's rules put it in {where}")
        return 0
    if label is not None:
        email_id = demo_mail.apply_label(load_env(), *label)
        print(f"put {label[1]} on email {email_id} from {label[0]}; watch the demo's log")
        return 0
    return run_demo(once=once)
