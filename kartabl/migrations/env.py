"""Alembic environment: the URL comes from the caller (kartabl.migrate) or from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from config.settings import get_settings
from kartabl.db import make_engine
from kartabl.models import Base
from kartabl.models.search import modelled

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=modelled,  # migration 0002's search DDL, beside the models
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
