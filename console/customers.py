"""Customers in the console: search, a customer's page, merge (previewed), link, tags.

Scope: admins and coordinators see every customer. An agent sees a customer only through
a conversation they can access (assigned to them or to one of their teams), filtered in SQL;
a customer outside that scope is reported as not existing. Merging and linking need more:
every conversation of the customers involved must be in scope, because a merge moves
history and a link routes an address's future messages, and neither may carry data out of
(or into) a scope the actor cannot see. The permission itself (``can_merge``, roles) stays
with :mod:`router.identity`, which enforces it again.

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
from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.models import Conversation, Customer, Identity, Message, Person, Role, TeamMember
from kartabl.workflow.access import REVIEWERS, actor_name, require_actor
from router import identity as ident
from router.text import ZWNJ, normalize_text

MAX_LIMIT: Final = 200
TAG_MAX_LENGTH: Final = 40
MAX_TAGS: Final = 50
MAX_QUERY: Final = 200
PARTIAL_PHONE_DIGITS: Final = 4  # fewer digits than this match half the customer table


@dataclass(frozen=True)
class IdentityView:
    id: int
    kind: str
    address: str
    display: str


@dataclass(frozen=True)
class CustomerHit:
    id: int
    display_name: str
    tags: tuple[str, ...]
    identities: tuple[IdentityView, ...]


@dataclass(frozen=True)
class ConversationView:
    id: int
    channel: str
    status: str
    subject: str
    team_id: int | None
    assignee_id: int | None
    opened_at: datetime
    last_message_at: datetime


@dataclass(frozen=True)
class CustomerDetail:
    id: int
    requested_id: int  # differs from ``id`` when the requested customer was merged into it
    display_name: str
    tags: tuple[str, ...]
    identities: tuple[IdentityView, ...]
    conversations: tuple[ConversationView, ...]  # in the actor's scope, newest first
    hidden_conversations: int  # the customer's conversations outside the actor's scope


@dataclass(frozen=True)
class MergePreview:
    source_id: int
    target_id: int
    identities: tuple[IdentityView, ...]
    conversations: dict[str, dict[str, int]]  # channel -> status -> count
    conversation_count: int
    messages: int
    tags: tuple[str, ...]  # tags the target gains
    display_name: str | None  # the name the target takes (it has none), else None
    may_merge: bool
    reason: str  # why not, when ``may_merge`` is False


# -- scope ---------------------------------------------------------------------------------


def _sees_all(actor: Person) -> bool:
    return actor.role in REVIEWERS


def conversation_scope(actor: Person) -> ColumnElement[bool]:
    """The SQL twin of :func:`kartabl.workflow.access.can_access`."""
    if not actor.active:
        return false()
    if _sees_all(actor):
        return true()
    teams = select(TeamMember.team_id).where(TeamMember.person_id == actor.id)
    return or_(Conversation.assignee_id == actor.id, Conversation.team_id.in_(teams))


def _customer_visible(actor: Person) -> ColumnElement[bool]:
    if _sees_all(actor):
        return true()
    return exists().where(Conversation.customer_id == Customer.id, conversation_scope(actor))


def _scope_counts(
    session: Session, actor: Person, ids: Iterable[int], *, lock: bool = False
) -> dict[int, tuple[int, int]]:
    """customer id -> (conversations, conversations in scope). ``lock`` takes the rows FOR
    UPDATE on PostgreSQL (which refuses it with an aggregate, so they are counted here),
    so none moves to another team between the check and the merge."""
    in_scope = case((conversation_scope(actor), 1), else_=0)
    where = Conversation.customer_id.in_(ids)
    if not lock:
        return {cid: (n, int(ok)) for cid, n, ok in session.execute(
            select(Conversation.customer_id, func.count(), func.sum(in_scope))
            .where(where).group_by(Conversation.customer_id))}
    counts: dict[int, tuple[int, int]] = {}
    rows = select(Conversation.customer_id, in_scope).where(where)
    for cid, ok in session.execute(rows.with_for_update(of=Conversation)):
        total, seen = counts.get(cid, (0, 0))
        counts[cid] = (total + 1, seen + ok)
    return counts


def _load(
    session: Session, actor: Person, customer_id: int, *, follow: bool, lock: bool = False
) -> Customer:
    """The customer (its survivor with ``follow``), or NotFound, also when an agent cannot
    see it: the answer must not reveal that a customer outside their scope exists."""
    customer = session.get(Customer, customer_id, with_for_update=lock, populate_existing=lock)
    if customer is not None and follow:
        customer = ident._survivor(session, customer, lock=lock)
    if customer is None or (
        not _sees_all(actor) and _scope_counts(session, actor, [customer.id]).get(
            customer.id, (0, 0))[1] == 0
    ):
        raise NotFound(f"customer {customer_id} does not exist")
    return customer


def _require_whole_scope(
    session: Session, actor: Person, step: str, customers: list[Customer], *, lock: bool
) -> None:
    """Refuse when any conversation of ``customers`` is outside the actor's scope."""
    counts = _scope_counts(session, actor, [c.id for c in customers], lock=lock)
    for c in customers:
        total, ok = counts.get(c.id, (0, 0))
        if ok < total:
            raise PermissionDenied(
                step, actor_name(actor),
                f"customer {c.id} has {total - ok} conversation(s) outside their teams; "
                "merging never moves data out of a scope the actor cannot see",
            )


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


