"""Customer search for the console: :func:`search_customers` by name, phone, email,
messenger id or @username, and by ``tag:``, in the actor's scope
(:mod:`console.customer_scope`).

Names match after :func:`router.text.normalize_text` on both sides (spaces and ZWNJ
ignored). SQL LIKE cannot fold the stored side, and until the customer table has a
normalised name column the stored side is folded in SQL: on SQLite by ``normalize_text``
itself, registered as an SQL function; on PostgreSQL by ``normalize(…, NFKC)`` and a
``translate`` table generated from ``normalize_text``. Scope, limit and order so stay in
one query, at the price of a scan of the customer table per name search.
"""

from __future__ import annotations

import re
import unicodedata
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, case, exists, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from console.customer_scope import IdentityView, _customer_visible, _identities
from console.customer_tags import _canonical_tag
from kartabl.models import Customer, Identity, Person
from router import identity as ident
from router.text import ZWNJ, normalize_text

MAX_LIMIT: Final = 200
MAX_QUERY: Final = 200
PARTIAL_PHONE_DIGITS: Final = 4  # fewer digits than this match half the customer table


@dataclass(frozen=True)
class CustomerHit:
    id: int
    display_name: str
    tags: tuple[str, ...]
    identities: tuple[IdentityView, ...]


# -- search --------------------------------------------------------------------------------


def _pg_translation() -> tuple[str, str, str]:
    """(from, to, deleted) for PostgreSQL's ``translate`` after ``normalize(..., NFKC)``:
    the single-character folds of ``normalize_text`` on the Arabic block and invisible
    characters, generated from it so the two cannot drift. Spaces and ZWNJ are dropped on
    both sides: "علی‌رضا", "علی رضا" and "علیرضا" are the same name to whoever searches."""
    chars = [chr(c) for c in (*range(0x0600, 0x0700), *range(0x202A, 0x202F))]
    chars += ["\u200b", "\u200d", "\u200e", "\u200f", "\ufeff"]
    src, dst, gone = [], [], [ZWNJ, " ", "\t", "\n", "\r"]
    for c in chars:
        if unicodedata.normalize("NFKC", c) != c:
            continue  # PostgreSQL's normalize() has already replaced it
        # Between two letters: normalize_text strips its ends and treats spaces specially.
        folded = normalize_text(f"a{c}a")[1:-1]
        if folded == c.lower():
            continue
        if folded:
            src.append(c)
            dst.append(folded)
        else:
            gone.append(c)
    return "".join(src), "".join(dst), "".join(gone)


_PG_FROM, _PG_TO, _PG_GONE = _pg_translation()
_TAG_QUERY = re.compile(r'(?:^|\s)tag:(?:"([^"]*)"|(\S+))', re.IGNORECASE)
_PHONE_NOISE = re.compile(r"[\s\-().\u200c\u200e\u200f\u202a-\u202e]")
_SQLITE_FOLD = "kartabl_fold"


def _fold_sql(session: Session, column: Any) -> Any:
    """``column`` folded in SQL as :func:`_fold_query` folds the query."""
    if session.get_bind().dialect.name == "postgresql":
        nfkc = func.normalize(column, literal_column("NFKC"))
        # translate() deletes the characters of ``from`` that have no counterpart in ``to``.
        return func.lower(func.translate(nfkc, _PG_FROM + _PG_GONE, _PG_TO))
    # SQLite: normalize_text itself, as an SQL function of this connection (registered once
    # per connection; kartabl.db's connect hook would be its natural home).
    fairy = session.connection().connection
    if not fairy.info.get(_SQLITE_FOLD):
        fairy.driver_connection.create_function(  # type: ignore[union-attr]
            _SQLITE_FOLD, 1, _fold_query, deterministic=True)
        fairy.info[_SQLITE_FOLD] = True
    return getattr(func, _SQLITE_FOLD)(column)


def _fold_query(text: str | None) -> str:
    return normalize_text(text or "").replace(ZWNJ, "").replace(" ", "")


