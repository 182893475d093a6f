"""Engines, sessions and migrations of the control-plane database.

::

    engine = create_engine("sqlite:///var/consortia/control.sqlite3")   # or postgresql://…
    upgrade(engine)                      # Alembic migrations to head, in one transaction
    Session = session_factory(engine)
    with Session.begin() as session:     # commits, or rolls back on an exception
        session.add(Tenant(name="acme"))

SQLite (the default) is opened in WAL mode with ``foreign_keys=ON``, ``synchronous=FULL``
and a busy timeout, and every transaction starts with ``BEGIN IMMEDIATE``: writers queue
on the busy timeout instead of failing with "database is locked" when a read transaction
tries to become a write one. PostgreSQL URLs use the psycopg 3 driver.

The migrations ship inside this package (``migrations/``), so an installed Consortia can
upgrade its database without a checkout or an ``alembic.ini``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from consortia.control.store.base import Base, UtcDateTime
from consortia.types.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 5_000
"""How long a SQLite writer waits for the write lock before giving up."""

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def create_engine(url: str | URL, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS,
                  **kwargs: Any) -> Engine:
    """An engine for a ``sqlite:///path`` or ``postgresql://…`` URL, configured for the store.

    ``postgresql://`` and ``postgresql+psycopg://`` both select psycopg 3. ``sqlite://``
    (in memory) gives one shared connection, for experiments; use a file for anything else.
    Other keyword arguments go to ``sqlalchemy.create_engine``.
    """
    u = make_url(url)
    backend = u.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(f"unsupported control-plane database {backend!r}: "
                          f"use one of {', '.join(SUPPORTED_BACKENDS)}")
    if backend == "postgresql":
        if u.get_driver_name() not in ("psycopg", "postgresql"):
            raise ConfigError(f"use the psycopg driver (postgresql+psycopg://), "
                              f"not {u.drivername}")
        u = u.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(u, **kwargs)

    memory = u.database in (None, "", ":memory:")
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    engine = sa.create_engine(u, **kwargs)
    _configure_sqlite(engine, busy_timeout_ms=busy_timeout_ms, wal=not memory)
    return engine


def _configure_sqlite(engine: Engine, *, busy_timeout_ms: int, wal: bool) -> None:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(engine, expire_on_commit=False)


# --- migrations ----------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, without any ``alembic.ini``.

    With ``connection``, ``env.py`` migrates through it (inside its transaction).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _engine_for(target: str | URL | Engine) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = create_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(target: str | URL | Engine, revision: str = "head") -> None:
    """Run the migrations of ``target`` (a URL or an engine) up to ``revision``.

    All pending migrations run in one transaction: on PostgreSQL and SQLite, whose DDL is
    transactional, a failure leaves the database at the revision it had.
    """
    with _engine_for(target) as engine, engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def head_revision() -> str:
    """The newest revision the packaged migrations define."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS_DIR}")
    return head


def current_revision(target: str | URL | Engine) -> str | None:
    """The revision ``target`` is at; None for a database never migrated."""
    with _engine_for(target) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_differences(target: str | URL | Engine) -> list[Any]:
    """What Alembic's autogenerate finds between ``target``'s schema and the models.

    Empty when the migrations and ``models.py`` agree; each entry is an Alembic diff tuple
    such as ``("add_column", None, "nodes", Column(...))``.
    """
    with _engine_for(target) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=context_options(connection))
        return list(compare_metadata(context, Base.metadata))


def new_revision(scratch: str | URL, message: str) -> Path:
    """Autogenerate the next migration file from the models' difference with ``scratch``.

    ``scratch`` is a throw-away database (``sqlite:///tmp/scratch.sqlite3``) that is first
    upgraded to head. The file is named ``NNNN_<slug>.py`` and must be read and edited
    before it is committed: autogenerate misses renames and CHECK constraint changes.
    """
    with _engine_for(scratch) as engine:
        upgrade(engine)
        head = head_revision()
        rev_id = f"{int(head) + 1:04d}"
        with engine.begin() as connection:
            config = alembic_config(connection)
            config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
            script = command.revision(config, message=message, autogenerate=True,
                                      rev_id=rev_id)
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic produced no single revision")
    return Path(script.path)


def context_options(connection: Connection) -> dict[str, Any]:
    """The options every migration context of the store is configured with (see env.py)."""
    return {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "render_item": _render_item,
        # SQLite cannot ALTER most things: later migrations copy-and-move tables instead.
        "render_as_batch": connection.dialect.name == "sqlite",
    }


def _render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False
