"""The widget's public endpoints, under ``/widget/<public id>/`` (mounted by the console app).

- ``GET loader.js``: the launcher (at most 5 KB gzipped), with the widget's public settings.
- ``GET chat.js``: the chat itself (at most 40 KB gzipped), loaded on the first click.
- ``POST session``: a visitor token (new, or the one given if it is ours), and the site's
  signed identity when there is one; answers the last sequence number of the visitor's log.
- ``POST messages``: one visitor message with its client id; stored once however often it
  is retried; answers its sequence number.
- ``GET events``: the visitor's log as server-sent events, from ``Last-Event-ID``.

No console session is read here, and none is needed: the only credential is the visitor
token (the ``X-Kartabl-Visitor`` header, or the ``visitor`` query parameter of the stream,
or the HttpOnly cookie). CORS answers only the widget's allowed origins, and a request from
any other origin (an ``Origin`` header not in the list, or none on a POST) is
refused with 403 before anything is read or stored, so another site cannot post in a
visitor's name with their cookie. The answers to the allowed origins carry
``Access-Control-Allow-Origin: <that origin>`` and ``Vary: Origin``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.webchat.identity import (
    Contact,
    VisitorTokens,
    contact_of,
    identity_ok,
    new_visitor_key,
)
from channels.webchat.inbound import set_contact, store_message
from channels.webchat.limits import Limits
from channels.webchat.offline import widget_offline
from channels.webchat.rating import MAX_COMMENT, rate
from channels.webchat.stream import Waker, stream
from channels.webhooks import app_channels, read_capped
from config.webchat import WebchatConfig
from kartabl import db
from kartabl.logs import hide_pattern
from kartabl.models import WebchatVisitor, Widget, utcnow

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# The stream's token rides in its URL (EventSource sends no headers), and access logs print
# URLs: the token reads the visitor's chat, so it is masked there.
hide_pattern(re.compile(r"([?&]visitor=)[^&\s\"]+"), r"\1***",
             loggers=("uvicorn.access", "uvicorn.error"))
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "kartabl_visitor"
HEADER = "x-kartabl-visitor"
MAX_BODY = 64_000
ALLOWED_HEADERS = "content-type, x-kartabl-visitor, last-event-id"


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    locale: str = "fa"
    identity: str = Field(default="", max_length=320)
    identity_hmac: str = Field(default="", max_length=200)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    seq: int = Field(ge=1, le=10**11)  # the "closed" event rated
    score: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=MAX_COMMENT)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    client_id: str = Field(max_length=64)
    text: str = Field(max_length=200_000)  # the configured cap is checked after, with a 413
    name: str = Field(default="", max_length=200)
    contact: str = Field(default="", max_length=320)  # the pre-chat form's, unverified
    website: str = Field(default="", max_length=2000)  # the honeypot: people leave it empty


def sessions() -> sessionmaker[Session]:
    return db.session_factory()


def config_of(request: Request) -> WebchatConfig:
    return app_channels(request).webchat


def tokens_of(request: Request) -> VisitorTokens:
    state = request.app.state
    if getattr(state, "webchat_tokens", None) is None:
        state.webchat_tokens = VisitorTokens(state.settings.secret_key)
    tokens: VisitorTokens = state.webchat_tokens
    return tokens


def waker_of(request: Request) -> Waker:
    state = request.app.state
    if getattr(state, "webchat_waker", None) is None:
        state.webchat_waker = Waker(db.session_factory())
    waker: Waker = state.webchat_waker
    return waker


def limits_of(request: Request) -> Limits:
    limits: Limits = request.app.state.webchat_limits
    return limits


def client_address(request: Request, config: WebchatConfig) -> str:
    if config.trust_forwarded_for:
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        if hops and hops[-1]:
            return hops[-1][:64]
    return (request.client.host if request.client else "")[:64]


def _widget(session: Session, public_id: str) -> Widget:
    widget = session.scalar(select(Widget).where(Widget.public_id == public_id[:40],
                                                 Widget.active.is_(True)))
    if widget is None:
        raise HTTPException(404, "no such widget")
    return widget


def _origin_allowed(widget: Widget, origin: str | None) -> bool:
    return bool(origin) and origin in (widget.origins or [])


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin"}


def _checked(session: Session, public_id: str, request: Request, *,
             none_ok: bool = False) -> tuple[Widget, str]:
    """The widget, and the request's origin, which must be one of the widget's (403).
    ``none_ok``: a request without an Origin (a same-origin GET, or not a browser) is
    let through; it gets no CORS headers, so no other site's page can read the answer."""
    widget = _widget(session, public_id)
    origin = request.headers.get("origin", "")
    if not (none_ok and not origin) and not _origin_allowed(widget, origin):
        log.info("webchat %s: a request from origin %.100r refused", public_id, origin)
        raise HTTPException(403, "origin not allowed for this widget")
    return widget, origin


