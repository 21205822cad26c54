"""Alembic environment: the URL comes from the caller (``promopilot db upgrade``)."""

from alembic import context
from sqlalchemy import pool
from sqlmodel import SQLModel

import storage.all_models  # noqa: F401  (registers every table on the metadata)
from storage.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
