"""The ``Procfile`` fleet as separate OS processes, started as a process manager would.

Each line of the ``Procfile`` runs as ``bash -c "exec <command>"`` in a process group of its
own, with the venv's ``bin`` first on ``PATH`` and the environment given, its output to a log
file. The fleet tests (``tests/fleet``) and ``make chaos`` (``bench/chaos.py``) drive it:
nothing here knows what the processes do, only how to start, find in the log, stop and kill
them. A process that forgot to install something at start shows up here, and nowhere in an
in-process test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """The process types of a Procfile (name -> command), comments and blanks skipped."""
    lines: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        m = _LINE.match(raw.strip())
        if m and not raw.lstrip().startswith("#"):
            lines[m.group(1)] = m.group(2)
    return lines


def channels_toml(*, smtp_port: int, bot_api_url: str, bot_token: str, sms_url: str,
                  sms_key: str, sms_line: str, sms_secret: str, bot_name: str = "shop",
                  webhook_secret: str = "", api_callback_url: str = "",
                  api_secret: str = "") -> str:
    """The channels file of a fleet on the stand-ins: an SMTP mailbox, one Telegram bot (a
    webhook bot when ``webhook_secret`` is given, else polling) and a Kavenegar line with its
    callback and polling. Timeouts are short, and every send's worst case (SMTP 8 x 1 + 2 s,
    Telegram 10 x 4 x 0.25 s, SMS 2 x (0.5 + 1.5) s) stays below a 12 s sending_stale_s.
    With ``api_callback_url`` and ``api_secret``, a generic API channel ``fleet-api`` too
    (its worst case: 2 x (0.5 + 1.5) s)."""
    mode = f'"webhook"\nwebhook_secret = "{webhook_secret}"' if webhook_secret else '"polling"'
    return f"""
[[email.mailboxes]]
name = "support"
address = "support@kartabl.example"
team = "support"

[email.mailboxes.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
timeout_s = 1
data_timeout_s = 2

[[telegram.bots]]
name = "{bot_name}"
kind = "telegram"
token = "{bot_token}"
base_url = "{bot_api_url}"
mode = {mode}
team = "support"
timeout_s = 0.25
poll_timeout_s = 1

[sms]
api_key = "{sms_key}"
base_url = "{sms_url}"
line = "{sms_line}"
team = "support"
webhook_secret = "{sms_secret}"
poll = true
poll_interval_s = 0.5
connect_timeout_s = 0.5
timeout_s = 1.5
rate_per_s = 50
""" + (f"""
[[api]]
name = "fleet-api"
secret = "{api_secret}"
callback_url = "{api_callback_url}"
team = "support"
connect_timeout_s = 0.5
timeout_s = 1.5
""" if api_callback_url and api_secret else "")




@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None


class Fleet:
    """Start Procfile lines by name; every process is stopped by :meth:`stop_all`."""

    def __init__(self, env: Mapping[str, str], logdir: Path, *,
                 lines: Mapping[str, str] | None = None) -> None:
        self.lines = dict(lines) if lines is not None else procfile()
        bindir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **env,
                    "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
        self.logdir = logdir
        logdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def start(self, name: str, *, env: Mapping[str, str] | None = None) -> Proc:
        command = self.lines[name]
        n = sum(p.name == name for p in self.procs)
        log_path = self.logdir / f"{name}-{n}.log"
        with log_path.open("ab") as out:
            popen = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=ROOT, env={**self.env, **(env or {})},
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def wait_log(self, proc: Proc, text: str | Callable[[str], bool], timeout_s: float = 30
                 ) -> str:
        """Wait until ``proc``'s log contains ``text`` (or the predicate holds); its log."""
        check = (lambda log: text in log) if isinstance(text, str) else text
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = proc.log()
            if check(log):
                return log
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{log[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{proc.name}: no {text!r} within {timeout_s} s:\n{proc.log()[-4000:]}")

    def stop(self, proc: Proc, timeout_s: float = 30) -> int | None:
        """SIGTERM to the process itself (dramatiq's master, uvicorn ...), as a process
        manager does; SIGKILL to its whole group after ``timeout_s``."""
        if proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        self._reap_group(proc)
        return proc.popen.returncode

    def kill(self, proc: Proc) -> None:
        """SIGKILL the process and everything it started."""
        self._reap_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(10)

    def _reap_group(self, proc: Proc) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self, timeout_s: float = 30) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            self._reap_group(proc)

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path.name}) ---\n{p.log()[-tail:]}"
                         for p in self.procs)
