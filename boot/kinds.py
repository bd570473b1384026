"""The one declaration of what each kind of process installs at start.

::

    kind        roles                               parts installed
    web         console                             signing key, database, broker
    worker      actors                              signing key, database, broker, senders
    scheduler   sweep                               signing key, database, broker, senders
    email       email-poll                          database, broker
    telegram    telegram-poll                       database, broker
    sms         sms-poll                            database, broker
    rubika      rubika-poll                         database, broker
    tool        tool (inject, status, dead letters) database, broker
    run         every role above, and the demo      signing key, database, broker, senders

(:data:`KINDS` is the source; ``kartabl compose`` prints this table from it.) A role states
what its code needs: the actors dispatch replies and the sweep reconciles replies left
``sending`` and polls delivery statuses, so both need a sender per channel; the pollers and
the console store messages and enqueue their routing after the commit, so they need the
database and the broker; what signs (sessions, reply tokens) needs a real secret key in
the fleet. :func:`start` installs the union, in order (the secret's check, logs, database,
broker, senders), and logs one ``booted`` line that says what it installed: the fleet tests
read that line from every ``Procfile`` process. What it opened it also closes:
:meth:`Runtime.close` closes the senders (their HTTP clients) when the process stops; each
process kind's entry point calls it (a dramatiq worker process when its worker has stopped:
:func:`start_worker_process`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING

from config.channels import ChannelsConfig, channels_of
from config.settings import Settings, get_settings

if TYPE_CHECKING:
    import dramatiq

log = logging.getLogger("kartabl.boot")


class Part(StrEnum):
    # A real KARTABL_SECRET_KEY in the fleet: it signs sessions, CSRF and reply tokens.
    SIGNING_KEY = "signing key"
    DATABASE = "database"  # the engine and session factory (kartabl.db)
    BROKER = "broker"  # dramatiq's broker and the enqueuer of kartabl.tasks
    SENDERS = "senders"  # one sender per channel (responders.setup)


@dataclass(frozen=True, slots=True)
class Role:
    """Something a process does, with the parts its code uses."""

    name: str
    needs: frozenset[Part]
    why: str


def _role(name: str, why: str, *needs: Part) -> Role:
    return Role(name, frozenset(needs), why)


K, D, B, S = Part.SIGNING_KEY, Part.DATABASE, Part.BROKER, Part.SENDERS
CONSOLE = _role("console", "pages and webhooks store and enqueue (routing, approvals); "
                "sessions and CSRF tokens are signed", K, D, B)
ACTORS = _role("actors", "route_messages (verifies reply tokens) and dispatch_reply (signs "
               "them in Message-IDs): dispatching sends", K, D, B, S)
SWEEP = _role("sweep", "re-enqueues; reconciles 'sending' and polls delivery: asks senders",
              K, D, B, S)
EMAIL_POLL = _role("email-poll", "stores mail, enqueues its routing after the commit", D, B)
TELEGRAM_POLL = _role("telegram-poll", "stores updates, enqueues their routing", D, B)
SMS_POLL = _role("sms-poll", "stores SMS, enqueues their routing", D, B)
RUBIKA_POLL = _role("rubika-poll", "stores Rubika updates, enqueues their routing", D, B)
TOOL = _role("tool", "one-shot commands: inject, status, dead letters", D, B)
DEMO = _role("demo", "drafts and approves replies as demo people", K, D, B, S)


@dataclass(frozen=True, slots=True)
class ProcessKind:
    name: str
    roles: tuple[Role, ...]

    @property
    def parts(self) -> frozenset[Part]:
        return frozenset().union(*(r.needs for r in self.roles))


def _kind(name: str, *roles: Role) -> ProcessKind:
    return ProcessKind(name, roles)


KINDS: dict[str, ProcessKind] = {k.name: k for k in (
    _kind("web", CONSOLE),
    _kind("worker", ACTORS),
    _kind("scheduler", SWEEP),
    _kind("email", EMAIL_POLL),
    _kind("telegram", TELEGRAM_POLL),
    _kind("sms", SMS_POLL),
    _kind("rubika", RUBIKA_POLL),
    _kind("tool", TOOL),
    _kind("run", CONSOLE, ACTORS, SWEEP, EMAIL_POLL, TELEGRAM_POLL, SMS_POLL, RUBIKA_POLL,
          DEMO),
)}


@dataclass
class Runtime:
    """What :func:`start` installed in this process."""

    kind: ProcessKind
    settings: Settings
    broker: dramatiq.Broker | None = None
    senders: dict[str, str] = field(default_factory=dict)  # channel -> the sender's repr
    sandboxed: list[str] = field(default_factory=list)  # channels served by the sandbox
    closed: bool = field(default=False, repr=False)

    def summary(self) -> str:
        parts = sorted(p.value for p in self.kind.parts)
        text = f"booted {self.kind.name}: {', '.join(parts)}"
        if self.senders:
            text += "; senders " + ", ".join(f"{c}={r}" for c, r in sorted(self.senders.items()))
        return text

    def close(self) -> None:
        """Close what :func:`start` opened that outlives a request: the senders. Called once
        the process has stopped using them (its worker and scheduler have stopped); a second
        call does nothing. A sender that fails to close is logged, and the others closed."""
        if self.closed:
            return
        self.closed = True
        if Part.SENDERS not in self.kind.parts:
            return
        from kartabl.outbound import registered

        for channel, sender in sorted(registered().items()):
            try:
                sender.close()
            except Exception:  # stopping anyway: say so, and close the rest
                log.warning("the %s sender did not close cleanly", channel, exc_info=True)
        log.info("senders closed: %s", ", ".join(sorted(self.senders)) or "none")


def start(kind: str, settings: Settings | None = None, *,
          channels: ChannelsConfig | None = None, configure_logs: bool = True,
          prometheus: bool = False) -> Runtime:
    """Install what ``kind`` needs, once, at the start of the process. ``channels`` replaces
    the channels file (the demo's stand-ins); ``configure_logs=False`` keeps the caller's
    logging (tests); ``prometheus`` adds dramatiq's metrics middleware (worker processes)."""
    try:
        pk = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown process kind {kind!r}; known: {', '.join(KINDS)}") from None
    s = settings or get_settings()
    if Part.SIGNING_KEY in pk.parts:
        from kartabl import reply_tokens

        s.check_fleet()  # fail fast: the development key signs nothing in the fleet
        reply_tokens.configure(s.secret_key)
    if configure_logs:
        from kartabl import logs

        logs.configure(s)
    rt = Runtime(pk, s)
    if Part.DATABASE in pk.parts:
        from config.routing import load as load_routing
        from kartabl import db, service_clock

        db.configure(s)
        service_clock.configure(s, load_routing(s.routing_file))
    if Part.BROKER in pk.parts:
        from workers.broker import setup_broker

        rt.broker = setup_broker(s, prometheus=prometheus)
    if Part.SENDERS in pk.parts:
        from kartabl.outbound import registered
        from responders.setup import install_senders
        from workers.broker import rate_limiter

        # The SMS rate is shared by every process through the broker's Redis: workers/
        # makes the limiter, the senders only see the port (kartabl.outbound.RateLimiter).
        rt.sandboxed = install_senders(channels if channels is not None else channels_of(s),
                                       settings=s,
                                       rate_limiter=partial(rate_limiter, s))
        rt.senders = {c: repr(snd) for c, snd in registered().items()}
    log.info(rt.summary(), extra={"data": {"kind": pk.name,
                                           "parts": sorted(p.value for p in pk.parts),
                                           "senders": sorted(rt.senders)}})
    return rt


def start_worker_process(*, prometheus: bool = False) -> Runtime:
    """:func:`start` as a ``worker`` in a dramatiq worker process (:mod:`boot.worker`), with
    its senders closed when the process stops, after its tasks in flight have finished."""
    from workers.broker import OnWorkerShutdown

    runtime = start("worker", prometheus=prometheus)
    assert runtime.broker is not None  # the actors' role needs the broker
    runtime.broker.add_middleware(OnWorkerShutdown(runtime.close))
    return runtime