def _visitor(session: Session, widget: Widget, request: Request, tokens: VisitorTokens,
             given: str | None = None) -> WebchatVisitor | None:
    """The visitor the request's token names, if it is one of this widget's."""
    for token in (given, request.headers.get(HEADER), request.cookies.get(COOKIE)):
        key = tokens.key_of(token)
        if key is not None:
            visitor = session.scalar(select(WebchatVisitor).where(
                WebchatVisitor.key == key, WebchatVisitor.widget_id == widget.id))
            if visitor is not None:
                return visitor
    return None


def _chat_of(session: Session, widget: Widget, current: WebchatVisitor | None,
             verified: Contact | None) -> WebchatVisitor | None:
    """Which chat the browser continues (None: a new one). A signed-in customer gets their
    own chat, on any browser (the site vouched for them); an anonymous browser keeps its
    anonymous chat. A browser's chat never passes between people: signed out, or another
    person signed in (a shared computer), is a chat of its own; an anonymous chat with
    messages does not become a signed-in customer's (what they see would be another's)."""
    if verified is None:
        return current if current is not None and current.identity_address is None else None
    if current is not None and current.identity_address == verified.address:
        return current
    theirs = session.scalar(
        select(WebchatVisitor).where(WebchatVisitor.widget_id == widget.id,
                                     WebchatVisitor.identity_address == verified.address)
        .order_by(WebchatVisitor.last_seen_at.desc()).limit(1))
    if theirs is not None:
        return theirs
    if current is not None and current.identity_address is None and current.last_seq == 0:
        return current  # a fresh anonymous browser signs in before writing anything
    return None


def _set_cookie(response: Response, request: Request, token: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, token, max_age=180 * 86400, path="/widget", httponly=True,
                        secure=secure, samesite="none" if secure else "lax")


async def _origin_first(sessions: sessionmaker[Session], public_id: str,
                        request: Request) -> None:
    """The origin checked before the body is read: another site's POST is a 403 whatever
    it sends (not a 400 for its JSON, nor a 413 for its size)."""

    def check() -> None:
        with sessions() as session:
            _checked(session, public_id, request)

    await run_in_threadpool(check)


async def _json(request: Request) -> Any:
    body = await read_capped(request, MAX_BODY)
    try:
        return json.loads(body or b"{}")
    except ValueError as exc:
        raise HTTPException(400, f"not JSON: {exc}") from None


@router.options("/{public_id}/session")
@router.options("/{public_id}/messages")
@router.options("/{public_id}/events")
@router.options("/{public_id}/rating")
def preflight(public_id: str, request: Request,
              sessions: Annotated[sessionmaker[Session], Depends(sessions)]) -> Response:
    with sessions() as session:
        widget = _widget(session, public_id)
    origin = request.headers.get("origin", "")
    if not _origin_allowed(widget, origin):
        return Response(status_code=403)
    return Response(status_code=204, headers={
        **_cors(origin), "Access-Control-Allow-Methods": "GET, POST",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS, "Access-Control-Max-Age": "600"})


