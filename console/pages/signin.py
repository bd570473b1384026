"""Sign-in pages: login, logout, the language switch, password reset links, the account
page (sessions, language). The rules live in :mod:`console.auth`.

A refused sign-in (wrong credentials, too many attempts, a form from another site) answers
303 to ``/login`` (post/redirect/get: a reload submits nothing and counts no attempt). There
is no session yet to keep the reason in (:mod:`console.flash`), so it waits in a short-lived
cookie signed with the secret key (:data:`NOTICE_COOKIE`, path ``/login``): a code from a
fixed list, told in the reader's language, and the username as typed (never the password;
not for a form from another site, whose username is the other site's). A forged or stale
cookie is ignored, and no query parameter can make the page say anything.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Annotated, Final
from urllib.parse import urlencode, urlsplit

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
from console.refusals import refusal_text
from console.templating import TEMPLATES, request_locale
from kartabl.errors import InputError
from kartabl.models import ApiToken, WebSession, utcnow

router = APIRouter(include_in_schema=False)
HOME = "/queues"
TOKEN_DAYS = 90  # as the API's default: tokens expire
NOTICE_COOKIE: Final = "kartabl_signin"
NOTICE_S: Final = 300  # how long a refused sign-in's notice is shown (a reload included)
_NOTICE_PURPOSE: Final = b"kartabl sign-in notice v1"
# What the page says for each code (its catalog key).
NOTICES: Final = {"login_wrong": "error.login_wrong", "login_limited": "error.login_limited",
                  "csrf": "http.csrf"}


def _notice_mac(settings: Settings, body: bytes) -> str:
    key = hmac.new(settings.secret_key.get_secret_value().encode(), _NOTICE_PURPOSE,
                   hashlib.sha256).digest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _notice_cookie(settings: Settings, code: str, username: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps(
        {"c": code, "u": username[:200], "t": int(time.time())},
        separators=(",", ":")).encode()).decode()
    return f"{body}.{_notice_mac(settings, body.encode())}"


def _read_notice(settings: Settings, value: str | None) -> tuple[str, str] | None:
    """(code, username) from a notice cookie this server signed lately, else None."""
    if not value or len(value) > 2000:
        return None
    body, _, mac = value.rpartition(".")
    # compare_digest raises TypeError on non-ASCII text, and a cookie is the browser's to send
    if not value.isascii() or not hmac.compare_digest(_notice_mac(settings, body.encode()), mac):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
        code, username, at = str(data["c"]), str(data["u"]), int(data["t"])
    except (ValueError, KeyError, TypeError):
        return None
    if code not in NOTICES or not 0 <= time.time() - at <= NOTICE_S:
        return None
    return code, username


def _refused(request: Request, settings: Settings, code: str, username: str,
             target: str) -> Response:
    response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    response.set_cookie(NOTICE_COOKIE, _notice_cookie(settings, code, username),
                        max_age=NOTICE_S, httponly=True, secure=settings.cookie_secure,
                        samesite="lax", path="/login")
    return response


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
def login_form(request: Request, settings: AppSettings, next: str = HOME) -> Response:
    notice = _read_notice(settings, request.cookies.get(NOTICE_COOKIE))
    error, username = None, ""
    if notice is not None:
        code, username = notice
        error = gettext(request_locale(request), NOTICES[code])  # a fixed sentence
    return TEMPLATES.TemplateResponse(
        request, "login.html", {"next": safe_next(next), "error": error, "username": username,
                                "refused": notice[0] if notice else ""}
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
    if not _same_origin(request):  # login CSRF: its username is the other site's, not kept
        return _refused(request, settings, "csrf", "", target)
    try:
        person = auth.authenticate(db, username, password, client_ip(request),
                                   settings=settings)
    except auth.LoginRefused as exc:
        db.commit()  # the failed attempt counts towards the limit
        code = "login_limited" if exc.code == "login_limited" else "login_wrong"
        return _refused(request, settings, code, username, target)
    token = auth.start_session(
        db, person, settings=settings, ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    db.commit()
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(NOTICE_COOKIE, path="/login")
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
