"""Categories: buckets for senders, their derived fields, and the seven validation rules.

Parent chains are additive, nothing is inherited: a child has its own label, group and
mailbox, and triage to it also files into every ancestor's. ``category_problems``
collects every problem, one line each, so a user fixes them all in one go.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, islice, pairwise
from typing import Any, Literal

from pydantic import ConfigDict

ContactType = Literal["company", "person"]


@dataclass(frozen=True, slots=True)
class Category:
    """A bucket for senders (spec/triage.md). ``category(name, ...)`` derives the rest."""

    name: str
    label: str
    contact_group: str
    destination_mailbox: str
    contact_type: ContactType = "company"
    parent: str | None = None
    add_to_inbox: bool = False

    __pydantic_config__ = ConfigDict(extra="forbid", str_strip_whitespace=True)


def derived_fields(name: str) -> dict[str, str]:
    """label = "@To" + name without spaces; contact group and mailbox = name."""
    return {
        "label": "@To" + "".join(name.split()),
        "contact_group": name,
        "destination_mailbox": name,
    }


def category(name: str, **fields: Any) -> Category:
    """A category with the derived default for every field not given."""
    return Category(**{"name": name, **derived_fields(name), **fields})


def expand_category(value: Any) -> Any:
    """YAML shape -> Category fields: ``- Feed`` means ``{name: Feed}``; null means derive."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        return value
    name = value.get("name")
    base = derived_fields(name.strip()) if isinstance(name, str) else derived_fields("")
    return {**base, **{k: v for k, v in value.items() if v is not None}}


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    category("Imbox", add_to_inbox=True),
    category("Feed"),
    category("Paper Trail"),
    category("Jail"),
    category("Person", parent="Imbox", contact_type="person"),
    category("Billboard", parent="Paper Trail"),
    category("Truck", parent="Paper Trail"),
)


# -- ancestry: the one walker ------------------------------------------------------


class Ancestry:
    """The parent links walked once, from the roots down, and remembered.

    Every category is visited once when built (``visits`` counts them), so a 2,000-deep
    chain costs 2,000 steps, not 2,000 squared. Afterwards ``depth`` and ``is_ancestor``
    are one look-up each (a name's span in the walk contains its descendants' spans) and
    ``chain`` walks only the chain it returns. A name on or under a parent cycle is never
    reached from a root: it has no depth, and ``chain`` walks it with a repeat check (the
    cycle rule reports it).
    """

    __slots__ = ("_depth", "_span", "parents", "visits")

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self.parents = parents
        self.visits = 0
        self._depth: dict[str, int] = {}
        self._span: dict[str, tuple[int, int]] = {}
        children: dict[str, list[str]] = defaultdict(list)
        for name, parent in parents.items():
            if parent is not None and parent in parents:
                children[parent].append(name)
        roots = [n for n, p in parents.items() if p is None or p not in parents]
        self._walk(roots, children)

    def _walk(self, roots: list[str], children: Mapping[str, list[str]]) -> None:
        clock = 0
        stack: list[tuple[str, int, bool]] = [(r, 0, False) for r in reversed(roots)]
        while stack:
            name, depth, leaving = stack.pop()
            if leaving:
                self._span[name] = (self._span[name][0], clock)
                continue
            self.visits += 1
            self._depth[name] = depth
            self._span[name] = (clock, clock)
            clock += 1
            stack.append((name, depth, True))
            stack.extend((c, depth + 1, False) for c in reversed(children.get(name, ())))

    def depth(self, name: str) -> int | None:
        """How many ancestors ``name`` has; None on or under a cycle, or if unknown."""
        return self._depth.get(name)

    def is_ancestor(self, name: str, of: str) -> bool:
        """Whether ``name`` is a parent, grandparent ... of ``of``."""
        if name in self._span and of in self._span:
            (start, end), (inner, _) = self._span[name], self._span[of]
            return start < inner < end
        return name in self.ancestors(of)

    def ancestors(self, name: str) -> list[str]:
        """Parent, grandparent ... of ``name``; stops at a missing parent or a repeat."""
        found: list[str] = []
        seen = {name}
        parent = self.parents.get(name)
        while parent is not None and parent in self.parents and parent not in seen:
            found.append(parent)
            seen.add(parent)
            parent = self.parents[parent]
        return found


def parents_of(categories: Sequence[Category]) -> dict[str, str | None]:
    """Each category's name -> its parent's name."""
    return {c.name: c.parent for c in categories}


def ancestry(categories: Sequence[Category]) -> Ancestry:
    """The one walker over ``categories``' parent links, walked once per category list."""
    return _walked(tuple(categories))


@lru_cache(maxsize=8)
def _walked(categories: tuple[Category, ...]) -> Ancestry:
    return Ancestry(parents_of(categories))


def chain(categories: Sequence[Category], name: str) -> tuple[Category, ...]:
    """The category named ``name``, then its parent, grandparent ... (KeyError if unknown)."""
    return _chain(tuple(categories), name)


@lru_cache(maxsize=256)
def _chain(categories: tuple[Category, ...], name: str) -> tuple[Category, ...]:
    by_name = {c.name: c for c in categories}
    if name not in by_name:
        raise KeyError(f"no category named {name!r}")
    return tuple(by_name[n] for n in [name, *_walked(categories).ancestors(name)])


