"""The control plane's persistence: tables, migrations, sessions, the SQL nonce store, passwords.

Owns the database schema of every control-plane resource (``models``, described in
``docs/spec/control-data-model.md``), its Alembic migrations (``migrations/``, shipped in
the package), engines and sessions for SQLite (default) and PostgreSQL (``db``), the
shared used-nonce store of signed requests (``SqlNonceStore``) and Argon2id password
hashing (``passwords``). It knows nothing of HTTP and holds no business rules: which
status may follow which, who may vote, is the services' business. Decision: ADR 0008.

::

    from consortia.control.store import db, models

    engine = db.create_engine("sqlite:///control.sqlite3")
    db.upgrade(engine)
    with db.session_factory(engine).begin() as session:
        session.add(models.Tenant(name="acme"))
"""

from consortia.control.store.base import Base, new_id
from consortia.control.store.db import (
    create_engine,
    current_revision,
    head_revision,
    schema_differences,
    session_factory,
    upgrade,
)
from consortia.control.store.nonces import SqlNonceStore
from consortia.control.store.passwords import hash_password, needs_rehash, verify_password

__all__ = [
    "Base", "SqlNonceStore", "create_engine", "current_revision", "hash_password",
    "head_revision", "needs_rehash", "new_id", "schema_differences", "session_factory",
    "upgrade", "verify_password",
]
