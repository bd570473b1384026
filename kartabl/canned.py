"""Canned responses: the library of saved replies, who sees and manages them, and their
expansion into a composer.

- **Scope.** A global response (no team) is everyone's; a team's is its members'. Admins
  and coordinators see and manage all of them; an agent sees the global ones and their
  teams', and manages none. A response outside the reader's scope is :class:`NotFound`,
  as a conversation is: an agent cannot tell another team's response from a missing one.
- **Expansion** (:func:`expand`) needs the conversation in the actor's scope *and* the
  response in the actor's scope, picks the variant in the customer's language
  (:func:`kartabl.language.conversation_language`; the other variant when that one is
  empty) and fills its variables. It counts one use: the count is of insertions into a
  composer, not of replies sent (an agent may still edit or drop the text; counting at
  submit would need to recognise an edited expansion in a reply, which no rule does well).
- **Variables** are a fixed whitelist, ``{{ customer_name }}``, ``{{ agent_name }}``,
  ``{{ conversation_number }}``, substituted in one pass by a regular expression: the text
  is never a template (no Jinja2, nothing to inject), and a value that itself looks like a
  variable (a customer named ``{{ agent_name }}``) is inserted as it is. Any other
  ``{{ ... }}`` in a response is refused when it is saved, so a typo is caught by the
  coordinator, not by a customer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.errors import InputError, NotFound
from kartabl.language import LANGUAGES, conversation_language
from kartabl.models import (
    CannedResponse,
    Conversation,
    Customer,
    Direction,
    Message,
    Person,
)
from kartabl.workflow.access import (
    REVIEWERS,
    can_access,
    load_team,
    require_reviewer,
    team_ids,
)

SHORTCUT: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
VARIABLES: Final = ("customer_name", "agent_name", "conversation_number")
MAX_NAME: Final = 200
MAX_BODY: Final = 5000
# ``{{ name }}`` with optional blanks: the reply templates' familiar look.
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([^{}\s]*)\s*\}\}")
_VALUE_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class Expansion:
    canned_id: int
    shortcut: str
    text: str
    language: str  # the variant inserted
    customer_language: str  # what the customer writes in (differs when a variant is empty)


# -- scope -----------------------------------------------------------------------------------


def _visible_clause(actor: Person) -> list[ColumnElement[bool]]:
    if actor.role in REVIEWERS:
        return []
    mine = team_ids(actor, actor)
    return [or_(CannedResponse.team_id.is_(None), CannedResponse.team_id.in_(mine))]


def list_visible(session: Session, actor: Person, *, prefix: str = "",
                 limit: int | None = None) -> list[CannedResponse]:
    """The responses ``actor`` sees, by shortcut; with ``prefix``, those whose shortcut
    starts with it (what the composer offers after ``/``)."""
    if not actor.active:
        return []
    q = select(CannedResponse).where(*_visible_clause(actor))
    wanted = prefix.strip().lower()
    if wanted:
        if not SHORTCUT.match(wanted):
            return []  # no shortcut has other characters: nothing to escape for LIKE
        # "_" is a LIKE wildcard: escaped, "re_" does not match "red"
        q = q.where(CannedResponse.shortcut.startswith(wanted, autoescape=True))
    q = q.order_by(CannedResponse.shortcut)
    if limit is not None:
        q = q.limit(limit)
    return list(session.scalars(q))


def get_visible(session: Session, actor: Person, canned_id: int) -> CannedResponse:
    row = session.get(CannedResponse, canned_id)
    if row is None or not _sees(session, actor, row):
        raise NotFound(f"canned response {canned_id} does not exist")
    return row


def _sees(session: Session, actor: Person, row: CannedResponse) -> bool:
    if not actor.active:
        return False
    if actor.role in REVIEWERS or row.team_id is None:
        return True
    return row.team_id in team_ids(actor, actor)


# -- managing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CannedInput:
    name: str
    shortcut: str
    body_fa: str
    body_en: str
    team_id: int | None = None


def _checked(session: Session, data: CannedInput, own_id: int | None) -> CannedInput:
    name = data.name.strip()
    if not name:
        raise InputError("a canned response needs a name")
    if len(name) > MAX_NAME:
        raise InputError(f"the name is longer than {MAX_NAME} characters")
    shortcut = data.shortcut.strip().lstrip("/").lower()
    if not SHORTCUT.match(shortcut):
        raise InputError("the shortcut must be 1-40 lower-case letters a-z, digits, - or _, "
                         "starting with a letter or a digit")
    taken = session.scalar(select(CannedResponse.id).where(CannedResponse.shortcut == shortcut))
    if taken is not None and taken != own_id:
        raise InputError(f"the shortcut /{shortcut} is taken")
    body_fa, body_en = data.body_fa.strip(), data.body_en.strip()
    if not body_fa and not body_en:
        raise InputError("a canned response needs a Persian or an English text")
    for body in (body_fa, body_en):
        if len(body) > MAX_BODY:
            raise InputError(f"a text is longer than {MAX_BODY} characters")
        unknown = sorted({m for m in _PLACEHOLDER.findall(body) if m not in VARIABLES})
        if unknown:
            raise InputError(f"unknown variables {unknown}; known: {list(VARIABLES)}")
    if data.team_id is not None:
        load_team(session, data.team_id)
    return CannedInput(name, shortcut, body_fa, body_en, data.team_id)


def create(session: Session, actor: Person, data: CannedInput) -> CannedResponse:
    require_reviewer("create a canned response", actor)
    ok = _checked(session, data, None)
    row = CannedResponse(name=ok.name, shortcut=ok.shortcut, team_id=ok.team_id,
                         body_fa=ok.body_fa, body_en=ok.body_en, created_by_id=actor.id)
    session.add(row)
    session.flush()
    audit.record(session, "canned.created", actor=actor, canned=row.id, shortcut=row.shortcut,
                 team=row.team_id)
    return row


def edit(session: Session, actor: Person, canned_id: int, data: CannedInput) -> CannedResponse:
    require_reviewer("edit a canned response", actor)
    row = get_visible(session, actor, canned_id)
    ok = _checked(session, data, row.id)
    row.name, row.shortcut, row.team_id = ok.name, ok.shortcut, ok.team_id
    row.body_fa, row.body_en = ok.body_fa, ok.body_en
    session.flush()
    audit.record(session, "canned.edited", actor=actor, canned=row.id, shortcut=row.shortcut,
                 team=row.team_id)
    return row


def delete(session: Session, actor: Person, canned_id: int) -> None:
    require_reviewer("delete a canned response", actor)
    row = get_visible(session, actor, canned_id)
    audit.record(session, "canned.deleted", actor=actor, canned=row.id, shortcut=row.shortcut,
                 team=row.team_id)
    session.delete(row)
    session.flush()


# -- expanding -------------------------------------------------------------------------------


def _value(text: str | None) -> str:
    """One line, bounded: a variable fills a sentence, it does not add lines to it."""
    return " ".join((text or "").split())[:_VALUE_MAX]


def render(body: str, values: dict[str, str]) -> str:
    """``body`` with each known ``{{ variable }}`` replaced by its value, in one pass."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        return values[name] if name in values else m.group(0)

    return _PLACEHOLDER.sub(one, body)


