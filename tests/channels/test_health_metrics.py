"""The pollers' health, written by the runner in poller_state, on the web's /metrics (every
poller process of the fleet writes the table, the web reads it at each scrape) and in
`kartabl status`."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from boot.cli import app
from channels import health
from kartabl.models import PollerState


def values(text: str, name: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(
        rf'^{name}{{source="([^"]+)"}} (\S+)$', text, re.M)}


def test_each_source_is_failing_or_not_with_its_last_good_pass(
        db: sessionmaker[Session]) -> None:
    registry = CollectorRegistry()
    health.install_metrics(lambda: db, registry)
    health.install_metrics(lambda: db, registry)  # once per registry
    # Given a mailbox that had a good pass, and an SMS line in an outage since its first try
    health.record_ok(db, "email:support")
    health.record_failure(db, "sms:10008663", "Kavenegar unreachable")
    text = generate_latest(registry).decode()
    # Then each source is listed, 1 for the one failing
    assert values(text, "kartabl_poller_failing") == {"email:support": 0.0,
                                                      "sms:10008663": 1.0}
    with db() as s:
        row = s.get(PollerState, "email:support")
        assert row is not None and row.last_ok_at is not None
        ok_at = row.last_ok_at.timestamp()
    assert values(text, "kartabl_poller_last_ok_timestamp_seconds") == {
        "email:support": ok_at}
    # When the line recovers, it is 0
    health.record_ok(db, "sms:10008663")
    text = generate_latest(registry).decode()
    assert values(text, "kartabl_poller_failing")["sms:10008663"] == 0.0


def test_the_web_serves_them(settings, db: sessionmaker[Session]) -> None:
    from console.app import create_app
    from workers.broker import setup_broker

    setup_broker(settings)
    health.record_failure(db, "telegram:shop", "502 Bad Gateway")
    with TestClient(create_app()) as client:
        text = client.get("/metrics").text
    assert values(text, "kartabl_poller_failing")["telegram:shop"] == 1.0


def test_a_database_that_does_not_answer_leaves_the_scrape_working(tmp_path) -> None:
    from sqlalchemy import create_engine

    registry = CollectorRegistry()
    down = sessionmaker(create_engine(f"sqlite:///{tmp_path}/gone/x.db"))
    health.install_metrics(lambda: down, registry)
    text = generate_latest(registry).decode()
    assert "# TYPE kartabl_poller_failing gauge" in text
    assert values(text, "kartabl_poller_failing") == {}


def test_kartabl_status_lists_every_polled_source_in_an_outage(settings, db) -> None:
    # Given a bot in an outage and a mailbox that is fine
    health.record_failure(db, "telegram:shop", "502 Bad Gateway")
    health.record_ok(db, "email:support")
    # Then `kartabl status` lists the bot, with its error, and not the mailbox
    r = CliRunner().invoke(app, ["status", "--json"])
    assert r.exit_code == 0, r.output
    [down] = json.loads(r.output)["pollers_failing"]
    assert down["name"] == "telegram:shop" and down["last_error"] == "502 Bad Gateway"
    assert down["failing_since"]
