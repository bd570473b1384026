"""A uvicorn server started inside a test process must leave logging alone: uvicorn's
default ``log_config`` reconfigures the ``uvicorn.*`` loggers to stop propagating, so
pytest's log capture stops seeing them for the rest of the xdist worker, and an unrelated
test that reads the access log fails when it happens to run after (seen 2026-12-04)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def _configs_without_log_config(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "Config"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "uvicorn"
                and not any(k.arg == "log_config" and isinstance(k.value, ast.Constant)
                            and k.value.value is None for k in node.keywords)):
            lines.append(node.lineno)
    return lines


def test_every_in_process_uvicorn_keeps_the_logging_config() -> None:
    offenders = {str(p.relative_to(TESTS)): lines for p in sorted(TESTS.rglob("*.py"))
                 if (lines := _configs_without_log_config(p))}
    assert offenders == {}, "pass log_config=None to uvicorn.Config"


def test_the_check_sees_a_default_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import uvicorn\nuvicorn.Config(app, port=0, log_level='warning')\n")
    good = tmp_path / "good.py"
    good.write_text("import uvicorn\nuvicorn.Config(app, port=0, log_config=None)\n")
    assert _configs_without_log_config(bad) == [2] and _configs_without_log_config(good) == []
