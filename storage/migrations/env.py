"""Alembic environment: the URL comes from the caller (``promopilot db upgrade``)."""

from alembic import context
from sqlalchemy import pool, text
from sqlmodel import SQLModel

import storage.all_models  # noqa: F401  (registers every table on the metadata)
from storage.db import make_engine

config = context.config
target_metadata = SQLModel.metadata
# Replicas started together on one PostgreSQL migrate one at a time: the others wait here,
# then find the schema at head (SQLite's BEGIN IMMEDIATE already queues them).
MIGRATION_LOCK = 7_170_719


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()  # the session-level lock outlives this transaction
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