def _like(text: str) -> str:
    """``%text%`` with the user's own %, _ and \\ taken literally (escape='\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _name_matches(session: Session, column: Any, tokens: list[str]) -> ColumnElement[bool]:
    """Every token occurs in the folded ``column`` (any order: "محمدی علی" finds "علی محمدی")."""
    folded = _fold_sql(session, column)
    return and_(*(folded.like(_like(t), escape="\\") for t in tokens))


def _identity_conditions(term: str) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """(conditions on Identity, the exact ones among them, ranked first)."""
    conds: list[ColumnElement[bool]] = []
    exact: list[ColumnElement[bool]] = []
    compact = _PHONE_NOISE.sub("", term.translate(ident._DIGITS))
    if re.fullmatch(r"\+?[0-9]+", compact):
        with suppress(ValueError):  # too short or no such range: the partial match runs
            phone = ident.normalize_phone(term)
            exact.append((Identity.kind == "phone") & (Identity.address == phone))
        digits = compact.removeprefix("+")
        digits = digits[2:] if digits.startswith("00") else digits.removeprefix("0")
        if len(digits) >= PARTIAL_PHONE_DIGITS:
            conds.append((Identity.kind == "phone") & Identity.address.like(_like(digits), "\\"))
        if compact.isdigit() and int(compact) > 0:
            exact.append(Identity.kind.in_(ident.MESSENGERS)
                         & (Identity.address == str(int(compact))))
    if " " not in term and len(term) >= 3:
        if "@" in term[1:]:
            with suppress(ValueError):  # an unusual domain: the partial match still runs
                exact.append((Identity.kind == "email")
                             & (Identity.address == ident.normalize_email(term)))
        if not term.startswith("@"):  # addresses are stored case-folded
            conds.append((Identity.kind == "email")
                         & Identity.address.like(_like(term.casefold()), "\\"))
    if term.startswith("@") and len(term) > 1:  # a messenger @username kept as the display
        conds.append(Identity.kind.in_(ident.MESSENGERS)
                     & func.lower(Identity.display).like(_like(term[1:].lower()), "\\"))
    return conds + exact, exact


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return Customer.tags.cast(JSONB).contains([tag])
    values = func.json_each(Customer.tags).table_valued("value", joins_implicitly=True)
    return exists(select(1).select_from(values).where(values.c.value == tag))


def search_customers(
    session: Session, actor: Person, q: str, limit: int = 50
) -> list[CustomerHit]:
    """Customers matching ``q`` in the actor's scope, exact identity matches first, then
    newest first. ``q`` is a name (folded: "علي" finds "علی"), a phone number in any form
    (۰۹۱۲…, +98912…, 0912 123-4567; 4+ digits also match part of a number), an email
    address or part of one, a Telegram/Bale user id, or an @username; ``tag:vip`` (or
    ``tag:"two words"``) filters by tag. Merged customers are left out (their survivor has
    their identities). An inactive actor finds nothing."""
    if not actor.active:
        return []
    q = q[:MAX_QUERY]  # a search box, not a document (and int() of 5000 digits raises)
    tags = [_canonical_tag(a or b) for a, b in _TAG_QUERY.findall(q)]
    term = normalize_text(_TAG_QUERY.sub(" ", q)).strip()
    tokens = [t for t in (_fold_query(w) for w in term.split(" ")) if t]
    if not tokens and not tags:
        return []
    if None in tags:
        return []  # a tag no customer can carry
    where: list[ColumnElement[bool]] = [Customer.merged_into_id.is_(None), _customer_visible(actor)]
    where += [_has_tag(session, t) for t in tags if t is not None]
    order: list[Any] = [Customer.id.desc()]
    if tokens:
        raw = " ".join(_TAG_QUERY.sub(" ", q).split())
        ident_conds, exact = _identity_conditions(raw)
        ident_conds.append(_name_matches(session, Identity.display, tokens))
        where.append(or_(
            _name_matches(session, Customer.display_name, tokens),
            exists().where(Identity.customer_id == Customer.id, or_(*ident_conds)),
        ))
        if exact:
            exact_hit = exists().where(Identity.customer_id == Customer.id, or_(*exact))
            order.insert(0, case((exact_hit, 0), else_=1))
    stmt = (select(Customer).where(*where).order_by(*order)
            .limit(max(1, min(limit, MAX_LIMIT))))
    customers = session.scalars(stmt).all()
    by_customer = _identities(session, [c.id for c in customers])
    return [CustomerHit(c.id, c.display_name, tuple(c.tags or ()), by_customer.get(c.id, ()))
            for c in customers]
