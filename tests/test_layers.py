"""The layers, enforced: every module's imports are read with ``ast`` (those inside functions
and under ``TYPE_CHECKING`` too, since a lazy import is still a dependency), and the test
fails on an import from a higher layer or on an import cycle between modules.

From the bottom up (the README's Architecture section): ``config`` → the core
(``kartabl``) → ``router`` → ``channels`` and ``responders`` (one layer; they may use each
other, without cycles) → ``workers`` → ``console`` → ``boot`` (the composition: the CLI,
the demo and what each process kind installs). ``bench`` and ``tests`` sit above them all.

The checker is run on a small tree of its own first, so a checker that can no longer see
an upward import or a cycle fails too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: dict[str, int] = {
    "config": 0,
    "kartabl": 1,
    "router": 2,
    "channels": 3,
    "responders": 3,
    "workers": 4,
    "console": 5,
    "boot": 6,
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted (a submodule when the name is one)
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> list[Import]:
    """Every import in the module, resolved to a known module where it names one."""
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.append(Import(name, sub if sub in known else module, node.lineno))
    return found


def layer_of(module: str) -> int | None:
    return LAYERS.get(module.split(".")[0])


def upward(imports: Iterable[Import]) -> list[Import]:
    return [
        imp for imp in imports
        if (src := layer_of(imp.source)) is not None
        and (dst := layer_of(imp.target)) is not None
        and dst > src
    ]


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm),
    each sorted, so a failure names every module of the cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def check(root: Path, packages: Iterable[str]) -> tuple[list[Import], list[list[str]]]:
    known = modules(root, packages)
    everything = [imp for name, path in known.items() for imp in imports_of(name, path, known)]
    graph: dict[str, set[str]] = {}
    for imp in everything:
        if imp.target in known and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    return upward(everything), cycles(graph)


def test_the_checker_sees_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    files = {
        "config/__init__.py": "",
        "config/settings.py": "def get():\n    from router.rules import rule\n",  # upward, lazy
        "kartabl/__init__.py": "",
        "kartabl/a.py": "from kartabl import b\n",
        "kartabl/b.py": "from . import c\n",
        "kartabl/c.py": "import kartabl.a\n",  # a → b → c → a
        "router/__init__.py": "",
        "router/rules.py": "from kartabl.a import x\nimport config\n",  # downward
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    up, loops = check(tmp_path, ["config", "kartabl", "router"])
    assert [(i.source, i.target, i.line) for i in up] == [("config.settings", "router.rules", 2)]
    assert loops == [["kartabl.a", "kartabl.b", "kartabl.c"]]


def test_no_module_imports_a_higher_layer() -> None:
    up, _ = check(ROOT, LAYERS)
    assert not up, "imports from a higher layer:\n" + "\n".join(
        f"  {i.source}:{i.line} imports {i.target}" for i in up
    )


def test_no_import_cycles() -> None:
    _, loops = check(ROOT, LAYERS)
    assert not loops, "import cycles:\n" + "\n".join("  " + " ↔ ".join(c) for c in loops)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_every_package_is_placed_in_a_layer(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()


def test_every_top_level_package_has_a_layer() -> None:
    """A new top-level package must be given its place (or it would escape the check)."""
    outside = {"tests", "bench", "scripts", "templates", "deploy"}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - outside
    assert packages <= set(LAYERS), f"not placed in a layer: {sorted(packages - set(LAYERS))}"
