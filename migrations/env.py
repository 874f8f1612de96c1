"""Alembic environment: the URL comes from Settings (DATABASE_URL), or from the caller
(`config.attributes["connection"]` / `config.attributes["url"]`) in tests."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from core.platform.db import make_engine, normalise_url
from core.platform.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Render our custom column type as plain SQLAlchemy so migrations do not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTERs
        compare_type=True,
        render_item=render_item,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get("url")
    if url is None:
        from core.platform.config import load_or_exit

        url = load_or_exit().DATABASE_URL
    engine = make_engine(normalise_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