def _script(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def public_settings(widget: Widget) -> dict[str, Any]:
    return {"id": widget.public_id, "color": widget.color, "text_color": widget.text_color,
            "greeting": {"fa": widget.greeting_fa, "en": widget.greeting_en},
            "offline": {"fa": widget.offline_fa, "en": widget.offline_en},
            "ask_phone": widget.ask_phone, "ask_email": widget.ask_email}


@router.get("/{public_id}/loader.js")
def loader(public_id: str,
           sessions: Annotated[sessionmaker[Session], Depends(sessions)]) -> Response:
    with sessions() as session:
        settings = public_settings(_widget(session, public_id))
    # "<" escaped: the settings are the admin's text, and this is a script
    text = _script("loader.js").replace(
        "__KARTABL_WIDGET__", json.dumps(settings, ensure_ascii=False).replace("<", "\\u003c"))
    return Response(text, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300"})


@router.get("/{public_id}/chat.js")
def chat_script(public_id: str) -> Response:
    return Response(_script("chat.js"), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300"})


@router.post("/{public_id}/session")
async def open_session(
    public_id: str, request: Request,
    sessions: Annotated[sessionmaker[Session], Depends(sessions)],
    config: Annotated[WebchatConfig, Depends(config_of)],
    tokens: Annotated[VisitorTokens, Depends(tokens_of)],
    limits: Annotated[Limits, Depends(limits_of)],
) -> Response:
    await _origin_first(sessions, public_id, request)
    raw = await _json(request)
    try:
        body = SessionIn.model_validate(raw)
    except ValueError:
        raise HTTPException(400, "not a session request") from None
    ip = client_address(request, config)

    def run() -> tuple[str, int, str, bool, bool]:
        with sessions() as session:
            widget, origin = _checked(session, public_id, request)
            verified = None
            if body.identity or body.identity_hmac:
                # checked before anything is stored; a forgery is refused outright
                if not (body.identity and identity_ok(widget.secret, body.identity,
                                                      body.identity_hmac)):
                    log.warning("webchat %s: an identity with a wrong HMAC refused", public_id)
                    raise HTTPException(403, "identity signature does not match",
                                        headers=_cors(origin))
                try:
                    verified = contact_of(body.identity)
                except ValueError as exc:
                    raise HTTPException(400, f"identity: {exc}", headers=_cors(origin)) from None
            visitor = _chat_of(session, widget, _visitor(session, widget, request, tokens),
                               verified)
            if visitor is None:
                if not limits.allow("visitors-ip", ip, config.visitors_per_ip_per_min):
                    raise HTTPException(429, "too many new visitors from this address",
                                        headers=_cors(origin))
                visitor = WebchatVisitor(widget_id=widget.id, key=new_visitor_key())
                session.add(visitor)
            if verified is not None:
                visitor.identity_kind, visitor.identity_address = verified.kind, verified.address
            visitor.locale = "en" if body.locale == "en" else "fa"
            visitor.last_seen_at = utcnow()
            session.commit()
            return (tokens.sign(visitor.key), visitor.last_seq, origin,
                    widget_offline(session, widget), bool(visitor.contact_address))

    token, last, origin, offline, has_contact = await run_in_threadpool(run)
    # offline: the team is outside its hours; the widget shows the offline text and asks
    # for a contact before the first message (the answer will go there)
    response = JSONResponse({"visitor": token, "last_seq": last, "offline": offline,
                             "has_contact": has_contact}, headers=_cors(origin))
    _set_cookie(response, request, token)
    return response


@router.post("/{public_id}/messages")
async def post_message(
    public_id: str, request: Request,
    sessions: Annotated[sessionmaker[Session], Depends(sessions)],
    config: Annotated[WebchatConfig, Depends(config_of)],
    tokens: Annotated[VisitorTokens, Depends(tokens_of)],
    limits: Annotated[Limits, Depends(limits_of)],
) -> Response:
    await _origin_first(sessions, public_id, request)
    raw = await _json(request)
    ip = client_address(request, config)

    def run() -> tuple[dict[str, Any], str]:
        with sessions() as session:
            widget, origin = _checked(session, public_id, request)

            def no(status: int, detail: str) -> HTTPException:
                # with CORS: the widget may read why (a 413 or a 429 is not retried)
                return HTTPException(status, detail, headers=_cors(origin))

            try:
                body = MessageIn.model_validate(raw)
            except ValueError:
                raise no(400, "not a message: client_id and text") from None
            visitor = _visitor(session, widget, request, tokens)
            if visitor is None:
                raise no(401, "no visitor: open a session first")
            if body.website:
                # A bot filled the hidden field: it is answered as if stored, and dropped.
                log.info("webchat %s: honeypot filled; message dropped", public_id)
                return {"seq": 0, "stored": True}, origin
            text = body.text.replace("\x00", "").strip()  # PostgreSQL refuses NUL
            if not text:
                raise no(400, "an empty message")
            if len(text) > config.max_chars:
                raise no(413, f"a message is at most {config.max_chars} characters")
            if not (limits.allow("msg-ip", ip, config.per_ip_per_min)
                    and limits.allow("msg-visitor", visitor.key, config.per_visitor_per_min)):
                raise no(429, "too many messages; wait a minute")
            if body.contact:
                try:
                    set_contact(visitor, contact_of(body.contact))
                except ValueError as exc:
                    raise no(400, f"contact: {exc}") from None
            elif not visitor.contact_address and not visitor.identity_address \
                    and widget_offline(session, widget):
                # outside hours the answer can only reach them by SMS or email
                raise no(400, "contact: a mobile number or email is needed outside hours")
            visitor.last_seen_at = utcnow()
            try:
                posted = store_message(session, widget, visitor, body.client_id, text,
                                       body.name.replace("\x00", "").strip())
            except ValueError as exc:
                raise no(400, str(exc)) from None
            return {"seq": posted.seq, "stored": True}, origin

    answer, origin = await run_in_threadpool(run)
    return JSONResponse(answer, headers=_cors(origin))


@router.get("/{public_id}/events")
async def events(
    public_id: str, request: Request,
    sessions: Annotated[sessionmaker[Session], Depends(sessions)],
    config: Annotated[WebchatConfig, Depends(config_of)],
    tokens: Annotated[VisitorTokens, Depends(tokens_of)],
    waker: Annotated[Waker, Depends(waker_of)],
    visitor: str = "", last_event_id: str = "",
) -> Response:
    def find() -> tuple[int, str]:
        with sessions() as session:
            widget, origin = _checked(session, public_id, request, none_ok=True)
            found = _visitor(session, widget, request, tokens, given=visitor or None)
            if found is None:
                raise HTTPException(401, "no visitor: open a session first")
            return found.id, origin

    visitor_id, origin = await run_in_threadpool(find)
    given = request.headers.get("last-event-id") or last_event_id or "0"
    after = int(given) if given.isascii() and given.isdigit() and len(given) < 12 else 0
    body = stream(sessions, waker, visitor_id, after, life_s=config.stream_s,
                  heartbeat_s=config.heartbeat_s, poll_s=config.poll_s,
                  disconnected=request.is_disconnected, away_s=config.away_s)
    return StreamingResponse(body, media_type="text/event-stream", headers={
        **(_cors(origin) if origin else {}), "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})


@router.post("/{public_id}/rating")
async def post_rating(
    public_id: str, request: Request,
    sessions: Annotated[sessionmaker[Session], Depends(sessions)],
    config: Annotated[WebchatConfig, Depends(config_of)],
    tokens: Annotated[VisitorTokens, Depends(tokens_of)],
    limits: Annotated[Limits, Depends(limits_of)],
) -> Response:
    """Satisfaction at close (channels.webchat.rating): the visitor's own closed
    conversation, once; the same origin, token and rate checks as a message."""
    raw = await _json(request)
    ip = client_address(request, config)

    def run() -> tuple[int, str, str]:
        with sessions() as session:
            widget, origin = _checked(session, public_id, request)
            try:
                body = RatingIn.model_validate(raw)
            except ValueError:
                raise HTTPException(400, "not a rating: seq, score 1-5, comment of at most "
                                    f"{MAX_COMMENT} characters", headers=_cors(origin)) from None
            visitor = _visitor(session, widget, request, tokens)
            if visitor is None:
                raise HTTPException(401, "no visitor: open a session first",
                                    headers=_cors(origin))
            if not (limits.allow("msg-ip", ip, config.per_ip_per_min)
                    and limits.allow("msg-visitor", visitor.key, config.per_visitor_per_min)):
                raise HTTPException(429, "too many requests; wait a minute",
                                    headers=_cors(origin))
            rated = rate(session, visitor.id, body.seq, body.score, body.comment.strip())
            return rated.status, rated.detail, origin

    status, detail, origin = await run_in_threadpool(run)
    if status != 200:
        raise HTTPException(status, detail, headers=_cors(origin))
    return JSONResponse({"rated": True}, headers=_cors(origin))