def _identities(session: Session, ids: list[int]) -> dict[int, tuple[IdentityView, ...]]:
    found: dict[int, list[IdentityView]] = defaultdict(list)
    rows = session.scalars(select(Identity).where(Identity.customer_id.in_(ids))
                           .order_by(Identity.kind, Identity.id))
    for i in rows:
        found[i.customer_id].append(IdentityView(i.id, i.kind, i.address, i.display))
    return {cid: tuple(v) for cid, v in found.items()}


# -- one customer --------------------------------------------------------------------------


def customer_detail(
    session: Session, actor: Person, customer_id: int, *, conversation_limit: int = 200
) -> CustomerDetail:
    """A customer's identities on every channel and their conversations in the actor's
    scope (newest first), with how many are hidden from an agent. A merged customer shows
    its survivor (``requested_id`` keeps what was asked for, so the UI can redirect).
    NotFound when an agent cannot see any of the customer's conversations."""
    require_actor("view a customer", actor)
    customer = _load(session, actor, customer_id, follow=True)
    scope = conversation_scope(actor)
    total, visible = _scope_counts(session, actor, [customer.id]).get(customer.id, (0, 0))
    convs = session.scalars(
        select(Conversation).where(Conversation.customer_id == customer.id, scope)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(conversation_limit)
    ).all()
    return CustomerDetail(
        id=customer.id, requested_id=customer_id, display_name=customer.display_name,
        tags=tuple(customer.tags or ()),
        identities=_identities(session, [customer.id]).get(customer.id, ()),
        conversations=tuple(
            ConversationView(c.id, str(c.channel), str(c.status), c.subject, c.team_id,
                             c.assignee_id, c.opened_at, c.last_message_at) for c in convs),
        hidden_conversations=total - visible,
    )


# -- merge and link ------------------------------------------------------------------------


def may_merge(actor: Person) -> bool:
    """What :func:`router.identity.merge_customers` requires (it checks again)."""
    return actor.active and (actor.can_merge or actor.role is Role.ADMIN)


def may_link(actor: Person) -> bool:
    """What :func:`router.identity.link_identity` requires (it checks again)."""
    return actor.active and (actor.can_merge or actor.role in REVIEWERS)


def _merge_pair(
    session: Session, actor: Person, source_id: int, target_id: int, *, lock: bool
) -> tuple[Customer, Customer]:
    """Both customers, checked as the merge will check them, plus the scope rule. With
    ``lock`` the customers (id order, as routing and the merge lock them) and their
    conversations are held FOR UPDATE, so nothing is routed to them or moved to another
    team between this check and the merge."""
    step = "merge customers"
    if source_id == target_id:
        raise IllegalTransition(step, "same customer", f"customer {source_id}")
    customers = {}
    for cid in sorted((source_id, target_id)):
        customers[cid] = _load(session, actor, cid, follow=False, lock=lock)
    for c in customers.values():
        if c.merged_into_id is not None:
            raise IllegalTransition(step, "merged",
                                    f"customer {c.id} was already merged into {c.merged_into_id}")
    source, target = customers[source_id], customers[target_id]
    _require_whole_scope(session, actor, step, [source, target], lock=lock)
    return source, target


def merge_preview(session: Session, actor: Person, source_id: int, target_id: int) -> MergePreview:
    """What merging ``source_id`` into ``target_id`` would move, and whether the actor may.
    Raises NotFound / IllegalTransition as the merge would, and PermissionDenied when either
    customer has a conversation outside the actor's scope (whatever their merge right)."""
    require_actor("merge customers", actor)
    source, target = _merge_pair(session, actor, source_id, target_id, lock=False)
    by_channel: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(Conversation.channel, Conversation.status, func.count())
        .where(Conversation.customer_id == source.id)
        .group_by(Conversation.channel, Conversation.status)
    )
    for channel, status, n in rows:
        by_channel[str(channel)][str(status)] = n
    messages = session.scalar(
        select(func.count()).select_from(Message).where(Message.customer_id == source.id)) or 0
    allowed = may_merge(actor)
    return MergePreview(
        source_id=source.id, target_id=target.id,
        identities=_identities(session, [source.id]).get(source.id, ()),
        conversations=dict(by_channel),
        conversation_count=sum(n for st in by_channel.values() for n in st.values()),
        messages=messages,
        tags=tuple(t for t in (source.tags or []) if t not in (target.tags or [])),
        display_name=source.display_name if (not target.display_name
                                             and source.display_name) else None,
        may_merge=allowed,
        reason="" if allowed else "merging needs the merge permission or the admin role",
    )


