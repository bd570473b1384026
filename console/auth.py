"""Sign-in for the console and the API: passwords, sessions, CSRF tokens, API tokens,
the login rate limit and password resets. No FastAPI here; :mod:`console.deps` wires it in.

Decisions
- **Opaque tokens, stored hashed.** A session cookie, an API token and a reset link carry 32
  random bytes; the tables keep SHA-256 of them, so a stolen database dump signs nobody in.
- **CSRF** is an HMAC of the session token: nothing to store, different for every session,
  and unforgeable without the cookie. Every state change by a cookie-signed request must
  carry it (form field or ``X-CSRF-Token`` header); bearer-token requests need none, as a
  browser never adds the header on its own.
- **Rate limit in the database**, so it holds across every web process of the fleet:
  failures per (username, client address) and per client address within a sliding window
  refuse that address. Failures for a username from every address together only slow its
  sign-ins down (:func:`login_delay`): a limit per username that refused the right password
  let anyone who knew the username keep its owner out (issue 12). A refused attempt does
  not check the password (no argon2 cost for the attacker).
- **No username oracle.** An unknown or deactivated username, or one without a password,
  is checked against a dummy argon2 hash: it costs what a known one costs.
- **Revocation** is a timestamp: a revoked session or token fails at its next request.
  A password reset or change revokes every session of that person.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config.settings import Settings
from kartabl import audit
from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import ApiToken, LoginAttempt, PasswordReset, Person, Role, WebSession, utcnow
from kartabl.passwords import hash_password, verify_password

SESSION_COOKIE: Final = "kartabl_session"
TOKEN_PREFIX: Final = "kt_"  # noqa: S105 - a marker, not a secret
# What an API token may be allowed. A token never exceeds its person's role and scope.
SCOPES: Final = {
    "read": "list and read conversations, customers and queues",
    "act": "take workflow steps: assign, refer, draft, submit, close, reopen, notes",
    "review": "approve and reject replies, manage canned responses (coordinators and admins "
              "only)",
    "customers": "tag and link customers",
    "merge": "merge customers (needs the person's merge permission)",
    "reports": "read reports",
}
_CSRF_PURPOSE: Final = b"kartabl csrf v1"
# Rewriting last_seen_at on every request would make every page view a write.
_TOUCH_EVERY: Final = timedelta(minutes=1)


def role_scopes(person: Person) -> frozenset[str]:
    """What a password-signed session may do: every scope the person's role allows."""
    scopes = set(SCOPES)
    if person.role == Role.AGENT:
        scopes.discard("review")
    if not person.can_merge:
        scopes.discard("merge")
    return frozenset(scopes)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


# -- login ------------------------------------------------------------------------------------


class LoginRefused(PermissionDenied):
    """Wrong credentials or too many attempts: one message for both, on purpose."""

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__("sign in", "this client", reason, code=code)


def _failures_since(session: Session, since: datetime, **match: str) -> int:
    return session.scalar(
        select(func.count()).select_from(LoginAttempt).where(
            *(getattr(LoginAttempt, k) == v for k, v in match.items()),
            LoginAttempt.at >= since, LoginAttempt.ok.is_(False),
        )
    ) or 0


def _clean(username: str) -> str:
    return username.strip()[:64]


def _since(settings: Settings) -> datetime:
    return utcnow() - timedelta(minutes=settings.login_window_minutes)


@cache
def _dummy_hash() -> str:
    """An argon2 hash of nothing anyone knows, made with the same parameters as real ones
    (once per process): what an unknown username's password is checked against."""
    return hash_password(secrets.token_urlsafe(32))


def login_delay(session: Session, username: str, *, settings: Settings) -> float:
    """Seconds a sign-in for ``username`` waits before it is checked: nothing until the
    username has ``login_max_failures`` failures from all addresses in the window, then
    ``login_slow_down_s``, doubled per further failure up to 4 times that. A wait, never
    a refusal: the owner's right password still signs in."""
    s = settings
    over = _failures_since(session, _since(s), username=_clean(username)) - s.login_max_failures
    return 0.0 if over < 0 else s.login_slow_down_s * min(4, 2**over)


def authenticate(session: Session, username: str, password: str, ip: str, *,
                 settings: Settings) -> Person:
    """The person with these credentials, or :class:`LoginRefused`. Records the attempt;
    the caller commits (also on refusal, so the failure counts)."""
    s = settings
    username, ip = _clean(username), ip[:64]
    since = _since(s)
    throttled = (
        _failures_since(session, since, username=username, ip=ip) >= s.login_max_failures
        or _failures_since(session, since, ip=ip) >= s.login_max_failures_per_ip
    )
    if throttled:
        session.add(LoginAttempt(username=username, ip=ip, ok=False))
        raise LoginRefused("too many failed attempts; wait a few minutes and try again",
                           "login_limited")
    person = session.scalar(select(Person).where(Person.username == username))
    known = person is not None and person.active and bool(person.password_hash)
    # Always one argon2 verification, so the answer's time does not tell whether the
    # username exists (issue 12: 1,200 ms against 50 ms).
    matches = verify_password(person.password_hash if known and person else _dummy_hash(),
                              password)
    ok = known and matches
    session.add(LoginAttempt(username=username, ip=ip, ok=ok))
    if not ok or person is None:
        raise LoginRefused("wrong username or password", "login_wrong")
    return person


# -- sessions ---------------------------------------------------------------------------------


