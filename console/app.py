"""FastAPI application: probes, metrics, the JSON status API and the overview page.

- ``/healthz``: the process is alive (no dependencies checked: a liveness probe must not
  restart a web process because the database blinked).
- ``/readyz``: the database answers and the broker answers; 503 otherwise. Anonymous
  callers (probes) learn only ready or not; a signed-in session also gets the checks, the
  quarantined mail count and the mailboxes failing (informational: names are not public).
- ``/metrics``: Prometheus text format; with ``KARTABL_METRICS_TOKEN`` set, only for
  ``Authorization: Bearer <that token>``.
- ``/api/v1/status``: queue depths and backlog counts (what ``kartabl status`` prints), for
  a signed-in person or a token with the ``read`` scope.
- ``/``: an overview of the cartable by state, refreshed live with htmx (counts only),
  behind sign-in.
- ``/live``: the signed-in person's live events, server-sent (:mod:`console.live`); the
  pages update in place on them, with no polling.
- the console's pages (:mod:`console.pages`) and the JSON API (:mod:`console.api`), both
  behind sign-in (:mod:`console.deps`).

Every response carries security headers (a strict Content-Security-Policy: scripts only
from this origin, no inline script; no framing; no MIME sniffing). Workflow errors map to
4xx in one place (:func:`console.http_errors.http_status`): JSON under ``/api/``, an HTML
page elsewhere.
"""

from __future__ import annotations

