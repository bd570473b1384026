"""Which customers an actor may see and change, as SQL: the scope rule shared by
:mod:`console.customers` (a customer's page, merge, link), :mod:`console.customer_search`
and :mod:`console.customer_tags`, with the one query that lists customers' identities.

Scope: admins and coordinators see every customer. An agent sees a customer only through
a conversation they can access (assigned to them or to one of their teams), filtered in SQL;
a customer outside that scope is reported as not existing. Merging and linking need more:
every conversation of the customers involved must be in scope, because a merge moves
history and a link routes an address's future messages, and neither may carry data out of
(or into) a scope the actor cannot see. The permission itself (``can_merge``, roles) stays
with :mod:`router.identity`, which enforces it again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, exists, false, func, or_, select, true
from sqlalchemy.orm import Session

from kartabl.errors import NotFound, PermissionDenied
from kartabl.models import Conversation, Customer, Identity, Person, TeamMember
from kartabl.workflow.access import REVIEWERS, actor_name
from router import identity as ident


@dataclass(frozen=True)
class IdentityView:
    id: int
    kind: str
    address: str
    display: str


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
        customer = ident.survivor(session, customer, lock=lock)
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
                code="merge_outside_scope", params={"id": c.id, "n": total - ok},
            )


# -- identities ----------------------------------------------------------------------------


def _identities(session: Session, ids: list[int]) -> dict[int, tuple[IdentityView, ...]]:
    found: dict[int, list[IdentityView]] = defaultdict(list)
    rows = session.scalars(select(Identity).where(Identity.customer_id.in_(ids))
                           .order_by(Identity.kind, Identity.id))
    for i in rows:
        found[i.customer_id].append(IdentityView(i.id, i.kind, i.address, i.display))
    return {cid: tuple(v) for cid, v in found.items()}
