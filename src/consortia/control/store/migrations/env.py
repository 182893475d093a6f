"""Alembic's entry point for the control-plane migrations.

``store.db.upgrade`` hands over an open connection in ``config.attributes["connection"]``
and runs every migration inside its transaction. Without one (``alembic`` on the command
line with an ini file naming ``sqlalchemy.url``), an engine is made from that URL.
Offline mode (``--sql``) prints the DDL for the URL's dialect.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from consortia.control.store.base import Base
from consortia.control.store.db import context_options, create_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **context_options(connection))
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=Base.metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use store.db.upgrade(url)")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