def _customer_name(session: Session, conv: Conversation) -> str:
    customer = session.get(Customer, conv.customer_id)
    if customer is not None and customer.display_name.strip():
        return customer.display_name
    latest = session.scalar(
        select(Message.sender_name)
        .where(Message.conversation_id == conv.id, Message.direction == Direction.IN)
        .order_by(Message.received_at.desc(), Message.id.desc()).limit(1))
    return latest or ""


def expand(session: Session, actor: Person, conversation_id: int, *,
           shortcut: str | None = None, canned_id: int | None = None,
           language: str | None = None) -> Expansion:
    """The response (by ``shortcut`` or ``canned_id``) for this conversation, in the
    customer's language (or ``language``), variables filled; counts one use."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or not can_access(actor, conv):
        raise NotFound(f"conversation {conversation_id} does not exist")
    if canned_id is not None:
        row = get_visible(session, actor, canned_id)
    else:
        key = (shortcut or "").strip().lstrip("/").lower()
        found = session.scalar(select(CannedResponse).where(CannedResponse.shortcut == key))
        if found is None or not _sees(session, actor, found):
            raise NotFound("no such canned response")
        row = found
    if language is not None and language not in LANGUAGES:
        raise InputError(f"language must be one of {list(LANGUAGES)}")
    wanted = language or conversation_language(session, conv.id)
    bodies = {"fa": row.body_fa, "en": row.body_en}
    filled = [k for k in LANGUAGES if bodies[k].strip()]
    if not filled:  # saved through the service this cannot be; a row written by hand can
        raise InputError(f"canned response /{row.shortcut} has no text")
    used = wanted if wanted in filled else filled[0]
    values = {
        "customer_name": _value(_customer_name(session, conv)),
        "agent_name": _value(actor.display_name or actor.username),
        "conversation_number": str(conv.id),
    }
    text = render(bodies[used], values)
    # One UPDATE, not read-add-write: two agents expanding at once both count.
    session.execute(update(CannedResponse).where(CannedResponse.id == row.id)
                    .values(use_count=CannedResponse.use_count + 1))
    return Expansion(row.id, row.shortcut, text, used, wanted)
