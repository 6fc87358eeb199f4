"""The routing rules in `setup`, `check` and `reset`: installed where the server offers
JMAP Sieve, printed as Fastmail steps where it does not.

Both come from one model (``routing.model``): ``routing.sieve`` renders the script,
``routing.fastmail`` the steps. The decisions are pure (``routing.install``); this
module reads the server through ``routing.server`` and turns outcomes into lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailroom.carddav.client import CardDavClient
from mailroom.config import Settings
from mailroom.errors import MailroomError, SetupNeededError
from mailroom.jmap.client import JmapClient
from mailroom.jmap.sieve import SieveScripts
from mailroom.routing import server
from mailroom.routing.fastmail import enforce_alternative, fastmail_steps
from mailroom.routing.install import InstallPlan, RestorePlan, plan_install, plan_restore, verdict
from mailroom.routing.sieve import RULES_NAME, WRAPPER_NAME

SETUP_FIX = "run `mailroom setup --apply`"
RuleLevel = Literal["ok", "note", "problem"]
HEADER = "Server-side rules (Sieve on this server, from the categories):"


@dataclass(frozen=True, slots=True)
class RulesOutcome:
    lines: tuple[str, ...]
    failed: bool = False


def _wraps(wraps: str | None) -> str:
    if wraps is None:
        return "no script of yours was active"
    return f"runs your script {wraps!r} first, unchanged"


def plan_lines(plan: InstallPlan, *, apply: bool) -> list[str]:
    def status(change: str) -> str:
        if change == "current":
            return "current"
        return {"create": "created", "update": "updated"}[change] if apply else f"would {change}"

    active = "active" if not plan.activate else ("activated" if apply else "would activate")
    lines = [
        HEADER,
        f"  sieve    {plan.rules_name:<16} {status(plan.rules):<14} (the routing rules)",
        f"  sieve    {WRAPPER_NAME:<16} {status(plan.wrapper):<14} "
        f"({active}; {_wraps(plan.wraps)}, then mailroom's rules)",
    ]
    if plan.rules_name != RULES_NAME:
        lines.append(
            f"  (a script of yours is called {RULES_NAME!r}: mailroom leaves it as it is and "
            f"keeps its rules in {plan.rules_name!r})"
        )
    return lines


def setup_rules(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient, *, apply: bool
) -> RulesOutcome:
    """Install (or, dry, plan) the rules; the Fastmail steps where there is no Sieve."""
    model = server.model_of(settings)
    try:
        api = server.find_sieve(jmap)
        if api is None:
            steps = [*fastmail_steps(model), *enforce_alternative(settings.routing)]
            return RulesOutcome(tuple(steps))
        mailboxes, _state = jmap.get_mailboxes()
        text = server.rules_for(model, mailboxes, server.group_uids(carddav))
        installed = server.read_installed(api)
        plan = plan_install(installed, text)
        if apply and not plan.nothing_to_do:
            server.install(api, installed, plan)
    except SetupNeededError as exc:
        if apply:
            return RulesOutcome((HEADER, f"  failed: {exc}"), failed=True)
        return RulesOutcome((HEADER, "  would install once the mailboxes and groups exist"))
    except MailroomError as exc:
        return RulesOutcome((HEADER, f"  failed: {exc}"), failed=True)
    lines = plan_lines(plan, apply=apply)
    if not apply and not plan.nothing_to_do:
        lines.append("Run `mailroom setup --apply` to install them.")
    return RulesOutcome(tuple(lines))


# -- check ----------------------------------------------------------------------------------


def check_rules(
    settings: Settings, jmap: JmapClient, carddav: CardDavClient
) -> tuple[RuleLevel, str]:
    """(level, text): "ok", "problem", or "note" where the rules are the user's to make."""
    model = server.model_of(settings)
    try:
        api = server.find_sieve(jmap)
        if api is None:
            return (
                "note",
                "routing rules: this server offers no Sieve API, so the rules are yours to "
                "create (`mailroom setup` prints the steps) or `routing: enforce` routes new "
                "mail instead; the routing line judges them by where new mail lands",
            )
        mailboxes, _state = jmap.get_mailboxes()
        text = server.rules_for(model, mailboxes, server.group_uids(carddav))
        found = verdict(server.read_installed(api), text)
    except SetupNeededError:
        return ("problem", f"routing rules: cannot be installed before setup: {SETUP_FIX}")
    except MailroomError as exc:
        return ("problem", f"routing rules: {exc}")
    verdicts: dict[str, tuple[RuleLevel, str]] = {
        "current": (
            "ok",
            f"routing rules: installed, current and active ({len(model.routes)} groups)",
        ),
        "missing": ("problem", f"routing rules are not installed: {SETUP_FIX}"),
        "stale": (
            "problem",
            "routing rules are stale (the categories, groups or mailboxes changed): " + SETUP_FIX,
        ),
        "inactive": ("problem", f"routing rules are installed but not active: {SETUP_FIX}"),
    }
    return verdicts[found]


# -- reset ----------------------------------------------------------------------------------


def read_restore(jmap: JmapClient) -> tuple[SieveScripts, RestorePlan] | None:
    """What reset must do to the Sieve scripts; None when the server has no Sieve."""
    api = server.find_sieve(jmap)
    if api is None:
        return None
    return api, plan_restore(server.read_installed(api))


def restore_lines(plan: RestorePlan) -> list[str]:
    lines = []
    if plan.switch:
        back = "no script" if plan.restore is None else f"your script {plan.restore!r}"
        lines.append(f"Sieve: make {back} active again, as before `mailroom setup`")
    if plan.missing is not None:
        lines.append(f"  (your script {plan.missing!r}, active before setup, is gone)")
    if plan.destroy:
        names = ", ".join(repr(s.name) for s in plan.destroy)
        lines.append(f"Sieve: delete mailroom's scripts {names}")
    return lines
