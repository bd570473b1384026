"""Inbound storage of the widget on both databases: the same client id sent at the same
moment from several connections (a retry racing its original) is one message and one event,
and every event of a visitor gets the next sequence number, without gaps, however the
writes interleave."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.webchat import log as wlog
from channels.webchat.inbound import store_message
from kartabl.models import Message, WebchatEvent, WebchatVisitor, Widget


def seed(db: sessionmaker[Session]) -> tuple[int, int]:
    with db() as s:
        w = Widget(public_id="wrace", name="race", secret="s" * 32, origins=[])
        s.add(w)
        s.flush()
        v = WebchatVisitor(widget_id=w.id, key="vrace")
        s.add(v)
        s.commit()
        return w.id, v.id


def post(db: sessionmaker[Session], widget_id: int, visitor_id: int, client_id: str) -> int:
    with db() as s:
        widget, visitor = s.get(Widget, widget_id), s.get(WebchatVisitor, visitor_id)
        assert widget is not None and visitor is not None
        s.rollback()  # the write's transaction starts clean (SQLite: BEGIN IMMEDIATE)
        return store_message(s, widget, visitor, client_id, f"text of {client_id}").seq


def test_a_retry_racing_its_original_is_one_message(db) -> None:
    widget_id, visitor_id = seed(db)
    with ThreadPoolExecutor(6) as pool:
        seqs = list(pool.map(lambda _: post(db, widget_id, visitor_id, "same-client-id"),
                             range(6)))
    assert set(seqs) == {1}
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
        assert s.scalar(select(func.count()).select_from(WebchatEvent)) == 1


def test_sequence_numbers_have_no_gaps_under_concurrent_writers(db) -> None:
    widget_id, visitor_id = seed(db)

    def reply(n: int) -> int:
        with db() as s:
            seq = wlog.append(s, visitor_id, wlog.REPLY, f"r:{n}", text=f"r{n}").seq
            s.commit()
            return seq

    with ThreadPoolExecutor(6) as pool:
        a = pool.map(lambda n: post(db, widget_id, visitor_id, f"client-{n:04d}"), range(20))
        b = pool.map(reply, range(20))
        seqs = sorted([*a, *b])
    assert seqs == list(range(1, 41))
    with db() as s:
        assert wlog.last_seq(s, visitor_id) == 40
        assert [e.seq for e in wlog.read_after(s, visitor_id, 35)] == [36, 37, 38, 39, 40]
