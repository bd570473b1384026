"""Customers for a whole batch of senders at once (match or create), set-based for
:mod:`router.batch`; the demo seeds its customers through it too.

Existing owners are found (and locked) in one query; new customers and identities are
inserted in one statement each. Two batches creating the same new customer meet on the
identity's unique (kind, address), exactly as single routes do: the loser drops its customer
rows and takes the winner's. Identities are inserted in sorted order, so two batches racing
for several of the same new addresses wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from kartabl.db import dialect_insert
from kartabl.models import Customer, Identity
from router.identity import survivor


def _owners(
    session: Session, pairs: Collection[tuple[str, str]], skip_locked: bool
) -> tuple[dict[tuple[str, str], Customer], set[tuple[str, str]]]:
    """The surviving customers owning ``pairs``, locked in id order, and the pairs whose
    customer another transaction holds (only with ``skip_locked``; else we wait for it)."""
    if not pairs:
        return {}, set()
    stmt = (
        select(Identity.kind, Identity.address, Customer)
        .join(Customer, Customer.id == Identity.customer_id)
        .where(Identity.kind.in_({k for k, _ in pairs}),
               Identity.address.in_({a for _, a in pairs}))
    )
    if not skip_locked:
        stmt = stmt.order_by(Customer.id).with_for_update(of=Customer)
    found = {(k, a): c for k, a, c in session.execute(stmt) if (k, a) in pairs}
    busy: set[tuple[str, str]] = set()
    if skip_locked and found:
        # populate_existing: the rows were read before the lock; a merge may have moved on.
        locked = {c.id for c in session.scalars(
            select(Customer).where(Customer.id.in_({c.id for c in found.values()}))
            .order_by(Customer.id).with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )}
        busy = {key for key, c in found.items() if c.id not in locked}
        found = {key: c for key, c in found.items() if c.id in locked}
    if any(c.merged_into_id is not None for c in found.values()):
        found = {key: survivor(session, c, lock=True) for key, c in found.items()}
    return found, busy


def _claim(session: Session, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs no other transaction is creating right now (PostgreSQL). An insert that
    conflicts with an uncommitted identity waits for that transaction; a transaction-level
    advisory lock per address, tried without waiting, lets the caller defer those instead."""
    keys = [f"identity:{k}:{a}" for k, a in pairs]
    claimed = set(session.scalars(
        text("SELECT k FROM unnest(CAST(:keys AS text[])) AS k"
             " WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0))"),
        {"keys": keys},
    ))
    return [pair for pair, key in zip(pairs, keys, strict=True) if key in claimed]


def match_or_create_many(
    session: Session, wanted: Mapping[tuple[str, str], str], *, skip_locked: bool = False
) -> dict[tuple[str, str], tuple[Customer, bool]]:
    """The customer owning each (kind, normalised address) pair, its merge chain followed
    (:func:`router.identity.survivor`), creating customer and identity where there is none,
    each new one with the display name given for its pair. Set-based: existing owners are
    locked in one query; new customers and identities are inserted in one statement each,
    identities in sorted order so that two batches racing for the same new addresses wait
    for each other instead of deadlocking. Losers of such a race drop their customer rows
    and take the winners'. With ``skip_locked``, a pair whose customer another transaction
    has locked is left out of the result instead of waited for. Does not commit."""
    owners, busy = _owners(session, wanted.keys(), skip_locked)
    out = {key: (c, False) for key, c in owners.items()}
    missing = sorted(key for key in wanted if key not in out and key not in busy)
    if missing and skip_locked and session.get_bind().dialect.name == "postgresql":
        missing = _claim(session, missing)
    if not missing:
        return out
    fresh = {key: Customer(display_name=(wanted[key] or "").strip()[:200], tags=[])
             for key in missing}
    session.add_all(fresh.values())
    session.flush()
    insert = dialect_insert(session)
    won = {(k, a) for k, a in session.execute(
        insert(Identity).values([
            {"customer_id": fresh[key].id, "kind": key[0], "address": key[1],
             "display": fresh[key].display_name[:320]} for key in missing
        ]).on_conflict_do_nothing(index_elements=["kind", "address"])
        .returning(Identity.kind, Identity.address)
    )}
    out.update({key: (fresh[key], True) for key in missing if key in won})
    lost = [key for key in missing if key not in won]
    if lost:
        session.execute(delete(Customer).where(Customer.id.in_([fresh[k].id for k in lost]))
                        .execution_options(synchronize_session=False))
        for key in lost:
            session.expunge(fresh[key])
        # A winner that rolled back after blocking us leaves the pair unowned: try again.
        out.update(match_or_create_many(session, {key: wanted[key] for key in lost},
                                        skip_locked=skip_locked))
    return out
