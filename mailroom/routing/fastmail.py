"""The routing model as the Fastmail rules the user creates by hand (pure text).

Fastmail offers no API for its rules that mailroom knows of, so on Fastmail the user
types them in Settings > Filters & Rules. Each line renders one ``Route`` of the same
model the Sieve script renders, in the same order, so the two cannot disagree. The
first matching rule must be the last one applied ("Continue to apply other rules"
unticked): a sender of a child category is also in its parents' groups, and the
parents' rules would otherwise add their labels and the Inbox again.

Instead of the rules, ``routing: enforce`` has mailroom move each new email itself, at
the cost of the email's second in the Inbox: ``enforce_alternative`` says so.
"""

from __future__ import annotations

from mailroom.routing.model import Route, Routing

HEADER = "Create these rules in Fastmail (Settings > Filters & Rules), in this order:"
CONTINUE = "Continue to apply other rules"


def _labels(names: tuple[str, ...]) -> str:
    quoted = [f'"{n}"' for n in names]
    if len(quoted) == 1:
        return f"add label {quoted[0]}"
    return f"add labels {', '.join(quoted[:-1])} and {quoted[-1]}"


def _route_step(number: int, route: Route) -> str:
    inbox = "keep it in the Inbox" if route.keep_in_inbox else "Archive (skip Inbox)"
    return (
        f'  {number}. If the sender is in contact group "{route.group}": '
        f'{_labels(route.mailboxes)}; {inbox}; leave "{CONTINUE}" unticked.'
    )


def fastmail_steps(model: Routing) -> list[str]:
    """The rules, one line each, in order, then why the order and "Continue" matter."""
    lines = [HEADER]
    lines += [_route_step(n, r) for n, r in enumerate(model.routes, start=1)]
    lines.append(
        f"  {len(model.routes) + 1}. Last: if the sender is not in your contacts: "
        f'move to "{model.screener}".'
    )
    lines.append(
        "Keep this order and leave "
        f'"{CONTINUE}" unticked: a sender triaged to a child category is also in its '
        "parents' groups, so the child's rule comes first and must be the only one applied."
    )
    lines.append(
        "These rules are yours to make: mailroom cannot install rules on this server. "
        "`mailroom check` judges them by where new mail lands."
    )
    return lines


def enforce_alternative(mode: str) -> list[str]:
    """What ``routing: enforce`` offers instead of the rules, and its cost; under
    ``mode`` enforce, that it is in force."""
    if mode == "enforce":
        return [
            "routing: enforce is set: mailroom routes each new email itself, so these "
            "rules are optional. With them, new mail goes straight to its place; without "
            "them, it lands in the Inbox for about a second first (a phone may notify)."
        ]
    return [
        "Or, instead of these rules: MAILROOM_ROUTING=enforce (YAML `routing: enforce`) "
        "has mailroom route each new email itself, without any rule. The cost: new mail "
        "lands in the Inbox for about a second first, until mailroom moves it (a phone "
        "may notify)."
    ]
