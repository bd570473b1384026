"""Customers in the console: a customer's page, merge (previewed) and link; and, so that
callers keep one import, search (:mod:`console.customer_search`), tags
(:mod:`console.customer_tags`) and the scope rule (:mod:`console.customer_scope`).

Everything here runs in the actor's scope: a customer an agent cannot see is reported as
not existing. Merging and linking also need every conversation of the customers involved
in scope (see :mod:`console.customer_scope`); the permission itself (``can_merge``, roles)
stays with :mod:`router.identity`, which enforces it again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.customer_scope import (
    IdentityView,
    _identities,
    _load,
    _require_whole_scope,
    _scope_counts,
    _sees_all,
    conversation_scope,
)
from console.customer_search import (
    MAX_LIMIT,
    MAX_QUERY,
    PARTIAL_PHONE_DIGITS,
    CustomerHit,
    search_customers,
)
from console.customer_tags import MAX_TAGS, TAG_MAX_LENGTH, add_tag, normalize_tag, remove_tag
from kartabl.errors import IllegalTransition, InputError, PermissionDenied
from kartabl.models import Conversation, Customer, Identity, Message, Person, Role
from kartabl.workflow.access import REVIEWERS, actor_name, require_actor
from router import identity as ident

__all__ = [
    "MAX_LIMIT",
    "MAX_QUERY",
    "MAX_TAGS",
    "PARTIAL_PHONE_DIGITS",
    "TAG_MAX_LENGTH",
    "ConversationView",
    "CustomerDetail",
    "CustomerHit",
    "IdentityView",
    "MergePreview",
    "add_tag",
    "conversation_scope",
    "customer_detail",
    "link",
    "may_link",
    "may_merge",
    "merge",
    "merge_preview",
    "normalize_tag",
    "remove_tag",
    "search_customers",
]


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
        raise IllegalTransition(step, "same customer", f"customer {source_id}",
                                code="merge_same")
    customers = {}
    for cid in sorted((source_id, target_id)):
        customers[cid] = _load(session, actor, cid, follow=False, lock=lock)
    for c in customers.values():
        if c.merged_into_id is not None:
            raise IllegalTransition(step, "merged",
                                    f"customer {c.id} was already merged into {c.merged_into_id}",
                                    code="merge_merged", params={"id": c.id})
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
        raise PermissionDenied("merge customers", actor_name(actor), "needs the merge permission",
                               code="merge_permission")
    _merge_pair(session, actor, source_id, target_id, lock=True)
    return ident.merge_customers(session, actor, source_id, target_id)


def link(session: Session, actor: Person, customer_id: int, kind: str, address: str) -> Identity:
    """Give a customer one more identity through :func:`router.identity.link_identity`
    (audited there), under the merge's scope rule: the linked address's messages will join
    this customer's history. A bad address raises InputError. Does not commit."""
    require_actor("link an identity", actor)
    if not may_link(actor):
        raise PermissionDenied("link an identity", actor_name(actor),
                               "needs the coordinator or admin role, or the merge permission",
                               code="link_permission")
    try:
        address = ident.normalize_address(kind, address)
    except ValueError as exc:
        raise InputError(str(exc), code="bad_address",
                         params={"kind": kind, "detail": str(exc)}) from exc
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
