"""``SqlNonceStore``: the used-nonce store of signed API requests, in the control-plane database.

It implements ``consortia.control.auth.NonceStore`` for several control-plane processes
sharing one database. A claim is one statement::

    INSERT INTO api_nonces (access_key_id, nonce, expires_at) VALUES (:k, :n, :e)
    ON CONFLICT (access_key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
    WHERE api_nonces.expires_at < :now
    RETURNING nonce

The primary key ``(access_key_id, nonce)`` makes it atomic: of two concurrent claims of a
pair, the database lets one insert and the other meet the conflict (PostgreSQL makes the
second wait for the first to commit, SQLite serializes writers), so exactly one writes a
row, which RETURNING hands back, and returns True. An entry whose expiry has passed is
taken over by the ``DO UPDATE``, so a stale row never blocks a claim before it is purged.

Expired rows are deleted by ``purge(now)``, which ``claim`` also runs at most once every
``purge_interval`` seconds (of the ``now`` it is given). The table has no size bound: disk,
not memory, holds it, and only requests whose signature verified write to it.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from sqlalchemy import Table, delete, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from consortia.control.store.models import ApiNonce
from consortia.types.errors import Unavailable

DEFAULT_PURGE_INTERVAL = 60.0
"""Seconds between the purges a claim triggers."""

_TABLE = cast(Table, ApiNonce.__table__)


class SqlNonceStore:
    """A ``NonceStore`` in the ``api_nonces`` table of a SQLite or PostgreSQL database."""

    def __init__(self, engine: Engine, *, purge_interval: float = DEFAULT_PURGE_INTERVAL
                 ) -> None:
        dialect = engine.dialect.name
        if dialect == "postgresql":
            self._insert: Any = postgresql.insert
        elif dialect == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"SqlNonceStore supports sqlite and postgresql, not {dialect}")
        self._engine = engine
        self.purge_interval = purge_interval
        self._lock = threading.Lock()
        self._next_purge: float | None = None

    def claim(self, access_key_id: str, nonce: str, *, expires_at: float, now: float) -> bool:
        """Record the pair until ``expires_at``; False (recording nothing) if it is live.

        Raises ``Unavailable`` when the database cannot be reached or stays locked.
        """
        stmt = self._insert(_TABLE).values(access_key_id=access_key_id, nonce=nonce,
                                           expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_TABLE.c.access_key_id, _TABLE.c.nonce],
            set_={"expires_at": stmt.excluded.expires_at},
            where=_TABLE.c.expires_at < now,
        ).returning(_TABLE.c.nonce)
        try:
            with self._engine.begin() as connection:
                claimed = connection.execute(stmt).first() is not None
        except exc.OperationalError as e:
            raise Unavailable(f"the nonce store's database is unavailable: {e.orig}") from e
        if self._purge_due(now):
            self.purge(now)
        return claimed

    def purge(self, now: float) -> int:
        """Delete the entries that expired before ``now``; returns how many."""
        stmt = delete(_TABLE).where(_TABLE.c.expires_at < now)
        try:
            with self._engine.begin() as connection:
                result = connection.execute(stmt)
        except exc.OperationalError as e:
            raise Unavailable(f"the nonce store's database is unavailable: {e.orig}") from e
        return result.rowcount

    def _purge_due(self, now: float) -> bool:
        with self._lock:
            if self._next_purge is not None and now < self._next_purge:
                return False
            self._next_purge = now + self.purge_interval
            return True
