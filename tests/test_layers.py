"""The package's layers (docs/design.md): no module imports from a layer above its own.

Every import counts, the lazy ones inside functions too: a lazy import up the stack is
still an arrow back up. Within one package (``mailroom.triage``, ``mailroom.service``
...) modules import each other freely; between packages only downwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mailroom"

# Lowest first. A module's layer is that of its longest listed prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mailroom", "mailroom.redaction", "mailroom.version", "mailroom.statenames"),
    ("mailroom.errors",),
    ("mailroom.paths", "mailroom.categories", "mailroom.logthrottle", "mailroom.httpbounds"),
    ("mailroom.config_input", "mailroom.httpfaults"),
    ("mailroom.procsettings",),
    ("mailroom.logs",),
    ("mailroom.config",),
    ("mailroom.jmap", "mailroom.carddav"),
    ("mailroom.clients",),
    ("mailroom.triage",),
    ("mailroom.routing",),
    ("mailroom.run",),
    ("mailroom.service",),
    ("mailroom.ops",),
    ("mailroom.cli",),
    ("mailroom.__main__",),
)
# The one arrow up, by design: `mailroom-lifeline` (what supervisord starts) hands its
# process to the CLI once the parent tie is set, importing it only then.
ALLOWED = {("mailroom.run.lifeline", "mailroom.cli")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(name: str) -> tuple[int, str]:
    """(layer, the listed prefix) of a module: its longest listed prefix wins (the
    package itself, ``mailroom``, is only its ``__init__``)."""
    found = [
        (len(prefix), index, prefix)
        for index, layer in enumerate(LAYERS)
        for prefix in layer
        if name == prefix or (prefix != "mailroom" and name.startswith(prefix + "."))
    ]
    assert found, f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}"
    _, index, prefix = max(found)
    return index, prefix


def imported(path: Path) -> set[str]:
    """Every mailroom module ``path`` imports, at module level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n == "mailroom" or n.startswith("mailroom.")}


def known(name: str) -> bool:
    """Whether ``name`` is a module or package (not a function imported from one)."""
    base = PACKAGE.parent / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    here, own = unit(module_name(path))
    upward = []
    for name in sorted(n for n in imported(path) if known(n)):
        there, prefix = unit(name)
        if prefix != own and there >= here and (module_name(path), name) not in ALLOWED:
            upward.append(f"{name} (layer {there}, this module's is {here})")
    assert upward == []


def test_the_layers_catch_an_arrow_back_up() -> None:
    """The rule itself: config importing the run layer would be caught."""
    here, _ = unit("mailroom.config")
    there, _ = unit("mailroom.run.statefiles")
    assert there > here
    assert unit("mailroom.triage.plan") == (LAYERS.index(("mailroom.triage",)), "mailroom.triage")