def start_session(session: Session, person: Person, *, settings: Settings, ip: str = "",
                  user_agent: str = "") -> str:
    """A new session for ``person``; returns the cookie value (shown once, stored hashed)."""
    token = _new_token()
    now = utcnow()
    session.add(
        WebSession(
            token_hash=_digest(token), person_id=person.id, created_at=now, last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
            ip=ip[:64], user_agent=user_agent[:300],
        )
    )
    audit.record(session, "person.signed_in", actor=person, ip=ip[:64])
    return token


def session_person(session: Session, token: str | None, *,
                   settings: Settings) -> tuple[WebSession, Person] | None:
    """The live session and its active person for a cookie value, else None."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    person = row.person
    if not person.active:
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
    return row, person


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(
            update(WebSession)
            .where(WebSession.token_hash == _digest(token), WebSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


def revoke_sessions(
    session: Session, actor: Person | None, person_id: int, *, except_id: int | None = None
) -> int:
    """End every session of ``person_id`` (its owner or an admin may); returns how many."""
    if actor is not None and actor.id != person_id and actor.role != Role.ADMIN:
        raise PermissionDenied("revoke sessions", actor.username, "only its owner or an admin may")
    q = update(WebSession).where(
        WebSession.person_id == person_id, WebSession.revoked_at.is_(None)
    )
    if except_id is not None:
        q = q.where(WebSession.id != except_id)
    n = session.execute(q.values(revoked_at=utcnow())).rowcount  # type: ignore[attr-defined]
    audit.record(session, "person.sessions_revoked", actor=actor, person=person_id, count=n)
    return int(n or 0)


def csrf_token(session_token: str, *, settings: Settings) -> str:
    key = hmac.new(settings.secret_key.get_secret_value().encode(), _CSRF_PURPOSE,
                   hashlib.sha256).digest()
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session_token: str, given: str | None, *, settings: Settings) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session_token, settings=settings),
                                               given or "")


# -- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    token: str  # shown once
    row: ApiToken


def create_api_token(
    session: Session, actor: Person, *, name: str, scopes: list[str], person: Person | None = None,
    expires_at: datetime | None = None,
) -> NewToken:
    """A token acting as ``person`` (default: the actor). Only an admin makes one for
    someone else."""
    owner = person or actor
    if owner.id != actor.id and actor.role != Role.ADMIN:
        raise PermissionDenied("create a token", actor.username, "only for themselves")
    name = name.strip()
    if not name or len(name) > 100:
        raise InputError("a token needs a name of 1 to 100 characters", code="token_name")
    unknown = sorted(set(scopes) - SCOPES.keys())
    if unknown or not scopes:
        raise InputError(f"scopes must be some of {sorted(SCOPES)}; got {unknown or 'none'}",
                         code="token_scopes")
    if "review" in scopes and owner.role == Role.AGENT:
        raise InputError("the review scope needs a coordinator or an admin",
                         code="token_review")
    if "merge" in scopes and not owner.can_merge:
        raise InputError("the merge scope needs a person with the merge permission",
                         code="token_merge")
    token = TOKEN_PREFIX + _new_token()
    row = ApiToken(
        token_hash=_digest(token), prefix=token[:10], name=name, person_id=owner.id,
        scopes=sorted(set(scopes)), expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(session, "api_token.created", actor=actor, token=row.id, person=owner.id,
                 scopes=row.scopes)
    return NewToken(token, row)


def token_person(session: Session, token: str | None) -> tuple[ApiToken, Person] | None:
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if not row.person.active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= _TOUCH_EVERY:
        row.last_used_at = now
    return row, row.person


def revoke_api_token(session: Session, actor: Person, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (row.person_id != actor.id and actor.role != Role.ADMIN):
        raise NotFound(f"token {token_id} does not exist")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, "api_token.revoked", actor=actor, token=row.id)
    return row


# -- passwords --------------------------------------------------------------------------------


def create_password_reset(session: Session, actor: Person | None, person: Person, *,
                          settings: Settings) -> str:
    """A one-time reset token for ``person`` (admins, or the CLI as the system)."""
    if actor is not None and actor.role != Role.ADMIN:
        raise PermissionDenied("reset a password", actor.username, "only an admin may")
    token = _new_token()
    session.add(
        PasswordReset(
            token_hash=_digest(token), person_id=person.id,
            created_by_id=actor.id if actor else None,
            expires_at=utcnow() + timedelta(hours=settings.password_reset_hours),
        )
    )
    audit.record(session, "person.password_reset_issued", actor=actor, person=person.id)
    return token


def reset_link(token: str, *, settings: Settings, base_url: str = "") -> str:
    """The whole link of a reset token: ``base_url``, else ``KARTABL_BASE_URL``, else
    http://WEB_HOST:WEB_PORT. Never the request's Host header, which the sender of the
    request chooses (a forged one would send the token to the attacker's site)."""
    s = settings
    base = base_url or s.base_url or f"http://{s.web_host}:{s.web_port}"
    return f"{base.rstrip('/')}/reset/{token}"


def consume_password_reset(session: Session, token: str, new_password: str) -> Person:
    """Set the password from a reset link (once) and end every session of that person."""
    row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise InputError("this reset link is not valid (used, expired or mistyped)")
    person = session.get(Person, row.person_id)
    if person is None or not person.active:
        raise InputError("this reset link is not valid (the account is deactivated)")
    person.password_hash = hash_password(new_password)  # ValueError when too short
    row.used_at = utcnow()
    revoke_sessions(session, None, person.id)
    audit.record(session, "person.password_reset", actor=person)
    return person
