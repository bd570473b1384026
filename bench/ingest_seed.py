"""The ingest bench's database before the clock starts: the schema, the example routing
file's teams with their agents at a realistic capacity, the customers who write on several
channels with their identities linked (as an agent would have done), and for a share of the
customers an earlier conversation, closed, that we answered (so their references, reopens
and bounces have something real to find)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import bindparam, insert, update

from bench.corpus import Person
from bench.ingest_traffic import BOTS, History


def prepare(url: str, persons: list[Person], *, preload: int, history_share: float,
            agents_per_team: int, capacity: int, seed: int = 5) -> dict[int, History]:
    """Returns each seeded customer's :class:`History` (what we sent them before)."""
    from config.routing import get_routing
    from kartabl import db, reply_tokens
    from kartabl.migrate import upgrade
    from kartabl.models import (
        Conversation,
        ConversationStatus,
        Customer,
        Identity,
        Reply,
        ReplyState,
        Role,
        Team,
        TeamMember,
        utcnow,
    )
    from kartabl.models import (
        Person as Agent,
    )
    from router.identity import identity_for
    from router.teams import sync_teams

    upgrade(url)
    with db.session_scope() as s:
        sync_teams(s, get_routing())
        for team in s.query(Team).all():
            for k in range(agents_per_team):
                agent = Agent(username=f"{team.name}-{k}", role=Role.AGENT, capacity=capacity)
                s.add(agent)
                s.flush()
                s.add(TeamMember(team_id=team.id, person_id=agent.id))
        author = s.query(Agent.id).order_by(Agent.id).limit(1).scalar()
    rnd = random.Random(seed)
    answered = {p.idx for p in persons if rnd.random() < history_share}
    linked = [p for p in persons if len(p.addresses) > 1 or p.idx in answered]
    now = utcnow()
    history: dict[int, History] = {}
    with db.engine().begin() as conn:
        ids = conn.execute(
            insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
            [{"display_name": p.name, "tags": []} for p in linked],
        ).scalars().all()
        identities, convs, owners = [], [], []
        for p, cid in zip(linked, ids, strict=True):
            for ch, addr in sorted(p.addresses.items()):
                kind, norm = identity_for(ch, addr)
                identities.append({"customer_id": cid, "kind": kind, "address": norm})
                if p.idx in answered:
                    # Most closed within the reopen window (a reply reopens), some long ago
                    # (a reply opens a new conversation linked to it).
                    closed = now - timedelta(days=1 if rnd.random() < 0.7 else 30)
                    convs.append({
                        "customer_id": cid, "channel": ch, "status": ConversationStatus.CLOSED,
                        "subject": "سفارش قبلی", "opened_at": closed - timedelta(hours=5),
                        "last_message_at": closed, "resolved_at": closed,
                        "first_response_at": closed - timedelta(hours=4)})
                    owners.append((p, ch))
        conn.execute(insert(Identity), identities)
        conv_ids = conn.execute(
            insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), convs,
        ).scalars().all() if convs else []
        replies = []
        for (p, ch), conv_id in zip(owners, conv_ids, strict=True):
            mid = 500 + p.idx
            provider = (f"{BOTS[ch]}:{p.addresses[ch]}:{mid}" if ch in BOTS
                        else f"seed-provider-{conv_id}")
            replies.append({
                "conversation_id": conv_id, "author_id": author, "state": ReplyState.SENT,
                "channel": ch, "body": "سفارش شما ارسال شد", "idempotency_key":
                f"seed-{conv_id}", "provider_id": provider, "attempts": 1,
                "approved_at": now - timedelta(days=31), "sent_at": now - timedelta(days=31)})
        reply_ids = conn.execute(
            insert(Reply).returning(Reply.id, sort_by_parameter_order=True), replies,
        ).scalars().all() if replies else []
        keys = []
        for (p, ch), rid in zip(owners, reply_ids, strict=True):
            past = history.get(p.idx, History())
            if ch == "email":
                key = reply_tokens.make_message_id(rid, "kartabl.example")
                keys.append({"b_id": rid, "b_key": key, "b_provider": key})
                past = History(key, past.telegram, past.bale)
            elif ch == "telegram":
                past = History(past.email, 500 + p.idx, past.bale)
            elif ch == "bale":
                past = History(past.email, past.telegram, 500 + p.idx)
            history[p.idx] = past
        if keys:
            table = Reply.__table__
            conn.execute(update(table).where(table.c.id == bindparam("b_id")).values(
                idempotency_key=bindparam("b_key"), provider_id=bindparam("b_provider")), keys)
        for start in range(0, preload, 5000):
            n = min(5000, preload - start)
            ids = conn.execute(
                insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [{"display_name": f"old {start + i}", "tags": []} for i in range(n)],
            ).scalars().all()
            conn.execute(insert(Identity), [
                {"customer_id": cid, "kind": "email", "address": f"old{start + i}@example.org"}
                for i, cid in enumerate(ids)])
    return history
