"""FastAPI application: probes, metrics, the JSON status API and the overview page.

- ``/healthz``: the process is alive (no dependencies checked: a liveness probe must not
  restart a web process because the database blinked).
- ``/readyz``: the database answers and the broker answers; 503 otherwise, with the reason.
  Its body also counts quarantined mail and lists the mailboxes failing (informational).
- ``/metrics``: Prometheus text format.
- ``/api/v1/status``: queue depths and backlog counts (what ``kartabl status`` prints).
- ``/``: an overview of the cartable by state, refreshed live with htmx. It shows counts
  only; conversation pages need sign-in and arrive with the console (issue 5).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from console.overview import overview_counts
from kartabl import db

log = logging.getLogger(__name__)
TEMPLATES = Jinja2Templates(
    directory=str(Path(__file__).resolve().parent.parent / "templates" / "console")
)


def _broker_ping() -> tuple[bool, str]:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = dramatiq.get_broker()
    if isinstance(broker, RedisBroker):
        try:
            broker.client.ping()
        except Exception as exc:  # any failure means not ready; the reason is reported
            return False, f"redis: {type(exc).__name__}"
        return True, "redis"
    return True, type(broker).__name__


def _email_info() -> dict[str, Any]:
    """Informational only: bad mail kept aside, or a mailbox out of reach, must not take
    the web out of service (the console is how people see and fix it)."""
    from channels.email.state import failing_mailboxes, quarantined_count

    try:
        with db.session_factory()() as session:
            return {
                "quarantined": quarantined_count(session),
                "mailboxes_failing": failing_mailboxes(session),
            }
    except Exception as exc:
        return {"error": type(exc).__name__}


def create_app() -> FastAPI:
    app = FastAPI(
        title="Kartabl",
        version="0.1.0",
        description="Omnichannel support inbox. JSON API for integrations and probes.",
    )

    from channels.webhooks import routers

    for name, router in routers().items():
        app.include_router(router, prefix=f"/webhooks/{name}", tags=["webhooks"])

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "not ready"}})
    def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        ok = True
        try:
            with db.session_factory()() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            ok, checks["database"] = False, f"error: {type(exc).__name__}"
        broker_ok, broker_name = _broker_ping()
        checks["broker"] = "ok" if broker_ok else f"error: {broker_name}"
        ok = ok and broker_ok
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
        if checks["database"] == "ok":
            body["email"] = _email_info()
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["probes"], response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status", tags=["status"])
    def status() -> dict[str, Any]:
        with db.session_factory()() as session:
            return overview_counts(session)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request) -> HTMLResponse:
        with db.session_factory()() as session:
            counts = overview_counts(session)
        partial = request.headers.get("HX-Request") == "true"
        return TEMPLATES.TemplateResponse(
            request, "overview_counts.html" if partial else "overview.html", {"c": counts}
        )

    return app


app = create_app()
