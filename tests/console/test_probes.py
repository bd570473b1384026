import pytest
from fastapi.testclient import TestClient

import config.settings
from kartabl import db as kdb
from kartabl import ingest
from kartabl.messages import InboundMessage


@pytest.fixture
def client(settings):
    from console.app import create_app
    from workers.broker import setup_broker

    setup_broker(settings)
    with TestClient(create_app()) as c:
        yield c


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_ok_when_database_and_broker_answer(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_503_when_database_is_down(client, monkeypatch):
    # Given a database URL nobody listens on
    monkeypatch.setenv("KARTABL_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    config.settings.get_settings.cache_clear()
    kdb.reset()
    # Then the readiness probe says why it is not ready
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"].startswith("error")


def test_status_and_overview_count_messages(client, session):
    ingest.store(
        session, InboundMessage(channel="sms", external_id="1", sender="+989121112233", text="x")
    )
    st = client.get("/api/v1/status").json()
    assert st["messages_in"] == 1
    page = client.get("/")
    assert page.status_code == 200 and 'dir="rtl"' in page.text


def test_metrics_and_openapi(client):
    assert "kartabl_messages_ingested_total" in client.get("/metrics").text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/readyz", "/api/v1/status"} <= set(paths)


def test_startup_freezes_what_the_import_made_for_the_collector() -> None:
    # The long-lived import graph is kept out of full collections (console.app._lifespan):
    # without it a full collection walked 120,000 objects in the middle of a request.
    import gc

    from console.app import create_app

    gc.unfreeze()
    try:
        with TestClient(create_app()):
            assert gc.get_freeze_count() > 50_000
    finally:
        gc.unfreeze()
