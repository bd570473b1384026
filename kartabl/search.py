"""The search index: what is searchable, in the form it is matched in.

Searchable: an inbound message routed to a conversation (its subject and text), a private
note (a ``conversation.note`` event, ``data["text"]``) and a reply once sent. Each is one
:class:`~kartabl.models.SearchDoc` row, written by the step that stores its source in the
same transaction (the router's batch, :func:`kartabl.workflow.transitions.note`, the
dispatcher's ``_mark_sent``), so the index never lags what a reader sees and needs no
queue. ``kartabl search reindex`` (:func:`reindex`) rebuilds it from those tables.

The text is stored as :func:`search_form` gives it: :func:`kartabl.text.normalize_text`
(Arabic letter forms, digits, harakat, tatweel, case) plus ة→ه and ZWNJ as a space. The
compound spellings ("می‌خواهم", "میخواهم", "می خواهم") are matched in the *squashed*
form, the text without spaces (:func:`squash`); PostgreSQL keeps a trigram index on that
expression, SQLite an FTS5 trigram table; English words go through a stemming full-text
index on the spaced form (migration 0002 has the DDL). The console's query side is
:mod:`console.search_query`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from kartabl.models import Direction, Event, Message, Reply, ReplyState, SearchDoc
from kartabl.text import ZWNJ, normalize_text

MESSAGE, NOTE, REPLY = "message", "note", "reply"
SOURCES: Final = (MESSAGE, NOTE, REPLY)
NOTE_KIND: Final = "conversation.note"
SENT_STATES: Final = (ReplyState.SENT, ReplyState.DELIVERED)

# Beyond normalize_text: the letters that search treats as one and routing does not (yet):
# teh marbuta and the Kurdish ae are written for heh; ZWNJ is a space for search (the
# squashed form drops both).
_SEARCH_LETTERS = str.maketrans({"ة": "ه", "ە": "ه", ZWNJ: " ", "\x00": None})
_SPACES = re.compile(r" +")

# The PostgreSQL indexes of migration 0002, by name: reindex drops and recreates them
# around a bulk load (as a fresh CREATE INDEX is much faster than row-by-row GIN inserts).
PG_INDEXES: Final = {
    "ix_search_doc_fts":
        "CREATE INDEX ix_search_doc_fts ON search_doc USING gin "
        "(to_tsvector('english'::regconfig, text))",
    "ix_search_doc_trgm":
        "CREATE INDEX ix_search_doc_trgm ON search_doc USING gin "
        "(replace(text, ' '::text, ''::text) gin_trgm_ops)",
}


def search_form(s: str) -> str:
    """``s`` as the index stores it and queries are matched: normalised, ZWNJ a space."""
    return _SPACES.sub(" ", normalize_text(s).translate(_SEARCH_LETTERS)).strip()


def squash(s: str) -> str:
    """The form compound spellings meet in: :func:`search_form` without its spaces."""
    return search_form(s).replace(" ", "")


def message_text(subject: str, body: str) -> str:
    return f"{subject}\n{body}" if subject else body


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doc:
    conversation_id: int
    source: str
    source_id: int
    at: datetime
    raw: str

    def row(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id, "source": self.source,
                "source_id": self.source_id, "at": self.at, "text": search_form(self.raw)}


def add(session: Session, docs: Iterable[Doc]) -> None:
    """Index ``docs`` in the caller's transaction (one executemany)."""
    rows = [d.row() for d in docs]
    if rows:
        session.execute(insert(SearchDoc), rows)


def index_messages(session: Session, messages: Iterable[Message]) -> None:
    """Index inbound messages that have just been given their conversation."""
    add(session, (Doc(m.conversation_id, MESSAGE, m.id, m.received_at,
                      message_text(m.subject, m.text))
                  for m in messages if m.conversation_id is not None
                  and m.direction == Direction.IN))


def index_note(session: Session, event: Event) -> None:
    if event.id is None:
        session.flush()  # the event's id and time
    if event.conversation_id is not None:
        add(session, [Doc(event.conversation_id, NOTE, event.id, event.at,
                          str(event.data.get("text", "")))])


def index_reply(session: Session, reply: Reply) -> None:
    """Index a reply that has just been recorded sent (its body as it left)."""
    add(session, [Doc(reply.conversation_id, REPLY, reply.id, reply.sent_at or reply.updated_at,
                      reply.body)])


