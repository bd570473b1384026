"""The figures of ``make chaos``, from the database and from the provider stand-ins.

Sends are counted where the customer would see them, by idempotency key: SMS by Kavenegar
``localid`` (the reply id) and by the reply's marker in the text (a resend under another
localid would pass Kavenegar's duplicate guard), email by Message-ID at the SMTP server,
Telegram by the reply's marker in the message text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from bench.chaos_env import Deployment
from bench.chaos_load import Replies, Sent
from kartabl.models import Direction, Event, Message, Reply, ReplyState
from responders.outcomes import CHECK_WITH_CUSTOMER

IN_MARK = re.compile(r"chaos-in-\d+")
OUT_MARK = re.compile(r"chaos-out-\d+")
ROUTED = "message.routed"
OPEN_STATES = (ReplyState.APPROVED, ReplyState.SENDING)


@dataclass
class Figures:
    chaos_in: int = 0
    lost: int = 0
    duplicated: int = 0
    double_routed: int = 0
    out: int = 0
    double_sent: int = 0
    stuck: int = 0
    telegram_unknown: int = 0
    worst_route_delay_s: float = 0.0
    unrouted: int = 0
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"chaos_in={self.chaos_in} lost={self.lost} duplicated={self.duplicated} "
                f"double_routed={self.double_routed} out={self.out} "
                f"double_sent={self.double_sent} stuck={self.stuck} "
                f"telegram_unknown={self.telegram_unknown} "
                f"worst_route_delay_s={self.worst_route_delay_s:.1f}")


def open_replies(dep: Deployment, ids: list[int]) -> list[Reply]:
    """Replies approved but not yet sent, or still in ``sending``."""
    with dep.db() as s:
        rows = list(s.scalars(select(Reply).where(Reply.id.in_(ids),
                                                  Reply.state.in_(OPEN_STATES))))
        s.expunge_all()
        return rows


def inbound(dep: Deployment, sent: Sent, fig: Figures) -> None:
    with dep.db() as s:
        rows = s.execute(select(Message.id, Message.channel, Message.external_id, Message.text,
                                Message.routed_at, Message.created_at)
                         .where(Message.direction == Direction.IN)).all()
        routed = Counter({int(mid): int(n) for mid, n in s.execute(
            select(Event.message_id, func.count()).where(Event.kind == ROUTED)
            .group_by(Event.message_id)) if mid is not None})
        now = s.scalar(select(func.now()))
    stored: Counter[str] = Counter()
    for row in rows:
        key = (row.external_id if row.channel == "email"
               else (m.group(0) if (m := IN_MARK.search(row.text or "")) else ""))
        stored[key] += 1
        if row.routed_at is None:
            fig.unrouted += 1
        end = row.routed_at or now  # an unrouted message counts as delayed until now
        if end is not None and row.created_at is not None:
            delay = (end.replace(tzinfo=None) - row.created_at.replace(tzinfo=None))
            fig.worst_route_delay_s = max(fig.worst_route_delay_s, delay.total_seconds())
    fig.chaos_in = len(sent.keys)
    lost = [k for k in sent.keys if stored[k] == 0]
    dup = [k for k in sent.keys if stored[k] > 1]
    fig.lost, fig.duplicated = len(lost), len(dup)
    fig.double_routed = sum(1 for n in routed.values() if n > 1)
    if lost:
        fig.details.append(f"lost: {lost[:20]}")
    if dup:
        fig.details.append(f"duplicated: {dup[:20]}")
    if fig.double_routed:
        fig.details.append("routed twice: "
                           f"{[m for m, n in routed.items() if n > 1][:20]}")
    if fig.unrouted:
        fig.details.append(f"unrouted: {fig.unrouted} message(s)")


def outbound(dep: Deployment, replies: Replies, fig: Figures) -> None:
    ids = list(replies.approved)
    with dep.db() as s:
        rows = s.execute(select(Reply.id, Reply.state, Reply.channel, Reply.error)
                         .where(Reply.id.in_(ids))).all()
    by_marker = {marker: rid for rid, (_, marker) in replies.approved.items()}
    twice: dict[str, list[int]] = {}
    # SMS: by localid (the reply id), and by the marker whatever the localid
    sms_marks = Counter(m.group(0) for sms in list(dep.kavenegar.sent)
                        if (m := OUT_MARK.search(sms.message)))
    twice["sms"] = sorted({rid for rid, (ch, mark) in replies.approved.items() if ch == "sms"
                           and (len(dep.kavenegar.sends_of(str(rid))) > 1
                                or sms_marks[mark] > 1)})
    # Email: by Message-ID (ours carry the reply id: <kartabl.<id>.…>)
    mids = Counter(str(m["Message-ID"]) for m in dep.smtp.messages())
    twice["email"] = sorted({int(r.group(1)) for mid, n in mids.items()
                             if n > 1 and (r := re.search(r"kartabl\.(\d+)\.", mid))})
    # Telegram: by the reply's marker in the text
    tg_marks = Counter(m.group(0) for msg in list(dep.bot_api.sent)
                       if (m := OUT_MARK.search(msg.text)))
    twice["telegram"] = sorted(by_marker[k] for k, n in tg_marks.items()
                               if n > 1 and k in by_marker)
    fig.double_sent = sum(len(v) for v in twice.values())
    for channel, rids in twice.items():
        if rids:
            fig.details.append(f"{channel} sent twice: replies {rids}")
    states = Counter(str(r.state) for r in rows)
    fig.out = states[ReplyState.SENT] + states[ReplyState.DELIVERED]
    stuck = [(r.id, str(r.state)) for r in rows if r.state in OPEN_STATES]
    fig.stuck = len(stuck)
    if stuck:
        fig.details.append(f"stuck (id, state): {stuck}")
    # Failed as an unknown outcome (at most once): at once by the outbox (a timeout or a 5xx
    # after the request left) or by the reconcile sweep (a crash); both ask the coordinator
    # to check with the customer (responders.outcomes.CHECK_WITH_CUSTOMER).
    unknown = [r for r in rows if r.channel == "telegram" and r.state == ReplyState.FAILED
               and CHECK_WITH_CUSTOMER in (r.error or "")]
    fig.telegram_unknown = len(unknown)
    failed = Counter(f"{r.channel}: {r.error}" for r in rows if r.state == ReplyState.FAILED)
    fig.details.append(f"reply states: {dict(states)}")
    if failed:
        fig.details.append(f"failed replies: {dict(failed)}")
