"""The tests' fork server (tests/forkserver.py) starts real ``kartabl`` processes: each
with the environment, argv, working directory and log it was given, booting from
``boot.cli.main`` as a fresh process does."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import inspect

from kartabl.db import make_engine
from tests.forkserver import ForkServer


def test_a_forked_kartabl_gets_its_own_environment_and_argv(
    forkserver: ForkServer, tmp_path: Path,
) -> None:
    db = tmp_path / "forked.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")}
    env["KARTABL_DATABASE_URL"] = f"sqlite:///{db}"
    log = tmp_path / "migrate.log"
    child = forkserver.spawn(["migrate"], env, tmp_path, log)
    assert child.wait(timeout=60), log.read_text(errors="replace")
    # The database its environment named was migrated, and nothing else was touched
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert {"conversation", "message", "reply"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_forked_kartabl_that_fails_says_so_in_its_log(
    forkserver: ForkServer, tmp_path: Path,
) -> None:
    log = tmp_path / "bad.log"
    child = forkserver.spawn(["no-such-command"], dict(os.environ), tmp_path, log)
    assert child.wait(timeout=60)
    assert "no-such-command" in log.read_text(errors="replace")  # argparse's refusal