def move_docs(session: Session, *, message_ids: Sequence[int] = (),
              reply_ids: Sequence[int] = (), event_ids: Sequence[int] = (),
              to_conversation_id: int) -> None:
    """Follow a merge or a split: the documents of these sources now belong to
    ``to_conversation_id`` (their text is unchanged, so no index but the row's moves)."""
    for source, ids in ((MESSAGE, message_ids), (REPLY, reply_ids), (NOTE, event_ids)):
        if ids:
            session.execute(update(SearchDoc)
                            .where(SearchDoc.source == source, SearchDoc.source_id.in_(ids))
                            .values(conversation_id=to_conversation_id))


def forget(session: Session, source: str, source_id: int) -> None:
    """Drop a source's document: a sent reply that failed after all (a bounce, a
    delivery report) is no longer one of the sent replies that search covers."""
    session.execute(delete(SearchDoc).where(SearchDoc.source == source,
                                            SearchDoc.source_id == source_id))


# -- rebuilding ---------------------------------------------------------------------------


def _sources(session: Session, batch: int) -> Iterator[list[Doc]]:
    """Every searchable row, in batches, by keyset on the source's id."""
    m = Message
    queries: list[tuple[Any, Callable[[Any], Doc]]] = [
        (select(m.id, m.conversation_id, m.received_at, m.subject, m.text)
         .where(m.direction == Direction.IN, m.conversation_id.is_not(None)),
         lambda r: Doc(r[1], MESSAGE, r[0], r[2], message_text(r[3], r[4]))),
        (select(Event.id, Event.conversation_id, Event.at, Event.data)
         .where(Event.kind == NOTE_KIND, Event.conversation_id.is_not(None)),
         lambda r: Doc(r[1], NOTE, r[0], r[2], str((r[3] or {}).get("text", "")))),
        (select(Reply.id, Reply.conversation_id, Reply.sent_at, Reply.body)
         .where(Reply.state.in_(SENT_STATES), Reply.sent_at.is_not(None)),
         lambda r: Doc(r[1], REPLY, r[0], r[2], r[3])),
    ]
    for query, make in queries:
        key = query.selected_columns[0]
        last = 0
        while True:
            rows = session.execute(query.where(key > last).order_by(key).limit(batch)).all()
            if not rows:
                break
            last = rows[-1][0]
            yield [make(r) for r in rows]


def count_sources(session: Session) -> int:
    m = Message
    n = session.scalar(select(func.count()).select_from(m).where(
        m.direction == Direction.IN, m.conversation_id.is_not(None))) or 0
    n += session.scalar(select(func.count()).select_from(Event).where(
        Event.kind == NOTE_KIND, Event.conversation_id.is_not(None))) or 0
    n += session.scalar(select(func.count()).select_from(Reply).where(
        Reply.state.in_(SENT_STATES), Reply.sent_at.is_not(None))) or 0
    return n


def reindex(session: Session, *, batch: int = 5000,
            progress: Callable[[int], None] | None = None) -> int:
    """Empty the index and rebuild it from the messages, notes and sent replies; commits
    (once per batch). Returns the documents written. On PostgreSQL the GIN indexes are
    dropped for the load and built once at the end. Searches meanwhile see a partial
    index: run it when the index is new or suspected wrong, not routinely."""
    pg = session.get_bind().dialect.name == "postgresql"
    # TRUNCATE on PostgreSQL: no dead rows left of millions (SQLite's triggers need DELETE)
    session.execute(text("TRUNCATE search_doc") if pg else delete(SearchDoc))
    if pg:
        for name in PG_INDEXES:
            session.execute(text(f"DROP INDEX IF EXISTS {name}"))
    session.commit()
    written = 0
    try:
        for docs in _sources(session, batch):
            add(session, docs)
            session.commit()
            written += len(docs)
            if progress is not None:
                progress(len(docs))
    finally:
        if pg:
            session.rollback()
            # one sort in memory rather than many merges on disk, for this build only
            session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for ddl in PG_INDEXES.values():
                session.execute(text(ddl.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")))
            session.execute(text("ANALYZE search_doc"))
            session.commit()
    return written


def indexed(session: Session, source: str, source_ids: Sequence[int]) -> set[int]:
    """Which of ``source_ids`` have a document (tests and the reindex check use it)."""
    return set(session.scalars(select(SearchDoc.source_id).where(
        SearchDoc.source == source, SearchDoc.source_id.in_(source_ids))))
