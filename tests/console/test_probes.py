import pytest
from fastapi.testclient import TestClient

import config.settings
from channels import health
from console import auth
from kartabl import db as kdb
from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Role
from tests import factories as f


@pytest.fixture
def client(settings):
    from console.app import create_app
    from workers.broker import setup_broker

    setup_broker(settings)
    with TestClient(create_app()) as c:
        yield c


def signed_in(client: TestClient, session) -> TestClient:
    """``client`` with a live session cookie of a coordinator."""
    person = f.person(session, "maryam", Role.COORDINATOR)
    client.cookies.set(auth.SESSION_COOKIE, auth.start_session(
        session, person, settings=config.settings.get_settings()))
    session.commit()
    return client


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_tells_anonymous_callers_only_ready_or_not(client, db, session):
    # Given a mailbox in an outage, whose name is nobody's business outside
    health.record_failure(db, "email:secret-box", "ConnectionRefusedError: refused")
    # Then a probe learns only that the web is ready
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}
    # And a signed-in person gets the checks and the mailboxes failing
    body = signed_in(client, session).get("/readyz").json()
    assert body["checks"] == {"database": "ok", "broker": "ok"}
    assert [m["name"] for m in body["email"]["mailboxes_failing"]] == ["secret-box"]


def test_readyz_503_when_database_is_down(client, monkeypatch):
    # Given a database URL nobody listens on
    monkeypatch.setenv("KARTABL_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    config.settings.get_settings.cache_clear()
    kdb.configure(config.settings.get_settings())
    # Then the readiness probe says it is not ready (the reason goes to the log)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable"}


def test_status_and_overview_need_sign_in_and_count_messages(client, session):
    ingest.store(
        session, InboundMessage(channel="sms", external_id="1", sender="+989121112233", text="x")
    )
    assert client.get("/api/v1/status").status_code == 401
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    st = signed_in(client, session).get("/api/v1/status").json()
    assert st["messages_in"] == 1
    page = client.get("/")
    assert page.status_code == 200 and 'dir="rtl"' in page.text


def test_metrics_token(client, monkeypatch):
    from console.app import create_app

    assert "kartabl_messages_ingested_total" in client.get("/metrics").text  # unset: open
    monkeypatch.setenv("KARTABL_METRICS_TOKEN", "scrape-me-please")
    config.settings.get_settings.cache_clear()
    # The app reads its settings when it is made (the web process's start)
    client = TestClient(create_app())
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-not"})
    assert wrong.status_code == 401 and "kartabl_" not in wrong.text
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert ok.status_code == 200 and "kartabl_messages_ingested_total" in ok.text


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
