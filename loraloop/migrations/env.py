"""Alembic environment: runs migrations against the URL loraloop hands it."""

from alembic import context
from sqlalchemy import pool
from sqlmodel import SQLModel, create_engine

# Imported for their side effect: they register their tables on SQLModel.metadata.
import feedback.drift.tables
import feedback.jobs
import feedback.lease
import feedback.models  # noqa: F401
import serve.tables  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
