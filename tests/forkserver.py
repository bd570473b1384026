"""A fork server for the tests' ``kartabl`` processes: each is still an OS process of its
own, running ``boot.cli.main`` with its own argv, environment, working directory and log,
but forked from a parent that has already imported the libraries and Kartabl's modules.

Why: a ``kartabl web`` spends about 1.5 s of CPU before it answers, most of it importing
SQLAlchemy, FastAPI, pydantic, redis and our own modules. The browser tests start one per
test, about 70 in all, on a machine whose two cores the whole suite keeps busy: a second
saved per start is a second of CPU that every other test gets back.

What is never imported before the fork, because it is where a process's configuration
comes in: ``console.app`` (its module builds the app from the settings) and
``workers.actors`` (its actors bind to the broker of the moment). The module checks that
nothing it preloads pulls either in. Every other module reads no settings at import time
(the settings are read once, at the process's edge), so the child boots exactly as a
process started from scratch does, from ``boot.cli.main`` on.

The server reads one JSON request per line on stdin (argv, env, cwd, log) and answers the
child's pid; it reaps its children as they end. :class:`ForkServer` is the client side.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
NEVER_BEFORE_THE_FORK = ("console.app", "workers.actors")
PRELOAD_PACKAGES = ("kartabl", "config", "console", "channels", "responders", "router")
PRELOAD_LIBRARIES = (
    "sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql",
    "psycopg", "fastapi", "fastapi.responses", "starlette.staticfiles", "pydantic_settings",
    "redis", "redis.asyncio", "dramatiq", "dramatiq.brokers.redis", "dramatiq.brokers.stub",
    "jinja2", "uvicorn", "uvicorn.main", "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on", "httpx", "nh3", "argon2", "prometheus_client", "imapclient",
    "alembic.command", "multipart", "structlog",
)


def _preload() -> None:
    for name in PRELOAD_LIBRARIES:
        with contextlib.suppress(ImportError):  # an optional one not installed
            importlib.import_module(name)
    for package in PRELOAD_PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, package + "."):
            if info.name in NEVER_BEFORE_THE_FORK or ".standin" in info.name:
                continue
            importlib.import_module(info.name)
            leaked = [m for m in NEVER_BEFORE_THE_FORK if m in sys.modules]
            if leaked:
                raise RuntimeError(f"preloading {info.name} imported {leaked}")
    for name in ("boot", "boot.cli", "boot.kinds", "boot.web"):
        importlib.import_module(name)
    leaked = [m for m in NEVER_BEFORE_THE_FORK if m in sys.modules]
    if leaked:
        raise RuntimeError(f"the preload imported {leaked}")


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the requested ``kartabl`` process; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own session: a signal to the server's group does not reach it
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["kartabl", *request["argv"]]
        from boot.cli import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(_signum: int, _frame: object) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def serve() -> None:
    _preload()
    signal.signal(signal.SIGCHLD, _reap)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()


class Forked:
    """A process the fork server started: not our child, so it is watched by its pid (the
    fork server reaps it the moment it ends)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie not reaped yet is gone too
            return Path(f"/proc/{self.pid}/stat").read_text().split(")")[1].split()[0] != "Z"
        except OSError:
            return False

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Whether it ended within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (uvicorn drains and exits), then SIGKILL after ``timeout``."""
        self.signal(signal.SIGTERM)
        if not self.wait(timeout):
            self.signal(signal.SIGKILL)
            self.wait(timeout)


class ForkServer:
    """The client: ``start()``, then ``spawn(argv, env, cwd, log)`` per process, ``close()``."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> ForkServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver"], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready = self._stdout().readline()
        if ready != "ready\n":
            raise RuntimeError(f"the fork server did not start (it said {ready!r})")
        return self

    def _stdout(self) -> IO[str]:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Forked:
        assert self._proc is not None and self._proc.stdin is not None, "start() first"
        request = {"argv": argv, "env": env, "cwd": str(cwd), "log": str(log)}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        answer = self._stdout().readline()
        if not answer:
            raise RuntimeError(f"the fork server ended (exit {self._proc.poll()})")
        return Forked(int(json.loads(answer)["pid"]))

    def close(self) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # it leaves its loop and exits; its children live on
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


if __name__ == "__main__":
    serve()
