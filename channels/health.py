"""The health of every polled source (:class:`~kartabl.models.PollerState`), written by the
poller runner (:mod:`channels.runner`) and read by ``kartabl status`` and ``/readyz``.

Each function is one short transaction of its own: the runner never holds a database
transaction open across a round trip to the source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.db import dialect_insert
from kartabl.models import PollerState, utcnow

log = logging.getLogger(__name__)
_installed: set[int] = set()  # the registries that have the collector (by id)
_installed_guard = threading.Lock()


def _row(session: Session, name: str) -> PollerState:
    # Insert-if-missing that two processes may race on safely.
    session.execute(
        dialect_insert(session)(PollerState)
        .values(name=name, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = session.get(PollerState, name, populate_existing=True)
    assert row is not None
    return row


def record_ok(sf: sessionmaker[Session], name: str) -> datetime | None:
    """A pass succeeded. Returns when the outage that this ends began (None: there was none)."""
    with sf() as session:
        row = _row(session, name)
        was = row.failing_since
        row.last_ok_at, row.failing_since, row.last_error = utcnow(), None, None
        session.commit()
        return was


def record_failure(sf: sessionmaker[Session], name: str, error: str) -> datetime:
    """The source failed. Returns when the current outage began."""
    with sf() as session:
        row = _row(session, name)
        if row.failing_since is None:
            row.failing_since = utcnow()
        row.last_error = error[:2000]
        since = row.failing_since
        session.commit()
        return since


def failing(session: Session, prefix: str = "") -> list[dict[str, Any]]:
    """The sources in an outage now (JSON-ready), those named ``prefix...`` only if given;
    ``name`` without the prefix."""
    query = (select(PollerState.name, PollerState.failing_since, PollerState.last_error)
             .where(PollerState.failing_since.is_not(None)).order_by(PollerState.name))
    if prefix:
        query = query.where(PollerState.name.startswith(prefix, autoescape=True))
    return [
        {"name": n.removeprefix(prefix), "failing_since": since.isoformat() if since else None,
         "last_error": err}
        for n, since, err in session.execute(query)
    ]


class HealthMetrics(Collector):
    """``kartabl_poller_failing{source}`` (1 in an outage, else 0) and
    ``kartabl_poller_last_ok_timestamp_seconds{source}``, read from ``poller_state`` at each
    scrape: every poller process of the fleet writes that table, so the web's ``/metrics``
    shows them all (a poller process serves no metrics of its own)."""

    def __init__(self, sessions: Callable[[], sessionmaker[Session]]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        failing = GaugeMetricFamily("kartabl_poller_failing", "1 while the polled source is "
                                    "in an outage (poller_state), else 0", labels=["source"])
        last_ok = GaugeMetricFamily("kartabl_poller_last_ok_timestamp_seconds", "When the "
                                    "polled source last had a good pass (Unix time)",
                                    labels=["source"])
        try:
            with self._sessions()() as session:
                rows = session.execute(select(PollerState.name, PollerState.failing_since,
                                              PollerState.last_ok_at)).all()
        except Exception as exc:  # a scrape must answer: the database has /readyz
            log.debug("poller health not available for metrics: %s", exc)
            rows = []
        for name, since, ok_at in sorted(rows):
            failing.add_metric([name], 1.0 if since is not None else 0.0)
            if ok_at is not None:
                last_ok.add_metric([name], ok_at.timestamp())
        yield failing
        yield last_ok


def install_metrics(sessions: Callable[[], sessionmaker[Session]],
                    registry: CollectorRegistry = REGISTRY) -> None:
    """Serve the pollers' health from ``registry`` (once per registry)."""
    with _installed_guard:
        if id(registry) not in _installed:
            registry.register(HealthMetrics(sessions))
            _installed.add(id(registry))
