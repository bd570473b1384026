"""deploy/supervisor/kartabl.conf for real: supervisord runs the whole fleet on PostgreSQL and
Redis; a SIGKILLed ``kartabl worker`` is restarted and routes again; a stop is graceful."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from supervisor.xmlrpc import SupervisorTransport

from bench.ports import free_port
from bench.worker_kill import children
from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Channel
from tests.workers.worker_helpers import needs_router, unrouted, wait_until
from workers.broker import setup_broker

pytestmark = [pytest.mark.fleet, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROGRAMS = ["web", "worker", "scheduler", "email", "telegram", "sms", "rubika"]




def _config(tmp_path: Path, env_file: Path, port: int) -> Path:
    """The shipped file, pointed at this checkout and this test's files, under a
    supervisord.conf of the test's own (as /etc/supervisor/supervisord.conf includes it)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    shipped = (ROOT / "deploy" / "supervisor" / "kartabl.conf").read_text()
    ours = (shipped.replace("/opt/kartabl/.venv/bin/kartabl", str(BIN / "kartabl"))
            .replace("/etc/kartabl/kartabl.env", str(env_file))
            .replace("directory=/opt/kartabl", f"directory={ROOT}")
            .replace("/var/log/kartabl/", f"{logs}/")
            .replace("--port 8000", f"--port {port}"))
    ours = re.sub(r"(?m)^user=kartabl\n", "", ours)  # the test runs as whoever runs it
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""
[unix_http_server]
file={tmp_path}/supervisor.sock

[supervisord]
logfile={tmp_path}/supervisord.log
pidfile={tmp_path}/supervisord.pid
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{tmp_path}/supervisor.sock
""" + ours)
    return conf


def _ctl(conf: Path, *args: str, timeout_s: float = 60) -> str:
    done = subprocess.run([str(BIN / "supervisorctl"), "-c", str(conf), *args],
                          capture_output=True, text=True, timeout=timeout_s)
    return done.stdout


def _processes(conf: Path) -> list[dict[str, Any]]:
    """supervisord's own view of its processes, over its XML-RPC socket (what supervisorctl
    status asks), from this process: the waits below ask many times a second, and a
    supervisorctl process per question took CPU from the fleet booting on 2 cores."""
    transport = SupervisorTransport(None, None, f"unix://{conf.parent}/supervisor.sock")
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    try:
        return list(proxy.supervisor.getAllProcessInfo())
    except (OSError, xmlrpc.client.Fault):  # not listening yet
        return []


def _states(conf: Path) -> dict[str, str]:
    return {p["name"].removeprefix("kartabl-"): p["statename"] for p in _processes(conf)
            if p["group"] == "kartabl"}


def _pid(conf: Path, program: str) -> int:
    return next((int(p["pid"]) for p in _processes(conf)
                 if p["group"] == "kartabl" and p["name"] == f"kartabl-{program}"), 0)


def _logs(tmp_path: Path) -> Callable[[], str]:
    def read() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted((tmp_path / "logs").glob("*.log")))
    return read


def test_supervisord_runs_the_fleet_and_restarts_a_killed_worker(settings, db, tmp_path):
    needs_router()
    client = redis.Redis.from_url(settings.redis_url)
    env_file = tmp_path / "kartabl.env"
    env_file.write_text("\n".join([
        f"KARTABL_DATABASE_URL={settings.database_url}",
        "KARTABL_BROKER=redis",
        f"KARTABL_REDIS_URL={settings.redis_url}",
        f"KARTABL_REDIS_NAMESPACE={settings.redis_namespace}",
        f"KARTABL_ROUTING_FILE={settings.routing_file}",
        "KARTABL_SECRET_KEY=test-only-secret",
        "KARTABL_WORKER_PROCESSES=1",
        "KARTABL_WORKER_THREADS=2",
        "KARTABL_LOG_FORMAT=console",
    ]) + "\n")
    port = free_port()
    conf = _config(tmp_path, env_file, port)
    logs = _logs(tmp_path)
    # The supervisord process gets none of the test's KARTABL_* variables: only the
    # environment file configures the fleet, as in production
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")}
    sup = subprocess.Popen([str(BIN / "supervisord"), "-c", str(conf)], env=clean_env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        # Given the whole fleet under supervisord, from the shipped configuration
        wait_until(lambda: _states(conf) == dict.fromkeys(PROGRAMS, "RUNNING"), 180,
                   "every program running")
        wait_until(lambda: _answers(port), 120, "the web console")
        setup_broker(settings.model_copy(update={"broker": "redis"}))
        _store(db, "before")
        wait_until(lambda: unrouted(db) == 0, 120, "routing by the worker")

        # When `kartabl worker` itself is SIGKILLed (its dramatiq workers go with it:
        # they get SIGTERM when it dies)
        first = _pid(conf, "worker")
        masters = children(first)
        os.kill(first, signal.SIGKILL)
        # Then supervisord starts it again at once, and the fleet routes again
        wait_until(lambda: _pid(conf, "worker") not in (0, first), 60, "a new worker")
        assert _states(conf)["worker"] in ("STARTING", "RUNNING")
        wait_until(lambda: not any(Path(f"/proc/{m}").exists() for m in masters), 60,
                   "the old dramatiq workers to stop")
        _store(db, "after")
        wait_until(lambda: unrouted(db) == 0, 120, "routing after the restart")

        # When every program is stopped, each stops by itself (no SIGKILL), the worker
        # after its dramatiq workers (the timeouts here only allow for a loaded machine)
        _ctl(conf, "stop", "kartabl:*", timeout_s=300)  # returns once all have stopped
        wait_until(lambda: set(_states(conf).values()) == {"STOPPED"}, 180, "a clean stop")
        stops = re.findall(r"stopped: kartabl-\w+ \(([^)]*)\)",
                           (tmp_path / "supervisord.log").read_text())
        assert len(stops) == len(PROGRAMS) and not any("SIGKILL" in s for s in stops), stops
        assert "worker 0 stopped" in logs()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs()}") from None
    finally:
        sup.send_signal(signal.SIGTERM)
        try:
            sup.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)
        keys = list(client.scan_iter(match=f"{settings.redis_namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _store(db, external_id: str) -> None:
    msg = InboundMessage(channel=Channel.SMS, external_id=external_id, sender="+989121234567",
                         text="سلام")
    with db() as session:
        ingest.store_many(session, [msg])
