"""The manager's SQLite store: encrypted payloads by hash, deliveries, directory updates.

WAL with ``synchronous=FULL`` (ADR 0002): a ``put`` has reached the disk when it
returns, so a send or a push is acknowledged only after it is durable. Payloads are
kept encrypted, exactly as received; the store never holds a plaintext. A repeated
``put`` of the same hash merges boxes and is otherwise a no-op (replays are harmless).

Tables::

    payloads(hash PRIMARY KEY, envelope, origin, created_ms)
    deliveries(hash, org_id, state, attempts, last_error, updated_ms; PK (hash, org_id))
    directory_updates(org_id PRIMARY KEY, sequence, entry_json)
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from consortia.privacy.box import EncryptedPayload, decode_payload

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payloads (
  hash BLOB PRIMARY KEY, envelope BLOB NOT NULL, origin TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
  hash BLOB NOT NULL, org_id TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
  last_error TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (hash, org_id));
CREATE TABLE IF NOT EXISTS directory_updates (
  org_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL, entry_json TEXT NOT NULL);
"""

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    org_id: str
    state: str
    """``pending`` (being pushed), ``delivered`` (acknowledged) or ``failed``."""
    attempts: int
    last_error: str


class PrivacyStore:
    def __init__(self, path: Path, *, max_payload_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._max = max_payload_bytes

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, ep: EncryptedPayload, origin: str, now_ms: int) -> EncryptedPayload:
        """Store ``ep`` (merging boxes with a copy already held); returns what is stored."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT envelope FROM payloads WHERE hash = ?",
                                       (ep.hash,)).fetchone()
                if row is None:
                    stored = ep
                    self._db.execute("INSERT INTO payloads VALUES (?, ?, ?, ?)",
                                     (ep.hash, ep.encode(), origin, now_ms))
                else:
                    held = decode_payload(row[0], max_bytes=self._max)
                    stored = held.merged(ep)
                    if stored != held:
                        self._db.execute("UPDATE payloads SET envelope = ? WHERE hash = ?",
                                         (stored.encode(), ep.hash))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored

    def get(self, payload_hash: bytes) -> EncryptedPayload | None:
        with self._lock:
            row = self._db.execute("SELECT envelope FROM payloads WHERE hash = ?",
                                   (payload_hash,)).fetchone()
        return None if row is None else decode_payload(row[0], max_bytes=self._max)

    def count(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM payloads").fetchone()[0]
        return n

    def record_delivery(self, payload_hash: bytes, org_id: str, state: str, attempts: int,
                        last_error: str, now_ms: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash, org_id) "
                "DO UPDATE SET state = excluded.state, attempts = excluded.attempts, "
                "last_error = excluded.last_error, updated_ms = excluded.updated_ms",
                (payload_hash, org_id, state, attempts, last_error, now_ms))

    def deliveries(self, payload_hash: bytes) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                "SELECT org_id, state, attempts, last_error FROM deliveries WHERE hash = ? "
                "ORDER BY org_id", (payload_hash,)).fetchall()
        return [Delivery(*r) for r in rows]

    def save_directory_update(self, org_id: str, sequence: int, entry_json: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO directory_updates VALUES (?, ?, ?) ON CONFLICT (org_id) DO UPDATE "
                "SET sequence = excluded.sequence, entry_json = excluded.entry_json",
                (org_id, sequence, entry_json))

    def directory_updates(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT entry_json FROM directory_updates ORDER BY org_id").fetchall()
        return [r[0] for r in rows]
