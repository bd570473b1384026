"""The migrations and the models describe the same schema.

Until the first release the schema is one generated migration
(``scripts/regen-initial-migration.sh``); a model changed without regenerating it would run
in the tests' ``create_all``-free databases only by luck. Alembic's own comparison of the
migrated database with :data:`kartabl.models.Base.metadata` must find nothing to do, on
both databases (indexes with ``postgresql_include`` and partial indexes included).
"""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from kartabl.models import Base
from kartabl.models.search import modelled


def test_the_migrated_schema_is_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            # search's hand-written DDL (migration 0002) is not in the models: left out
            context = MigrationContext.configure(conn, opts={"include_object": modelled})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
