"""The shape of the package: lines, modules per package, and functions over 40 lines.

Counted from the source tree with ``ast`` (no server, no import of mailroom): every
``*.py`` under ``mailroom/``, lines as ``wc -l`` counts them, and a function's length
from its ``def`` line to its last line (``end_lineno - lineno + 1``: docstring and
comments included, decorators not). Issue 17 quotes these before and after.

    .venv/bin/python bench/code_shape.py [--limit 40] [--root mailroom]
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "mailroom"


def long_functions(path: Path, limit: int) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function in ``path`` longer than ``limit``."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}."
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                if length > limit:
                    found.append((name.rstrip("."), length))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40, help="longest function allowed")
    parser.add_argument("--root", type=Path, default=ROOT, help="the package directory")
    args = parser.parse_args()
    files = sorted(args.root.rglob("*.py"))
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in files)
    per_package = Counter(path.parent.relative_to(args.root.parent).as_posix() for path in files)
    print(f"lines in {args.root.name}/: {lines} in {len(files)} modules")
    for package, count in sorted(per_package.items()):
        print(f"  {package + '/':<22} {count:>3} modules (__init__ included)")
    longest = [
        (f"{path.relative_to(args.root.parent)}:{name}", length)
        for path in files
        for name, length in long_functions(path, args.limit)
    ]
    print(f"functions over {args.limit} lines: {len(longest)}")
    for name, length in sorted(longest, key=lambda item: -item[1]):
        print(f"  {length:>4}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
