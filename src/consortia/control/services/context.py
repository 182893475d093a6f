"""What every service call carries and shares: the acting user, pages, idempotency.

- ``Caller``: who an authenticated request acts for (tenant, user, role, key or session).
- ``Actor``: a caller plus the request it made (request id, source address): what the
  audit trail records.
- ``Page`` and ``paginate``: keyset pagination over ``(created_at, id)`` with opaque page
  tokens, stable under concurrent inserts.
- ``fingerprint`` and ``Created``: idempotent creates (``client_token``): a retry with the
  same token and parameters gets the first call's resource, other parameters a 409.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from consortia.control.store.base import Idempotent
from consortia.control.store.enums import UserRole
from consortia.types.errors import Conflict, Forbidden, InvalidRequest

ROLE_RANK: dict[UserRole, int] = {
    UserRole.OWNER: 0, UserRole.ADMIN: 1, UserRole.OPERATOR: 2, UserRole.VIEWER: 3,
}
"""Strongest first: a role may do what every weaker role may."""

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def at_least(role: UserRole, minimum: UserRole) -> bool:
    """Whether ``role`` is ``minimum`` or stronger."""
    return ROLE_RANK[role] <= ROLE_RANK[minimum]


def require_role(role: UserRole, minimum: UserRole, what: str = "this call") -> None:
    if not at_least(role, minimum):
        raise Forbidden(f"{what} needs the role {minimum.value} or stronger; "
                        f"the caller is {role.value}")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated principal: the tenant and user a request acts for."""

    tenant_id: str
    tenant_name: str
    user_id: str
    username: str
    role: UserRole
    access_key_id: str | None = None
    """The key that signed the request; None for a console session."""
    session_id: str | None = None
    """The console session; None for a signed request."""


@dataclass(frozen=True, slots=True)
class Actor:
    """A caller making one request: what services act for and the audit trail records."""

    tenant_id: str
    user_id: str | None
    """None for platform actions (``init_platform``, ``create_tenant``)."""
    role: UserRole
    request_id: str
    access_key_id: str | None = None
    session_id: str | None = None
    source_ip: str | None = None
    http_status: int | None = None
    """The HTTP status a success is answered with, for the audit trail (None outside HTTP)."""

    @classmethod
    def of(cls, caller: Caller, request_id: str, source_ip: str | None = None,
           http_status: int | None = None) -> Actor:
        return cls(tenant_id=caller.tenant_id, user_id=caller.user_id, role=caller.role,
                   request_id=request_id, access_key_id=caller.access_key_id,
                   session_id=caller.session_id, source_ip=source_ip,
                   http_status=http_status)

    def require(self, minimum: UserRole, what: str = "this call") -> None:
        """Raise ``Forbidden`` (403 ``forbidden_role``) unless the role is strong enough."""
        require_role(self.role, minimum, what)


# --- pages ---------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_page_token: str | None
    """Pass it back as ``page_token`` for the next page; None on the last page."""


class _Keyed(Protocol):
    id: Any
    created_at: Any


_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")


def encode_page_token(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    """The position a page token names; 422 ``invalid_page_token`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
        stamp, row_id = raw.split("|", 1)
        at = datetime.fromisoformat(stamp)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("page_token is not a token this API returned",
                             code="invalid_page_token") from None
    if at.tzinfo is None or not _ID_RE.match(row_id):
        raise InvalidRequest("page_token is not a token this API returned",
                             code="invalid_page_token")
    return at, row_id


def paginate(db: Session, stmt: Select[T], model: type[_Keyed], *, limit: int,
             page_token: str | None, newest_first: bool = False) -> Page[T]:
    """One page of ``stmt`` ordered by ``(created_at, id)``, after ``page_token``."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    created: InstrumentedAttribute[Any] = model.created_at
    ident: InstrumentedAttribute[Any] = model.id
    if page_token is not None:
        at, row_id = decode_page_token(page_token)
        if newest_first:
            stmt = stmt.where(or_(created < at, and_(created == at, ident < row_id)))
        else:
            stmt = stmt.where(or_(created > at, and_(created == at, ident > row_id)))
    order = (created.desc(), ident.desc()) if newest_first else (created.asc(), ident.asc())
    rows = list(db.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    token = None
    if more:
        last: Any = rows[-1]
        token = encode_page_token(last.created_at, last.id)
    return Page(rows, token)


# --- idempotency ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created(Generic[T]):
    """What an idempotent create returns: the resource, and whether this was a retry."""

    item: T
    replayed: bool = False


def fingerprint(key: bytes, action: str, actor: Actor, params: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of a create request: its action, its user and its parameters.

    Keyed (with a key derived from the master key), so a database dump cannot be used to
    guess the parameters of a create (a new user's password is one of them). The user is
    part of it: one user cannot collect another's response (an access key's secret) by
    replaying its token.
    """
    doc = {"action": action, "user": actor.user_id, "params": dict(params)}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def check_replay(stored_fingerprint: str | None, fp: str, client_token: str) -> None:
    """Refuse a reused ``client_token`` whose request differs from the first one's."""
    if stored_fingerprint is None or not hmac.compare_digest(stored_fingerprint, fp):
        raise Conflict(f"client_token {client_token!r} was already used for a different "
                       "request; use a new token for a new request",
                       code="idempotency_conflict")


R = TypeVar("R", bound=Idempotent)


def by_client_token(db: Session, model: type[R], tenant_id: str, client_token: str) -> R | None:
    """The row a first create with ``client_token`` made in this tenant: what a retried
    create answers with (the table's ``UNIQUE (tenant_id, client_token)`` makes it one)."""
    m: Any = model
    return db.scalar(select(model).where(m.tenant_id == tenant_id,
                                         m.client_token == client_token))


def require_confirmation(given: str | None, expected: str, what: str) -> None:
    """Risk control for deletes: the caller must type the resource's name back."""
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidRequest(f"to delete {what}, pass confirm_name equal to its name "
                             f"({expected!r})", code="confirmation_mismatch")