# -- the category rules: each returns one line per problem ---------------------------


def _names(categories: Sequence[Category]) -> list[str]:
    problems = [
        f"categories[{i}]: {key} is empty; leave it out to derive it from the name"
        if key != "name"
        else f"categories[{i}]: name is empty; give every category a name"
        for i, c in enumerate(categories)
        for key in ("name", "label", "contact_group", "destination_mailbox")
        if not getattr(c, key).strip() and (key == "name" or c.name.strip())
    ]
    seen: set[str] = set()
    for name in (c.name for c in categories):
        if name in seen and name.strip():
            problems.append(f"category {name!r} is defined more than once; names must be unique")
        seen.add(name)
    return problems


def _parents(categories: Sequence[Category], parents: Mapping[str, str | None]) -> list[str]:
    return [
        f"category {c.name!r}: parent {c.parent!r} is not a category; "
        "name an existing category or remove parent"
        for c in categories
        if c.parent is not None and c.parent not in parents
    ]


def _loops(parents: Mapping[str, str | None]) -> list[list[str]]:
    """Each parent cycle once, as the names along it; every name is walked once."""
    done: set[str] = set()
    loops = []
    for start in parents:
        path: list[str] = []
        at: dict[str, int] = {}
        name: str | None = start
        while name is not None and name in parents and name not in done and name not in at:
            at[name] = len(path)
            path.append(name)
            name = parents[name]
        if name is not None and name in at:
            loops.append(path[at[name] :])
        done.update(path)
    return loops


def _loop_text(loop: Sequence[str], shown: int = 8) -> str:
    names = [repr(n) for n in [*loop, loop[0]]]
    if len(names) > shown:
        names = [*names[: shown - 2], "...", *names[-2:]]
        return " -> ".join(names) + f" ({len(loop)} categories)"
    return " -> ".join(names)


def _cycles(parents: Mapping[str, str | None]) -> list[str]:
    return [
        f"category {loop[0]!r} is its own parent; remove its parent"
        if len(loop) == 1
        else f"categories form a parent cycle: {_loop_text(loop)}; break the cycle"
        for loop in _loops(parents)
    ]


def _labels(categories: Sequence[Category]) -> list[str]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for c in categories:
        if c.name not in by_label[c.label]:
            by_label[c.label].append(c.name)
    return [
        f"categories {' and '.join(map(repr, names))} use the same label {label!r}; "
        "give each its own label"
        for label, names in by_label.items()
        if len(names) > 1
    ]


def _inbox(categories: Sequence[Category]) -> list[str]:
    return [
        f"category {c.name!r}: destination_mailbox {c.destination_mailbox!r} is refused; "
        "name another mailbox and set add_to_inbox: true to keep its mail in the Inbox too"
        for c in categories
        if c.destination_mailbox.strip().lower() == "inbox"
    ]


GROUP_PAIRS_SHOWN = 10


def _groups(categories: Sequence[Category], walker: Ancestry) -> list[str]:
    """Members of one contact group must lie on one parent chain.

    Sorted by depth, a group on one chain has each member an ancestor of the next: one
    look-up per member. Only a group that fails is paired out, and only its first
    ``GROUP_PAIRS_SHOWN`` unrelated pairs are named. A member on or under a parent cycle
    is left to the cycle rule.
    """
    by_group: dict[str, list[Category]] = defaultdict(list)
    for c in categories:
        if walker.depth(c.name) is not None:
            by_group[c.contact_group].append(c)
    problems: list[str] = []
    for group, members in by_group.items():
        ordered = sorted(members, key=lambda c: walker.depth(c.name) or 0)
        if all(_related(a, b, walker) for a, b in pairwise(ordered)):
            continue
        problems += _group_pairs(group, members, walker)
    return problems


def _related(a: Category, b: Category, walker: Ancestry) -> bool:
    return (
        a.name == b.name or walker.is_ancestor(a.name, b.name) or walker.is_ancestor(b.name, a.name)
    )


def _group_pairs(group: str, members: Sequence[Category], walker: Ancestry) -> list[str]:
    unrelated = ((a, b) for a, b in combinations(members, 2) if not _related(a, b, walker))
    shown = list(islice(unrelated, GROUP_PAIRS_SHOWN + 1))
    lines = [
        f"categories {a.name!r} and {b.name!r} share the contact group {group!r} "
        "but neither is an ancestor of the other; give each its own contact_group"
        for a, b in shown[:GROUP_PAIRS_SHOWN]
    ]
    if len(shown) > GROUP_PAIRS_SHOWN:
        lines.append(
            f"contact group {group!r}: more categories share it without being ancestors "
            "of each other; give each its own contact_group or chain them by parent"
        )
    return lines


def category_problems(categories: Sequence[Category]) -> list[str]:
    """Every violation of the category rules of spec/triage.md, one line each."""
    if not categories:
        return ["categories: at least one category is needed (remove the key for the defaults)"]
    walker = ancestry(categories)
    return [
        *_names(categories),
        *_parents(categories, walker.parents),
        *_cycles(walker.parents),
        *_labels(categories),
        *_inbox(categories),
        *_groups(categories, walker),
    ]
