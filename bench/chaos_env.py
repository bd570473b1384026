"""The deployment ``make chaos`` runs under faults: a PostgreSQL database and a redis-server
of its own, the Kavenegar and Bot API stand-ins, a local SMTP server (aiosmtpd, a dev
dependency), a channels file pointing at them, and every ``Procfile`` line as its own OS
process (:mod:`bench.fleet`), booted as tests/fleet/conftest.py boots them.

The redis-server is private (a free port, no persistence) because the run kills and
restarts it; the shared Redis on 6379 is never touched. The driver (this process) connects
to the database as ``application_name=chaos-driver`` so the PostgreSQL fault spares it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from sqlalchemy.orm import Session, sessionmaker

import config.routing
import config.settings
from bench.fleet import Fleet, Proc, channels_toml
from bench.ports import free_port
from channels.sms.standin import KavenegarStandin
from channels.telegram.standin import BotApiStandin, StandinBot
from kartabl import db as kdb
from kartabl import reply_tokens, service_clock, tasks
from kartabl.migrate import upgrade
from kartabl.models import Person, Role
from tests.factories import person, team
from tests.responders import smtp_server as smtp
from workers.broker import setup_broker

PG_ADMIN = os.environ.get("KARTABL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("KARTABL_CHAOS_REDIS_SERVER", "/usr/bin/redis-server")
DRIVER_APP = "chaos-driver"
SMS_KEY = "chaos-kavenegar-key"
SMS_LINE = "10008663"
SMS_SECRET = "chaos-sms-callback-secret"
BOT_TOKEN = "5151:chaos-bot-token"
BOT = "shop"
TG_SECRET = "chaos-telegram-webhook-secret"
# As tests/fleet: longer than each send's worst case (SMTP 8 x 1 + 2 s; Telegram
# 10 x 4 x 0.25 s; SMS 2 x (0.5 + 1.5) s), short enough for a run of minutes.
SENDING_STALE_S = 12
SWEEP_INTERVAL_S = 1


class PrivateRedis:
    """A redis-server of the run's own, killed (SIGKILL) and restarted on the same port."""

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        self.log = logdir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--daemonize", "no"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class Deployment:
    fleet: Fleet
    procs: dict[str, Proc]
    db: sessionmaker[Session]
    dbname: str
    redis: PrivateRedis
    kavenegar: KavenegarStandin
    bot_api: BotApiStandin
    bot: StandinBot
    smtp: smtp.SmtpServer
    web_url: str
    env: dict[str, str]
    workdir: Path
    worker_processes: int

    def logs(self) -> str:
        return self.fleet.logs()


def _channels_file(path: Path, kavenegar: KavenegarStandin, bot_api: BotApiStandin,
                   mail: smtp.SmtpServer) -> Path:
    path.write_text(channels_toml(
        smtp_port=mail.port, bot_api_url=bot_api.base_url, bot_token=BOT_TOKEN, bot_name=BOT,
        webhook_secret=TG_SECRET, sms_url=kavenegar.base_url, sms_key=SMS_KEY,
        sms_line=SMS_LINE, sms_secret=SMS_SECRET), encoding="utf-8")
    return path


def _seed(factory: sessionmaker[Session]) -> None:
    """The routing file's teams with three agents each (at their default capacity, so some
    conversations wait in triage), and two coordinators: one drafts, the other approves
    (nobody approves their own)."""
    with factory() as s:
        for name in ("support", "billing", "sales"):
            members = [team(s, name)]
            for k in range(3):
                person(s, f"chaos-{name}-{k}", teams=members)
        s.add_all([Person(username="chaos-drafter", role=Role.COORDINATOR),
                   Person(username="chaos-coordinator", role=Role.COORDINATOR)])
        s.commit()


@contextlib.contextmanager
def deployed(keep_logs: bool = False, *, lines: Sequence[str] = (), worker_processes: int = 2
             ) -> Iterator[Deployment]:
    """The deployment, booted (every Procfile line, or only ``lines``: the smoke test
    leaves out the pollers that have nothing to poll); stopped and dropped on exit."""
    workdir = Path(tempfile.mkdtemp(prefix="kartabl-chaos-"))
    name = f"kartabl_chaos_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    saved_env = dict(os.environ)
    private = PrivateRedis(workdir)
    kavenegar = KavenegarStandin(api_key=SMS_KEY).start()
    bot_api = BotApiStandin().start()
    mail = smtp.start()
    fleet: Fleet | None = None
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        private.start()
        bot = bot_api.add_bot(BOT_TOKEN, "chaos_bot")
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        # What Telegram holds after setWebhook: the URL and the secret it sends back.
        bot.webhook_url, bot.webhook_secret = f"{web_url}/webhooks/telegram/{BOT}", TG_SECRET
        kavenegar.callback_url = f"{web_url}/webhooks/sms/receive/{SMS_SECRET}"
        pg_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        env = {
            "KARTABL_DATABASE_URL": pg_url,
            "KARTABL_BROKER": "redis",
            "KARTABL_REDIS_URL": private.url,
            "KARTABL_REDIS_NAMESPACE": f"kt-chaos-{uuid.uuid4().hex[:6]}",
            "KARTABL_SECRET_KEY": "chaos-secret-key",
            "KARTABL_CHANNELS_FILE": str(_channels_file(workdir / "channels.toml", kavenegar,
                                                        bot_api, mail)),
            "KARTABL_ROUTING_FILE": str(config.settings.DEFAULT_ROUTING_FILE),
            "KARTABL_SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S),
            # The scheduler re-enqueues what waited longer than the grace: 2 s (the fleet
            # tests') floods a backlog after a worker outage with duplicate jobs.
            "KARTABL_SWEEP_GRACE_S": "10",
            "KARTABL_SENDING_STALE_S": str(SENDING_STALE_S),
            "KARTABL_WORKER_PROCESSES": str(worker_processes),
            "KARTABL_WORKER_THREADS": "4",
            "KARTABL_LOG_FORMAT": "json",
            "KARTABL_LOG_LEVEL": "INFO",
            "KARTABL_COOKIE_SECURE": "false",
            "PORT": str(port),
        }
        # The driver plays the console (approvals enqueue to the fleet's Redis) under a
        # name of its own, which the PostgreSQL fault spares.
        os.environ.update(env)
        os.environ["KARTABL_DATABASE_URL"] = f"{pg_url}?application_name={DRIVER_APP}"
        config.settings.get_settings.cache_clear()
        config.routing.get_routing.cache_clear()
        kdb.reset()
        settings = config.settings.get_settings()
        factory = kdb.configure(settings)
        service_clock.configure(settings, config.routing.load(settings.routing_file))
        reply_tokens.configure(settings.secret_key)  # it approves: signs the fleet's tokens
        _seed(factory)
        setup_broker(settings)
        fleet = Fleet(env, workdir / "logs")
        procs = {line: fleet.start(line) for line in (lines or fleet.lines)}
        for proc in procs.values():
            fleet.wait_log(proc, "booted ", 90)
        yield Deployment(fleet, procs, factory, name, private, kavenegar, bot_api, bot, mail,
                         web_url, env, workdir, worker_processes)
    finally:
        if fleet is not None:
            fleet.stop_all()
        tasks.set_enqueuer(None)
        kdb.reset()
        os.environ.clear()
        os.environ.update(saved_env)
        config.settings.get_settings.cache_clear()
        config.routing.get_routing.cache_clear()
        mail.controller.stop()
        bot_api.stop()
        kavenegar.stop()
        private.kill()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