def merge(session: Session, actor: Person, source_id: int, target_id: int) -> Customer:
    """Merge ``source_id`` into ``target_id`` through :func:`router.identity.merge_customers`
    (audited there), after the preview's checks: calling this without the preview cannot
    skip them. Returns the target. Does not commit."""
    require_actor("merge customers", actor)
    if not may_merge(actor):  # before any lookup: the refusal says nothing about the data
        raise PermissionDenied("merge customers", actor_name(actor), "needs the merge permission")
    _merge_pair(session, actor, source_id, target_id, lock=True)
    return ident.merge_customers(session, actor, source_id, target_id)


def link(session: Session, actor: Person, customer_id: int, kind: str, address: str) -> Identity:
    """Give a customer one more identity through :func:`router.identity.link_identity`
    (audited there), under the merge's scope rule: the linked address's messages will join
    this customer's history. A bad address raises InputError. Does not commit."""
    require_actor("link an identity", actor)
    if not may_link(actor):
        raise PermissionDenied("link an identity", actor_name(actor),
                               "needs the coordinator or admin role, or the merge permission")
    try:
        address = ident.normalize_address(kind, address)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    customer = _load(session, actor, customer_id, follow=True, lock=True)
    _require_whole_scope(session, actor, "link an identity", [customer], lock=True)
    try:
        return ident.link_identity(session, actor, customer.id, kind, address)
    except ident.IdentityTaken as exc:
        if _sees_all(actor):
            raise
        # The router's message names the owner; an agent may not learn customer ids
        # outside their scope, only that the address is taken.
        raise ident.IdentityTaken(f"{kind} identity {address} belongs to another customer: "
                                  "ask a coordinator to merge the two") from exc


# -- tags ----------------------------------------------------------------------------------

_TAG_CHARS = re.compile(rf"[\w{ZWNJ} .\-]+")


def normalize_tag(text: str) -> str:
    """The stored form of a tag: :func:`normalize_text` (so "VIP" and "vip", "مشتري" and
    "مشتری" are one tag), without a leading '#'; letters, digits, spaces, '-', '_', '.'
    only (no quotes or formula signs), at most :data:`TAG_MAX_LENGTH` characters."""
    tag = normalize_text(text if isinstance(text, str) else "").lstrip("#").strip()
    if not tag or len(tag) > TAG_MAX_LENGTH or not _TAG_CHARS.fullmatch(tag):
        raise InputError(f"not a tag: {str(text)[:TAG_MAX_LENGTH + 5]!r}; a tag holds 1 to "
                         f"{TAG_MAX_LENGTH} letters, digits, spaces, '-', '_' or '.'")
    return tag


def _canonical_tag(text: str) -> str | None:
    try:
        return normalize_tag(text)
    except InputError:
        return None


def _retag(session: Session, actor: Person, customer_id: int, tag: str, *, add: bool) -> list[str]:
    require_actor("tag a customer", actor)
    tag = normalize_tag(tag)
    # Locked: tags are one JSON list, and two concurrent edits would lose one of them.
    customer = _load(session, actor, customer_id, follow=True, lock=True)
    tags = list(customer.tags or [])
    # Tags written before this module (or by a merge) may not be canonical: compare folded.
    present = [t for t in tags if isinstance(t, str) and _canonical_tag(t) == tag]
    if add and not present:
        if len(tags) >= MAX_TAGS:
            raise InputError(f"customer {customer.id} already has {MAX_TAGS} tags")
        customer.tags = [*tags, tag]  # a new list: the JSON column does not track mutation
    elif not add and present:
        customer.tags = [t for t in tags if t not in present]
    else:
        return tags
    audit.record(session, "customer.tag_added" if add else "customer.tag_removed",
                 actor=actor, customer_id=customer.id, tag=tag)
    session.flush()
    return list(customer.tags)


def add_tag(session: Session, actor: Person, customer_id: int, tag: str) -> list[str]:
    """Tag a customer the actor can see (an agent: through one conversation in scope; a tag
    moves no data). Idempotent; audited when it changes something. Returns the tags."""
    return _retag(session, actor, customer_id, tag, add=True)


def remove_tag(session: Session, actor: Person, customer_id: int, tag: str) -> list[str]:
    """Remove a tag (compared in normalised form); idempotent, audited. Returns the tags."""
    return _retag(session, actor, customer_id, tag, add=False)
