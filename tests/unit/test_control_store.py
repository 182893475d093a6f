"""The control-plane store on SQLite (the shared suite), plus what is SQLite's or no database's:
pragmas, engine configuration, ids, timestamps, packaged migrations, password hashing."""

from __future__ import annotations

import re
import shutil
import unicodedata
from datetime import datetime
from pathlib import Path

import argon2
import pytest
import sqlalchemy as sa
from argon2.exceptions import InvalidHashError

from consortia.control.store import db
from consortia.control.store.base import UtcDateTime, new_id
from consortia.control.store.nonces import SqlNonceStore
from consortia.control.store.passwords import (
    OWASP_BASELINE,
    Passwords,
    hash_password,
    needs_rehash,
    verify_password,
)
from consortia.types.errors import ConfigError, Unavailable
from tests.control_store_suite import ControlStoreSuite

# Cheap parameters where a test hashes for its own sake; the default ones are checked once.
FAST = Passwords(argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=32,
                                   time_cost=1, memory_cost=1024, parallelism=1))


class TestSqlite(ControlStoreSuite):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'control.sqlite3'}"


# --- engines ---------------------------------------------------------------------------------


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}", busy_timeout_ms=1234)
    with engine.connect() as c:
        pragma = {name: c.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    engine.dispose()
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 1234,
                      "synchronous": 2}  # 2 = FULL


def test_sqlite_transactions_take_the_write_lock_first(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a second writer waits (then gives up) instead of deadlocking later."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}", busy_timeout_ms=50)
    db.upgrade(engine)
    with engine.connect() as first:
        first.execute(sa.text("SELECT 1"))  # a read begins a transaction holding the lock
        with pytest.raises(sa.exc.OperationalError, match="locked"), engine.begin() as other:
            other.execute(sa.text("SELECT 1"))
        first.rollback()
    # ... and the nonce store reports it as the service being unavailable
    with engine.connect() as first:
        first.execute(sa.text("SELECT 1"))
        with pytest.raises(Unavailable):
            SqlNonceStore(engine).claim("CK1", "n" * 16, expires_at=2.0, now=1.0)
        first.rollback()
    engine.dispose()


def test_in_memory_sqlite_is_one_database(tmp_path: Path) -> None:
    engine = db.create_engine("sqlite://")
    db.upgrade(engine)
    assert db.schema_differences(engine) == []


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db"])
def test_unsupported_databases_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        db.create_engine(url)


def test_postgresql_urls_use_psycopg3() -> None:
    engine = db.create_engine("postgresql://u:p@127.0.0.1:1/db")
    assert engine.dialect.driver == "psycopg"


def test_migrations_ship_inside_the_package() -> None:
    assert db.MIGRATIONS_DIR.is_relative_to(Path(db.__file__).parent)
    assert (db.MIGRATIONS_DIR / "env.py").is_file()
    assert (db.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert db.head_revision() == "0008"


def test_new_revision_without_model_changes_is_empty(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS_DIR, migrations,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(db, "MIGRATIONS_DIR", migrations)
    head = db.head_revision()
    path = db.new_revision(f"sqlite:///{tmp_path / 'scratch.sqlite3'}", "nothing new")
    assert path == migrations / "versions" / f"{int(head) + 1:04d}_nothing_new.py"
    text = path.read_text()
    assert f"down_revision: str | None = '{head}'" in text
    assert re.search(r"def upgrade\(\) -> None:\n(    #.*\n)?    pass\n", text)


# --- ids and timestamps ----------------------------------------------------------------------


def test_ids_are_prefixed_and_random() -> None:
    ids = {new_id("net") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"net-[0-9a-hjkmnp-tv-z]{16}", i) for i in ids)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2030, 1, 1), sa.create_engine("sqlite://")
                                         .dialect)


# --- passwords -------------------------------------------------------------------------------


def test_password_round_trip_with_default_parameters() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapler")
    assert not needs_rehash(stored)
    assert OWASP_BASELINE.type is argon2.Type.ID


def test_hashes_are_salted() -> None:
    assert FAST.hash("pw") != FAST.hash("pw")


def test_stronger_parameters_ask_for_a_rehash() -> None:
    stored = FAST.hash("pw")
    assert needs_rehash(stored)         # the default parameters are stronger
    assert verify_password(stored, "pw")  # ... yet the old hash still verifies


def test_missing_hash_never_verifies() -> None:
    assert not FAST.verify(None, "")
    assert not FAST.verify(None, "consortia/no-such-password")


def test_passwords_are_normalized() -> None:
    composed = "caf\u00e9"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert FAST.verify(FAST.hash(composed), decomposed)


def test_empty_and_huge_passwords() -> None:
    with pytest.raises(ValueError, match="empty"):
        FAST.hash("")
    with pytest.raises(ValueError, match="at most"):
        FAST.hash("x" * 1025)
    assert not FAST.verify(FAST.hash("x" * 1024), "x" * 1025)


def test_a_corrupted_stored_hash_fails_loudly() -> None:
    with pytest.raises(InvalidHashError):
        FAST.verify("not a hash", "pw")


def test_only_argon2id() -> None:
    with pytest.raises(ValueError, match="Argon2id"):
        Passwords(argon2.Parameters(type=argon2.Type.I, version=19, salt_len=16, hash_len=32,
                                    time_cost=1, memory_cost=1024, parallelism=1))
