"""The fleet as deployed: every ``Procfile`` line as its own OS process, on a PostgreSQL
database and a Redis namespace of their own, against the Kavenegar and Bot API stand-ins and
a local SMTP server (in this test process, reached over real connections).

The processes are started once per test session (``_fleet``), on the one pytest-xdist worker
that runs the "fleet" group (they take 7-20 s to boot and stop on this machine, and xdist
does not run a group's modules back to back); each test works with customers of its own.
For each test, this process plays the people at the console (``deployed``): it drafts and
approves replies through :mod:`kartabl.workflow` on the fleet's database, and its enqueues go
to the fleet's Redis, as the web process's would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

import config.routing
import config.settings
from bench.fleet import Fleet, Proc, channels_toml
from bench.ports import free_port
from channels.api.standin import ApiSystemStandin
from channels.sms.standin import KavenegarStandin
from channels.telegram.standin import BotApiStandin
from kartabl import db as kdb
from kartabl import reply_tokens, service_clock, tasks
from kartabl.migrate import upgrade
from kartabl.models import Role
from tests.conftest import PG_ADMIN, REDIS_URL, RUN_ID, _unavailable
from tests.factories import person, team
from tests.responders import smtp_server as smtp
from workers.broker import setup_broker

SMS_KEY = "fleet-kavenegar-key"
BOT_TOKEN = "4242:fleet-bot-token"
SMS_LINE = "10008663"
SMS_SECRET = "fleet-sms-callback-secret"
API_SECRET = "fleet-api-secret-0123456789abcdef-01234"  # the generic API channel fleet-api
# Short enough for a test, long enough for every send's worst case (checked at start-up):
# SMTP 8 x 1 + 2 = 10 s; Telegram 10 x 4 x 0.25 = 10 s; SMS 2 x (0.5 + 1.5) = 4 s.
SENDING_STALE_S = 12
SWEEP_INTERVAL_S = 1


@dataclass
class Deployed:
    fleet: Fleet
    procs: dict[str, Proc]
    db: sessionmaker[Session]
    kavenegar: KavenegarStandin
    bot_api: BotApiStandin
    smtp: smtp.SmtpServer
    web_url: str
    settings: config.settings.Settings
    api_system: ApiSystemStandin | None = None  # the external system of fleet-api

    def logs(self) -> str:
        return self.fleet.logs()


def _channels_file(path: Path, kavenegar: KavenegarStandin, bot_api: BotApiStandin,
                   mail: smtp.SmtpServer, api_system: ApiSystemStandin) -> Path:
    path.write_text(channels_toml(
        smtp_port=mail.port, bot_api_url=bot_api.base_url, bot_token=BOT_TOKEN,
        sms_url=kavenegar.base_url, sms_key=SMS_KEY, sms_line=SMS_LINE,
        sms_secret=SMS_SECRET, api_callback_url=api_system.callback_url,
        api_secret=API_SECRET), encoding="utf-8")
    return path


@dataclass
class _Fleet:
    fleet: Fleet
    procs: dict[str, Proc]
    env: dict[str, str]
    kavenegar: KavenegarStandin
    bot_api: BotApiStandin
    smtp: smtp.SmtpServer
    web_url: str
    api_system: ApiSystemStandin


@pytest.fixture(scope="session")
def _fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Fleet]:
    """The processes and the stand-ins, once per session; no global state of this process
    changes here (see :func:`deployed`)."""
    tmp = tmp_path_factory.mktemp("fleet")
    name = f"kartabl_fleet_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (psycopg.OperationalError, redis.RedisError) as exc:
        _unavailable("PostgreSQL or Redis", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    kavenegar = KavenegarStandin(api_key=SMS_KEY).start()
    bot_api = BotApiStandin().start()
    bot_api.add_bot(BOT_TOKEN, "fleet_bot")
    mail = smtp.start()
    port = free_port()
    # the external system of the API channel reports each reply it gets delivered, at once
    api_system = ApiSystemStandin(API_SECRET, channel="fleet-api", deliver_after_s=0.1).start()
    api_system.kartabl_url = f"http://127.0.0.1:{port}"
    env = {
        "KARTABL_DATABASE_URL": url.replace("postgresql://", "postgresql+psycopg://", 1),
        "KARTABL_BROKER": "redis",
        "KARTABL_REDIS_URL": REDIS_URL,
        "KARTABL_REDIS_NAMESPACE": f"kt-fleet-{RUN_ID}-{uuid.uuid4().hex[:6]}",
        "KARTABL_SECRET_KEY": "fleet-test-secret-key",
        "KARTABL_CHANNELS_FILE": str(_channels_file(tmp / "channels.toml", kavenegar, bot_api,
                                                    mail, api_system)),
        "KARTABL_ROUTING_FILE": str(config.settings.DEFAULT_ROUTING_FILE),
        "KARTABL_SWEEP_INTERVAL_S": str(SWEEP_INTERVAL_S),
        "KARTABL_SWEEP_GRACE_S": "2",
        "KARTABL_SENDING_STALE_S": str(SENDING_STALE_S),
        "KARTABL_WORKER_PROCESSES": "1",
        "KARTABL_WORKER_THREADS": "4",
        "KARTABL_LOG_FORMAT": "json",
        "KARTABL_LOG_LEVEL": "INFO",
        "KARTABL_COOKIE_SECURE": "false",
        "PORT": str(port),
    }
    engine = kdb.make_engine(env["KARTABL_DATABASE_URL"], pool_size=1)
    with sessionmaker(engine)() as s:  # the people at the console
        support = team(s, "support")
        person(s, "fleet-agent", teams=[support])
        person(s, "fleet-coordinator", Role.COORDINATOR)
        s.commit()
    engine.dispose()
    kavenegar.callback_url = f"http://127.0.0.1:{port}/webhooks/sms/receive/{SMS_SECRET}"

    fleet = Fleet(env, tmp / "logs")
    procs = {line: fleet.start(line) for line in fleet.lines}
    try:
        for proc in procs.values():
            fleet.wait_log(proc, "booted ", 60)
        yield _Fleet(fleet, procs, env, kavenegar, bot_api, mail, f"http://127.0.0.1:{port}",
                     api_system)
    finally:
        fleet.stop_all()
        api_system.stop()
        mail.controller.stop()
        bot_api.stop()
        kavenegar.stop()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{env['KARTABL_REDIS_NAMESPACE']}:*", count=1000))
        if keys:
            client.delete(*keys)
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def deployed(_fleet: _Fleet) -> Iterator[Deployed]:
    """This test process as the console of the fleet: its settings, database and broker are
    the fleet's for the test (approvals enqueue to the fleet's Redis), and put back after."""
    mp = pytest.MonkeyPatch()
    for key, value in _fleet.env.items():
        if key.startswith("KARTABL_"):
            mp.setenv(key, value)
    config.settings.get_settings.cache_clear()
    config.routing.get_routing.cache_clear()
    kdb.reset()
    settings = config.settings.get_settings()
    factory = kdb.configure(settings)
    service_clock.configure(settings, config.routing.get_routing())
    reply_tokens.configure(settings.secret_key)  # it approves: signs the fleet's tokens
    setup_broker(settings)
    try:
        yield Deployed(_fleet.fleet, _fleet.procs, factory, _fleet.kavenegar, _fleet.bot_api,
                       _fleet.smtp, _fleet.web_url, settings, api_system=_fleet.api_system)
    finally:
        tasks.set_enqueuer(None)
        kdb.deconfigure()
        mp.undo()
        config.settings.get_settings.cache_clear()
        config.routing.get_routing.cache_clear()
