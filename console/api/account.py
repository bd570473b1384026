"""``/api/v1/me``, API tokens, sessions and password resets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from console import auth
from console.api.schemas import PathId, RowId
from console.deps import AppSettings, Principal, get_db, principal
from kartabl.errors import NotFound
from kartabl.models import ApiToken, Person, TeamMember, utcnow

router = APIRouter(prefix="/api/v1", tags=["account"])


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    locale: str
    can_merge: bool
    team_ids: list[int]
    signed_in_with: Literal["session", "token"]
    scopes: list[str]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=len(auth.SCOPES))
    person_id: RowId | None = Field(
        default=None, description="Admins only: a token for someone else."
    )
    # Tokens expire (ones that never do were FreeScout CVE-2026-27637): 90 days unless asked.
    expires_in_days: int = Field(default=90, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    person_id: int
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown once; only its hash is kept.")


class RevokeIn(BaseModel):
    scope: Literal["others", "all"] = "others"
    person_id: RowId | None = Field(default=None, description="Admins only: someone else's.")


class Revoked(BaseModel):
    revoked: int


class ResetOut(BaseModel):
    url: str
    expires_at: datetime


def _token_out(row: ApiToken) -> TokenOut:
    return TokenOut.model_validate(row, from_attributes=True)


def session_only(p: Principal = Depends(principal)) -> Principal:
    # A leaked token must not be able to mint more tokens or reset passwords.
    if p.via != "session":
        raise HTTPException(403, "sign in with a password for this; API tokens cannot do it")
    return p


@router.get("/me")
def me(p: Principal = Depends(principal), db: Session = Depends(get_db)) -> Me:
    teams = db.scalars(select(TeamMember.team_id).where(TeamMember.person_id == p.person.id))
    return Me(
        id=p.person.id, username=p.person.username, display_name=p.person.display_name,
        role=p.person.role.value, locale=p.person.locale, can_merge=p.person.can_merge,
        team_ids=sorted(teams), signed_in_with=p.via, scopes=sorted(p.scopes),
    )


@router.get("/tokens")
def list_tokens(p: Principal = Depends(principal), db: Session = Depends(get_db)) -> list[TokenOut]:
    rows = db.scalars(
        select(ApiToken).where(ApiToken.person_id == p.person.id).order_by(ApiToken.id)
    )
    return [_token_out(r) for r in rows]


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenIn, p: Principal = Depends(session_only), db: Session = Depends(get_db)
) -> NewTokenOut:
    owner = None
    if body.person_id is not None and body.person_id != p.person.id:
        owner = db.get(Person, body.person_id)
        if owner is None:
            raise NotFound(f"person {body.person_id} does not exist")
    expires = utcnow() + timedelta(days=body.expires_in_days)
    new = auth.create_api_token(
        db, p.person, name=body.name, scopes=body.scopes, person=owner, expires_at=expires
    )
    db.commit()
    return NewTokenOut(token=new.token, **_token_out(new.row).model_dump())


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: PathId, p: Principal = Depends(principal), db: Session = Depends(get_db)
) -> TokenOut:
    row = auth.revoke_api_token(db, p.person, token_id)
    db.commit()
    return _token_out(row)


@router.post("/sessions/revoke")
def revoke_sessions(
    body: RevokeIn, p: Principal = Depends(principal), db: Session = Depends(get_db)
) -> Revoked:
    person_id = body.person_id or p.person.id
    keep = p.session_id if body.scope == "others" and person_id == p.person.id else None
    n = auth.revoke_sessions(db, p.person, person_id, except_id=keep)
    db.commit()
    return Revoked(revoked=n)


@router.post("/people/{person_id}/password-reset", status_code=201)
def password_reset(
    person_id: PathId, settings: AppSettings, p: Principal = Depends(session_only),
    db: Session = Depends(get_db),
) -> ResetOut:
    person = db.get(Person, person_id)
    if person is None:
        raise NotFound(f"person {person_id} does not exist")
    token = auth.create_password_reset(db, p.person, person, settings=settings)
    db.commit()
    return ResetOut(
        url=auth.reset_link(token, settings=settings),
        expires_at=utcnow() + timedelta(hours=settings.password_reset_hours),
    )
