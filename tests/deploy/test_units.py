"""deploy/: the systemd units pass ``systemd-analyze verify``, and the units and the
supervisord programs run every Procfile process with restart on exit and a stop timeout
that lets a worker finish its longest task."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("kartabl*"))
KARTABL = Path(sys.executable).with_name("kartabl")


def _procfile() -> dict[str, str]:
    """Procfile name -> the kartabl sub-command (``worker``, ``email poll``, ...)."""
    kinds = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if m := re.match(r"^(\w+):\s*kartabl\s+([a-z]+(?:\s+poll)?)", line):
            kinds[m[1]] = m[2]
    return kinds


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name)
    return parser


def _programs() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=None)
    parser.read(DEPLOY / "supervisor" / "kartabl.conf")
    return parser


def test_the_procfile_is_what_is_shipped():
    assert set(_procfile()) == {"web", "worker", "scheduler", "email", "telegram", "sms",
                                "rubika"}


@pytest.mark.parametrize("kind", sorted(_procfile()))
def test_every_process_restarts_on_exit_and_stops_gracefully(kind):
    sub = _procfile()[kind]
    # systemd: the same command, restarted on any exit, never given up on, settings from
    # the environment file, SIGTERM and a stop timeout
    unit = _unit(f"kartabl-{kind}.service")
    service = unit["Service"]
    assert f"/bin/kartabl {sub}" in service["ExecStart"]
    assert service["Restart"] == "always"
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert service["EnvironmentFile"] == "/etc/kartabl/kartabl.env"
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
    # supervisord: the same
    program = _programs()[f"program:kartabl-{kind}"]
    assert f"/bin/kartabl {sub}" in program["command"]
    assert program["autorestart"] == "true" and int(program["startretries"]) >= 1000
    assert program["stopsignal"] == "TERM"
    assert program["stopwaitsecs"] == service["TimeoutStopSec"]


def test_a_stopping_worker_may_finish_its_longest_send():
    # The longest send is below KARTABL_SENDING_STALE_S (checked at start-up), and the
    # workers wait that long for their tasks (workers/supervisor.py): the process manager
    # must wait longer before it kills, and signal only `kartabl worker` (a second SIGTERM
    # to a dramatiq worker process drops its tasks)
    stale = Settings().sending_stale_s
    service = _unit("kartabl-worker.service")["Service"]
    assert int(service["TimeoutStopSec"]) > stale
    assert service["KillMode"] == "mixed"
    program = _programs()["program:kartabl-worker"]
    assert int(program["stopwaitsecs"]) > stale
    assert program.get("stopasgroup", "false") == "false"


def test_the_units_verify(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The shipped units, pointed at this checkout (verify checks that the command exists)
    env = tmp_path / "kartabl.env"
    env.write_text("KARTABL_BROKER=redis\n")
    for unit in UNITS:
        text = (unit.read_text()
                .replace("/opt/kartabl/.venv/bin/kartabl", str(KARTABL))
                .replace("/opt/kartabl", str(ROOT))
                .replace("/etc/kartabl/kartabl.env", str(env)))
        (tmp_path / unit.name).write_text(text)
    done = subprocess.run([analyze, "verify", "--man=no",
                           *(str(tmp_path / u.name) for u in UNITS)],
                          capture_output=True, text=True, timeout=120)
    # Any complaint (an unknown key, a missing command) fails, not only errors
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr)
    # And the target starts every service
    target = _unit("kartabl.target")
    wanted = " ".join(target.get("Unit", "Wants", fallback="").split())
    assert {f"kartabl-{k}.service" for k in _procfile()} <= set(wanted.split())
