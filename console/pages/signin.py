"""Sign-in pages: login, logout, the language switch, password reset links, the account
page (sessions, language). The rules live in :mod:`console.auth`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from console import auth
from console.deps import AppSettings, PathId, Principal, client_ip, get_db, page_principal
from console.flash import failed_id, recall, refused
from console.i18n import LOCALE_COOKIE, LOCALES, gettext
from console.pages._ui import render
from console.refusals import refusal, refusal_text
from console.templating import TEMPLATES, request_locale
from kartabl.errors import InputError
from kartabl.models import ApiToken, WebSession, utcnow

router = APIRouter(include_in_schema=False)
HOME = "/queues"
TOKEN_DAYS = 90  # as the API's default: tokens expire


def safe_next(value: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://...`` (open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return HOME
    parts = urlsplit(value)
    return HOME if parts.scheme or parts.netloc else value


def _same_origin(request: Request) -> bool:
    """Login CSRF: a cross-site form must not sign the victim in as the attacker. Browsers
    send Origin on POST; a request without one (curl, old clients) is let through."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = HOME) -> Response:
    return TEMPLATES.TemplateResponse(
        request, "login.html", {"next": safe_next(next), "error": None, "username": ""}
    )


def _login_delay(db: Session, username: str, settings: Settings) -> float:
    try:
        return auth.login_delay(db, username, settings=settings)
    finally:
        db.rollback()  # no transaction stays open while the sign-in waits


async def _slow_down(
    username: Annotated[str, Form(max_length=200)], settings: AppSettings,
    db: Session = Depends(get_db),
) -> None:
    """The wait of a username with many failures (:func:`console.auth.login_delay`), on
    the event loop: a waiting sign-in holds no thread of the pool the pages run in."""
    delay = await run_in_threadpool(_login_delay, db, username, settings)
    if delay:
        await asyncio.sleep(delay)


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(_slow_down)])
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    settings: AppSettings,
    next: Annotated[str, Form(max_length=2000)] = HOME,
    db: Session = Depends(get_db),
) -> Response:
    target = safe_next(next)
    if not _same_origin(request):
        return TEMPLATES.TemplateResponse(
            request, "login.html", {"next": target, "username": username,
                                    "error": gettext(request_locale(request), "http.csrf")},
            status_code=403,
        )
    try:
        person = auth.authenticate(db, username, password, client_ip(request),
                                   settings=settings)
    except auth.LoginRefused as exc:
        db.commit()  # the failed attempt counts towards the limit
        # The reason in the reader's words (a refused sign-in is answered here, at /login:
        # the rate limits count each POST, and a reload re-posting it counts once more).
        status = 429 if exc.code == "login_limited" else 400
        reason = refusal_text(request_locale(request), refusal(exc))
        return TEMPLATES.TemplateResponse(
            request, "login.html", {"next": target, "error": reason, "username": username},
            status_code=status,
        )
    token = auth.start_session(
        db, person, settings=settings, ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    db.commit()
    response = RedirectResponse(target, status_code=303)
    s = settings
    response.set_cookie(
        auth.SESSION_COOKIE, token, max_age=int(s.session_hours * 3600), httponly=True,
        secure=s.cookie_secure, samesite="lax", path="/",
    )
    return response


@router.post("/logout")
def logout(
    request: Request, _p: Principal = Depends(page_principal), db: Session = Depends(get_db)
) -> Response:
    auth.end_session(db, request.cookies.get(auth.SESSION_COOKIE))
    db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get("/locale/{locale}")
def choose_locale(locale: str, next: str = "/login") -> Response:
    """Before sign-in only a cookie changes (a GET must not change stored state)."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if locale in LOCALES:
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_form(request: Request, token: str) -> Response:
    return TEMPLATES.TemplateResponse(request, "reset.html", {"error": None, "done": False})


@router.post("/reset/{token}", response_class=HTMLResponse)
def reset(
    request: Request, token: str, password: Annotated[str, Form(max_length=1000)],
    db: Session = Depends(get_db),
) -> Response:
    try:
        auth.consume_password_reset(db, token, password)
    except (InputError, ValueError) as exc:
        db.rollback()
        return TEMPLATES.TemplateResponse(
            request, "reset.html", {"error": str(exc), "done": False}, status_code=400
        )
    db.commit()
    return TEMPLATES.TemplateResponse(request, "reset.html", {"error": None, "done": True})


def _account(
    request: Request, p: Principal, db: Session, message: str = "", *, error: str = "",
    new_token: str = "", status_code: int = 200,
) -> Response:
    flash = recall(db, p, failed_id(request))  # a refused token form (post/redirect/get)
    if flash is not None:
        error = refusal_text(request_locale(request), flash.refusal)
    sessions = db.scalars(
        select(WebSession)
        .where(WebSession.person_id == p.person.id, WebSession.revoked_at.is_(None))
        .order_by(WebSession.id.desc()).limit(50)
    ).all()
    tokens = db.scalars(
        select(ApiToken).where(ApiToken.person_id == p.person.id).order_by(ApiToken.id.desc())
    ).all()
    return render(request, "account.html", {
        "sessions": sessions, "tokens": tokens, "current_session_id": p.session_id,
        "message": message, "error": error, "new_token": new_token,
        "kept": flash.kept if flash is not None else {},
        "scopes": sorted(auth.role_scopes(p.person)), "token_days": TOKEN_DAYS,
    }, status_code=status_code)


@router.get("/account", response_class=HTMLResponse)
def account(
    request: Request, p: Principal = Depends(page_principal), db: Session = Depends(get_db)
) -> Response:
    return _account(request, p, db)


@router.post("/account/locale")
def set_locale(
    locale: Annotated[str, Form()], p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    if locale in LOCALES:
        p.person.locale = locale
        db.commit()
    return RedirectResponse("/account", status_code=303)


@router.post("/account/tokens", response_class=HTMLResponse)
def create_token(
    request: Request, name: Annotated[str, Form(max_length=200)],
    scopes: Annotated[list[str] | None, Form()] = None, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    """A new API token, shown once on the page that answers this POST (never stored)."""
    try:
        new = auth.create_api_token(
            db, p.person, name=name, scopes=list(scopes or []),
            expires_at=utcnow() + timedelta(days=TOKEN_DAYS),
        )
    except InputError as exc:
        return refused(db, p, exc, "/account", {"token_name": name})
    db.commit()
    return _account(request, p, db, new_token=new.token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    token_id: PathId, p: Principal = Depends(page_principal), db: Session = Depends(get_db)
) -> Response:
    auth.revoke_api_token(db, p.person, token_id)
    db.commit()
    return RedirectResponse("/account", status_code=303)


@router.post("/account/sessions/revoke", response_class=HTMLResponse)
def revoke(
    request: Request, scope: Annotated[str, Form()], p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    keep = p.session_id if scope == "others" else None
    n = auth.revoke_sessions(db, p.person, p.person.id, except_id=keep)
    db.commit()
    if keep is None:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response
    return _account(request, p, db, gettext(request_locale(request), "app.revoked", count=n))