import gc
import hmac
import importlib
import json
import logging
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from channels.webchat.limits import Limits
from config.channels import ChannelsConfig, channels_of
from config.routing import RoutingConfig
from config.routing import load as load_routing
from config.settings import Settings, get_settings
from console import auth
from console.boundary import TokenBoundary
from console.deps import (
    SAFE_METHODS,
    LoginRequired,
    Principal,
    app_settings,
    get_db,
    page_principal,
    require_scope,
)
from console.flash import refused
from console.http_errors import http_status
from console.i18n import gettext
from console.live import Hub
from console.overview import overview_counts
from console.refusals import refusal, refusal_text
from console.templating import TEMPLATES, request_locale
from kartabl import db
from kartabl.errors import KartablError, NotFound, PermissionDenied
from workers.broker import ping as broker_ping
from workers.broker import window_limiters

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Swagger UI and ReDoc load their own scripts; they get FastAPI's defaults.
_NO_CSP = ("/docs", "/redoc")


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/webhooks/", "/widget/")) or path in ("/healthz", "/readyz")


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(KartablError)
    def workflow_error(request: Request, exc: KartablError) -> Response:
        status = http_status(exc)
        if _wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)  # English
        p = getattr(request.state, "principal", None)
        if (request.method not in SAFE_METHODS and p is not None and p.via == "session"
                and not isinstance(exc, NotFound | PermissionDenied)):
            # A refused form: post/redirect/get, so a reload submits nothing. (Not a 404 or
            # a 403: they answer for the address or the reader, as for an item outside the
            # reader's scope, and store nothing, not even the refusal.)
            with db.session_factory()() as session:
                return refused(session, p, exc, "/refused")
        return TEMPLATES.TemplateResponse(request, "error.html", {
            "title": gettext(request_locale(request), f"http.{status}"),
            "detail": refusal_text(request_locale(request), refusal(exc)),
        }, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_json(request) or exc.status_code == 405:
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        # The page's own words for the status; the English detail stays for the API.
        loc = request_locale(request)
        detail = gettext(loc, "http.csrf") if exc.status_code == 403 and "CSRF" in str(
            exc.detail) else gettext(loc, f"http.detail_{exc.status_code}")
        return TEMPLATES.TemplateResponse(
            request, "error.html", {"title": gettext(loc, f"http.{exc.status_code}"),
                                    "detail": detail, "technical": str(exc.detail)},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own 422, ASCII-escaped: it echoes the input, and a lone surrogate (a
        # valid JSON escape, not encodable as UTF-8) would otherwise turn it into a 500.
        body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(LoginRequired)
    def login_required(request: Request, exc: LoginRequired) -> Response:
        target = "/login?next=" + quote(exc.next_path, safe="")
        if request.headers.get("HX-Request") == "true":
            # htmx follows HX-Redirect with a full page load (a 303 would swap the login
            # page into a fragment).
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


def _console_routers() -> list[APIRouter]:
    """Every ``router`` of the modules in :mod:`console.api` and :mod:`console.pages`, so a
    new page or API module is one new file (sorted: the order is stable)."""
    import console.api
    import console.pages

    found = []
    for package in (console.api, console.pages):
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            router = getattr(module, "router", None)
            if isinstance(router, APIRouter):
                found.append(router)
    return found


def _install_security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith(_NO_CSP):
            h.setdefault("Content-Security-Policy", CSP)
        if request.url.path.startswith(("/api/", "/account", "/reset", "/login")):
            h.setdefault("Cache-Control", "no-store")
        return response


def _email_info() -> dict[str, Any]:
    """Informational only: bad mail kept aside, or a mailbox out of reach, must not take
    the web out of service (the console is how people see and fix it)."""
    from channels import health
    from channels.email.state import failing_mailboxes, quarantined_count

    try:
        with db.session_factory()() as session:
            return {
                "quarantined": quarantined_count(session),
                "mailboxes_failing": failing_mailboxes(session),
                "pollers_failing": health.failing(session),  # every polled source
            }
    except Exception as exc:
        return {"error": type(exc).__name__}


def _session_signed_in(request: Request) -> bool:
    """Does the request carry a live session cookie? (Never raises: a probe must answer.)"""
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if not cookie:
        return False
    try:
        with db.session_factory()() as session:
            return auth.session_person(session, cookie,
                                       settings=app_settings(request)) is not None
    except Exception:  # the database blinked since the check: no details, still an answer
        return False


def _metrics_allowed(request: Request) -> bool:
    token = app_settings(request).metrics_token
    if token is None or not token.get_secret_value():  # unset (or set empty): open
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.get_secret_value().encode())


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # What is alive once the app is imported (modules, FastAPI's and SQLAlchemy's
    # machinery: over 120,000 objects) lives as long as the process. Frozen, the cyclic
    # collector stops walking it on every full collection: measured on a long conversation
    # page, a full collection went from 125-160 ms to 13-17 ms, the whole p95 tail.
    gc.freeze()
    hub: Hub = app.state.live
    await hub.start()
    try:
        yield
    finally:
        await hub.stop()
        waker = getattr(app.state, "webchat_waker", None)  # started by the first widget stream
        if waker is not None:
            await waker.close()


def attach(app: FastAPI, settings: Settings, *, channels: ChannelsConfig | None = None,
           routing: RoutingConfig | None = None) -> None:
    """Everything of ``app`` that depends on the settings: its ``state``, which the routes
    read (never a closure over the settings: an app can be pointed at other ones)."""
    app.state.settings = settings
    app.state.channels = channels if channels is not None else channels_of(settings)
    app.state.routing = routing if routing is not None else load_routing(settings.routing_file)
    app.state.live = Hub(idle_s=settings.live_poll_s)  # started by the lifespan (console.live)
    app.state.webchat_limits = Limits(window_limiters(settings))  # the widget's rate limits


def create_app(settings: Settings | None = None, *, channels: ChannelsConfig | None = None,
               routing: RoutingConfig | None = None) -> FastAPI:
    """The console. ``settings``, ``channels`` and ``routing``: by default the process's, as
    the files its settings name (read here, once: the app factory is the web process's
    edge); the routes take them from ``app.state``."""
    app = FastAPI(
        title="Kartabl",
        version="0.1.0",
        description="Omnichannel support inbox. JSON API for integrations and probes.",
        lifespan=_lifespan,
    )
    attach(app, settings or get_settings(), channels=channels, routing=routing)

    from channels import health
    from channels.webhooks import routers

    health.install_metrics(db.session_factory)  # every poller's health on /metrics
    for name, router in routers().items():
        app.include_router(router, prefix=f"/webhooks/{name}", tags=["webhooks"])
    from channels.webchat.routes import router as widget_router  # the website chat widget

    app.include_router(widget_router, prefix="/widget")

    for router in _console_routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_error_pages(app)
    app.add_middleware(TokenBoundary)  # inside the security headers: its 401 gets them too
    _install_security_headers(app)

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "not ready"}})
    def readyz(request: Request) -> JSONResponse:
        checks: dict[str, Any] = {}
        ok = True
        try:
            with db.session_factory()() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            ok, checks["database"] = False, f"error: {type(exc).__name__}"
        broker_ok, broker_name = broker_ping()
        checks["broker"] = "ok" if broker_ok else f"error: {broker_name}"
        ok = ok and broker_ok
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable"}
        if not ok:
            log.warning("not ready: %s", checks)  # the reason, for whoever runs the fleet
        if checks["database"] == "ok" and _session_signed_in(request):
            body |= {"checks": checks, "email": _email_info()}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["probes"], response_class=Response,
             responses={401: {"description": "KARTABL_METRICS_TOKEN is set: send it"}})
    def metrics(request: Request) -> Response:
        if app_settings(request).metrics_address:  # on a listener of its own (boot/web.py)
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if not _metrics_allowed(request):
            return JSONResponse({"detail": "send the metrics token (KARTABL_METRICS_TOKEN) as "
                                 "'Authorization: Bearer ...'"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status", tags=["status"])
    def status(
        _p: Principal = Depends(require_scope("read")), session: Session = Depends(get_db)
    ) -> dict[str, Any]:
        # The request's own session (the one that signed it in): a second one would wait
        # for the first's SQLite lock.
        return overview_counts(session)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(
        request: Request, _p: Principal = Depends(page_principal),
        session: Session = Depends(get_db),
    ) -> HTMLResponse:
        counts = overview_counts(session)
        partial = request.headers.get("HX-Request") == "true"
        return TEMPLATES.TemplateResponse(
            request, "overview_counts.html" if partial else "overview.html", {"c": counts}
        )

    return app


app = create_app()
