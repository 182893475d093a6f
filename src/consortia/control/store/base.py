"""The declarative base and the column kinds every control-plane table shares.

- ``Base``: SQLAlchemy 2 typed declarative base whose metadata names every constraint and
  index (``NAMING_CONVENTION``), so migrations can drop or alter them by name on
  PostgreSQL and, through batch mode, on SQLite.
- ``new_id(prefix)``: readable, unguessable primary keys such as ``net-7k3q9d0xw2m4c8rt``
  (ADR 0008).
- ``UtcDateTime``: a timestamp that is always an aware UTC ``datetime`` in Python, whatever
  the database stores.
- ``enum_type``: a ``StrEnum`` stored as its values in ``VARCHAR(32)`` with a CHECK.
- ``Timestamps`` and ``Idempotent``: the created/updated columns and the create-request
  token columns mixed into the resource tables.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Dialect, Enum, ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 32
"""Width of every id column: a prefix, ``-`` and 16 random characters (at most 20 today),
or an 18-character access key id; room is left for longer prefixes."""

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case: no i l o u
_ID_RANDOM_CHARS = 16                               # 80 random bits


def new_id(prefix: str) -> str:
    """``<prefix>-`` followed by 16 characters of Crockford base32 (80 random bits)."""
    return prefix + "-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_RANDOM_CHARS))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base of every mapped control-plane table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware ``datetime`` in UTC, stored as ``timestamptz`` (PostgreSQL) or UTC text (SQLite).

    Naive datetimes are refused on the way in: a timestamp without a zone is a bug.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_type(enum_class: type[StrEnum], name: str) -> Enum:
    """``enum_class`` stored as its values, ``VARCHAR(32)``, CHECK named ``ck_<table>_<name>``."""
    return Enum(enum_class, name=name, native_enum=False, create_constraint=True, length=32,
                validate_strings=True, values_callable=_values)


def _values(enum_class: type[StrEnum]) -> list[str]:
    return [member.value for member in enum_class]


def id_column(prefix: str) -> Mapped[str]:
    """The primary key of a resource table, filled with ``new_id(prefix)`` on insert."""
    return mapped_column(String(ID_LENGTH), primary_key=True, default=lambda: new_id(prefix))


def ref(*foreign_keys: ForeignKey, **kwargs: Any) -> Mapped[Any]:
    """A column holding another row's id; composite foreign keys are declared by the table.

    Nullable when its annotation is ``Mapped[str | None]`` (or when told so).
    """
    return mapped_column(String(ID_LENGTH), *foreign_keys, **kwargs)


class Timestamps:
    """``created_at`` and ``updated_at``, aware UTC, set by the ORM on insert and update."""

    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, sort_order=90)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                 onupdate=utcnow, sort_order=91)


class Idempotent:
    """The client token of the create request that made the row.

    Each table declares ``UNIQUE (tenant_id, client_token)``: a retried create with the same
    token finds the row its first attempt made (NULLs never collide, so token-less creates
    are unconstrained). ``request_sha256`` fingerprints that first request, so a reuse of the
    token for a different request can be refused rather than answered with the wrong row.
    """

    client_token: Mapped[str | None] = mapped_column(String(64), sort_order=80)
    request_sha256: Mapped[str | None] = mapped_column(String(64), sort_order=81)
