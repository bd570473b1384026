"""FastAPI dependencies: the database session of a request and who is asking.

Use them like this::

    @router.post("/api/v1/conversations/{cid}/close")
    def close(cid: int, p: Principal = Depends(require_scope("act")),
              db: Session = Depends(get_db)) -> ...:
        workflow.close(db, p.person, cid); db.commit()

- :func:`get_db` gives one session per request (FastAPI caches it, so the principal's
  person lives in the same session as the handler's rows). The handler commits.
- :func:`principal` signs the request in: ``Authorization: Bearer kt_...`` (an API token,
  narrowed to its scopes, under ``/api/v1`` only: :mod:`console.boundary`) or the session
  cookie (every scope of the person's role). A
  cookie-signed request that changes state (POST, PUT, PATCH, DELETE) must carry the CSRF
  token as the ``X-CSRF-Token`` header or the ``csrf_token`` form field, else 403.
- Unsigned API calls get 401; unsigned page views raise :class:`LoginRequired`, which the
  app turns into a redirect to ``/login``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Literal, cast

from fastapi import Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy, RoutingConfig
from config.settings import Settings
from console import auth
from console.boundary import REFUSAL, token_allowed
from kartabl import db as kdb
from kartabl.models import ApiToken, Person, WebSession

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Ids are 32-bit integers in the database (PostgreSQL ``integer``): a bigger one in a URL is
# a 422 here, not an "integer out of range" (500) from the database.
MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive id.")]


def app_settings(request: Request) -> Settings:
    """The settings the app was made with (:func:`console.app.create_app`, the process's
    edge, reads them once): routes take them from here, never from ``get_settings()``."""
    return cast(Settings, request.app.state.settings)


AppSettings = Annotated[Settings, Depends(app_settings)]


def approval_policy(request: Request) -> ApprovalPolicy:
    """Who may skip review: the routing file's ``[approval]``, as the app read it."""
    return cast(RoutingConfig, request.app.state.routing).approval


Approval = Annotated[ApprovalPolicy, Depends(approval_policy)]


def get_db() -> Iterator[Session]:
    with kdb.session_factory()() as session:
        yield session


@dataclass
class Principal:
    person: Person
    via: Literal["session", "token"]
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(auth.SCOPES))
    session_id: int | None = None
    csrf: str | None = None  # the token pages embed in their forms (sessions only)
    token_id: int | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class LoginRequired(Exception):
    """A page needs a signed-in person; the app redirects to /login?next=<path>."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def client_ip(request: Request) -> str:
    # Behind a proxy, set KARTABL_FORWARDED_ALLOW_IPS (kartabl web passes it to uvicorn) so
    # this is the client's address and not the proxy's (the login rate limits count by it).
    return request.client.host if request.client else "unknown"


async def _csrf_given(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it for the handler's Form() fields
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


def _token_signed_in(db: Session, token: str) -> tuple[ApiToken, Person] | None:
    found = auth.token_person(db, token)
    if found is not None:
        db.commit()  # last_used_at
    return found


def _session_signed_in(db: Session, cookie: str | None, settings: Settings,
                       quiet: bool = False) -> tuple[WebSession, Person] | None:
    found = auth.session_person(db, cookie, settings=settings)
    if found is not None and db.dirty:
        if quiet:  # a background request (a presence beat) is not activity
            db.rollback()
        else:
            db.commit()  # last_seen_at, at most once a minute
    return found


def quiet_session(request: Request) -> None:
    """A route dependency, listed before the principal: signing in through this request
    leaves the session's ``last_seen_at`` alone (an open tab must not keep an idle session
    alive)."""
    request.state.quiet_session = True


async def optional_principal(
    request: Request, db: Session = Depends(get_db)
) -> Principal | None:
    """Who signed this request, or None. Raises 403 on a cookie-signed state change
    without a valid CSRF token, and 401 on a bad bearer token (never falls back to the
    cookie: an integration with a revoked token must see the failure)."""
    # The database work runs in the threadpool, never on the event loop: a query waiting
    # for SQLite's write lock (BEGIN IMMEDIATE) would block the loop, and with it the
    # teardown of the request whose session holds that lock, so each stalled for the busy
    # timeout (30 s); two pages polling at once were enough.
    authz = request.headers.get("authorization", "")
    if authz and not token_allowed(request.url.path):
        # console.boundary.TokenBoundary answers first; this holds should a page ever be
        # reached without it: a page takes a signed-in session only.
        raise HTTPException(401, REFUSAL, headers={"WWW-Authenticate": 'Bearer realm="/api/v1"'})
    if authz:
        scheme, _, token = authz.partition(" ")
        found_token = (await run_in_threadpool(_token_signed_in, db, token.strip())
                       if scheme.lower() == "bearer" else None)
        if found_token is None:
            raise HTTPException(
                401, "the API token is not valid (unknown, revoked or expired)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        row, person = found_token
        request.state.principal = Principal(
            person, "token", frozenset(row.scopes), token_id=row.id
        )
        return request.state.principal
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    settings = app_settings(request)
    quiet = bool(getattr(request.state, "quiet_session", False))
    found = await run_in_threadpool(_session_signed_in, db, cookie, settings, quiet)
    if found is None or cookie is None:
        return None
    web_session, person = found
    if request.method not in SAFE_METHODS and not auth.csrf_ok(
            cookie, await _csrf_given(request), settings=settings):
        raise HTTPException(403, "the CSRF token is missing or wrong; reload the page")
    request.state.principal = Principal(
        person, "session", auth.role_scopes(person), session_id=web_session.id,
        csrf=auth.csrf_token(cookie, settings=settings),
    )
    return request.state.principal


def principal(p: Principal | None = Depends(optional_principal)) -> Principal:
    """A signed-in person, for the JSON API: 401 when nobody is signed in."""
    if p is None:
        raise HTTPException(401, "sign in, or send an API token as 'Authorization: Bearer ...'",
                            headers={"WWW-Authenticate": "Bearer"})
    return p


def require_scope(scope: str) -> Callable[..., Principal]:
    """A signed-in person whose token (if any) carries ``scope``: 403 otherwise."""
    if scope not in auth.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")  # a bug in a route, caught at import

    def dependency(p: Principal = Depends(principal)) -> Principal:
        if not p.allows(scope):
            if p.via == "token":
                raise HTTPException(403, f"this API token lacks the {scope!r} scope")
            raise HTTPException(403, f"your role does not allow this (it needs {scope!r})")
        return p

    return dependency


def page_principal(
    request: Request, p: Principal | None = Depends(optional_principal)
) -> Principal:
    """A signed-in person, for HTML pages: redirects to /login otherwise."""
    if p is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    if p.via != "session":  # a page takes a signed-in session only (console.boundary)
        raise HTTPException(401, REFUSAL, headers={"WWW-Authenticate": 'Bearer realm="/api/v1"'})
    return p
