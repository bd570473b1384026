"""A customer's earlier requests, on every channel, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from kartabl.errors import NotFound
from kartabl.models import Conversation, Customer

# Merge chains are short; the bound only stops a hand-edited cycle from spinning.
_MAX_MERGE_DEPTH = 50


def customer_history(
    session: Session, customer_id: int, *, limit: int | None = None
) -> list[Conversation]:
    """The conversations of ``customer_id`` across all channels, newest first, including
    those of customers merged into it. A merged-away customer's id shows the history of the
    customer that absorbed it. Assignee and team are loaded with the rows (no lazy loads
    when a page lists them). Raises :class:`~kartabl.errors.NotFound`."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    for _ in range(_MAX_MERGE_DEPTH):
        if customer.merged_into_id is None:
            break
        nxt = session.get(Customer, customer.merged_into_id)
        assert nxt is not None, "merged_into_id is a foreign key"
        customer = nxt
    # Merging moves conversations to the survivor, so this set is normally just one id;
    # collecting merged-in customers keeps history whole even for rows moved by hand.
    ids, frontier = {customer.id}, {customer.id}
    for _ in range(_MAX_MERGE_DEPTH):
        frontier = set(session.scalars(
            select(Customer.id).where(Customer.merged_into_id.in_(frontier))
        )) - ids
        if not frontier:
            break
        ids |= frontier
    stmt = (
        select(Conversation)
        .where(Conversation.customer_id.in_(ids))
        .options(joinedload(Conversation.assignee), joinedload(Conversation.team))
        .order_by(Conversation.opened_at.desc(), Conversation.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))
