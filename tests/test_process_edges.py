"""Configuration is read at the process edges and handed down, never fetched from inside.

Only ``config/`` reads the environment, and the process-wide fetchers
(``get_settings``, ``get_channels``, ``get_routing``: cached reads of the environment and
the files it names) are called only where a process starts: the ``boot`` composition and
the few entry points a library calls by name (listed in :data:`EDGES`, each with its
reason). Everything else takes settings, channels and routing as arguments, or from the
app's state, so a test or a second configuration can hand in its own.

The checker is run on a small tree of its own first, so a checker that no longer sees a
fetch fails too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layers import LAYERS, ROOT, modules

FETCHERS = frozenset({"get_settings", "get_channels", "get_routing"})
ENVIRONMENT = frozenset({"environ", "getenv", "environb", "putenv"})
# Entry points that a library imports or calls by name, so nothing can hand them anything.
EDGES: dict[str, str] = {
    "workers.actors": "dramatiq runs the actors: route_messages reads the routing there",
    "workers.supervisor": "its main() is the `kartabl worker` process's own start",
    "console.app": "uvicorn imports the module-level `app` (console.app:app)",
    "kartabl.migrations.env": "Alembic runs env.py; `alembic upgrade` by hand needs the URL",
}


def fetches(path: Path) -> list[tuple[int, str]]:
    """The lines of ``path`` that import a fetcher or touch the environment."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("config"):
            found += [(node.lineno, a.name) for a in node.names if a.name in FETCHERS]
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, a.name) for a in node.names if a.name in ENVIRONMENT]
        elif isinstance(node, ast.Attribute) and node.attr in FETCHERS | ENVIRONMENT:
            found.append((node.lineno, node.attr))
    return found


def offenders(root: Path, packages: list[str], edges: dict[str, str]) -> list[str]:
    allowed = ("config", "boot")
    return [f"{name}:{line} {what}"
            for name, path in modules(root, packages).items()
            if not name.startswith(allowed) and name not in edges
            for line, what in fetches(path)]


def test_the_checker_sees_a_fetch_and_an_environment_read(tmp_path: Path) -> None:
    files = {
        "config/settings.py": "import os\ndef get_settings():\n    return os.environ\n",
        "router/rules.py": "def f():\n    from config.settings import get_settings\n",
        "router/env.py": "import os\nX = os.getenv('X')\n",
        "router/call.py": "import config.routing\nR = config.routing.get_routing()\n",
        "router/fine.py": "from config.settings import Settings\n",
        "boot/start.py": "from config.settings import get_settings\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert offenders(tmp_path, ["config", "router", "boot"], {}) == [
        "router.call:2 get_routing", "router.env:2 getenv", "router.rules:2 get_settings"]


def test_configuration_is_fetched_only_at_process_edges() -> None:
    found = offenders(ROOT, sorted(LAYERS), EDGES)
    assert not found, ("fetched away from a process edge (take it as an argument):\n  "
                       + "\n  ".join(found))


def test_every_listed_edge_still_exists_and_fetches() -> None:
    """An edge that stopped fetching leaves the list, so the list never hides a new one."""
    known = modules(ROOT, sorted(LAYERS))
    assert {e for e in EDGES if e in known and fetches(known[e])} == set(EDGES)
