"""search: the full-text and trigram indexes over search_doc.text

Written by hand (autogenerate cannot express either): on PostgreSQL, pg_trgm and two GIN
expression indexes (the English stemmed tsvector of the text; trigrams of the text without
spaces, where compound spellings meet); on SQLite, two FTS5 tables kept by triggers (porter
over the text, trigram over the squashed text). The table itself is 0001's.
kartabl.search.PG_INDEXES repeats the PostgreSQL definitions (reindex rebuilds them); the
schema test ignores what this migration adds (kartabl.models.search.UNMODELLED).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PG = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_search_doc_fts ON search_doc USING gin "
    "(to_tsvector('english'::regconfig, text))",
    "CREATE INDEX ix_search_doc_trgm ON search_doc USING gin "
    "(replace(text, ' '::text, ''::text) gin_trgm_ops)",
]
_SQLITE = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(text, content='search_doc', "
    "content_rowid='id', tokenize='porter unicode61')",
    # contentless: the squashed text is nowhere else; deletes name the old value
    "CREATE VIRTUAL TABLE search_tri USING fts5(squash, content='', tokenize='trigram')",
    """CREATE TRIGGER search_doc_ai AFTER INSERT ON search_doc BEGIN
         INSERT INTO search_fts(rowid, text) VALUES (new.id, new.text);
         INSERT INTO search_tri(rowid, squash) VALUES (new.id, replace(new.text, ' ', ''));
       END""",
    """CREATE TRIGGER search_doc_ad AFTER DELETE ON search_doc BEGIN
         INSERT INTO search_fts(search_fts, rowid, text) VALUES ('delete', old.id, old.text);
         INSERT INTO search_tri(search_tri, rowid, squash)
           VALUES ('delete', old.id, replace(old.text, ' ', ''));
       END""",
    """CREATE TRIGGER search_doc_au AFTER UPDATE OF text ON search_doc BEGIN
         INSERT INTO search_fts(search_fts, rowid, text) VALUES ('delete', old.id, old.text);
         INSERT INTO search_tri(search_tri, rowid, squash)
           VALUES ('delete', old.id, replace(old.text, ' ', ''));
         INSERT INTO search_fts(rowid, text) VALUES (new.id, new.text);
         INSERT INTO search_tri(rowid, squash) VALUES (new.id, replace(new.text, ' ', ''));
       END""",
]


def upgrade() -> None:
    for ddl in _PG if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_doc_trgm")
        op.execute("DROP INDEX IF EXISTS ix_search_doc_fts")
    else:
        for trigger in ("search_doc_au", "search_doc_ad", "search_doc_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_tri")
        op.execute("DROP TABLE IF EXISTS search_fts")
