"""Console sessions: password login, the session behind a cookie, logout.

A login checks the password (Argon2id; an unknown tenant or user costs the same hash, so
timing tells nothing) and creates a session: a 256-bit random token for the browser's
cookie, of which the database keeps only the SHA-256. The CSRF token that cookie-
authenticated changes must carry (``X-CSRF-Token``) is derived from the session token —
``HMAC-SHA256(token, "consortia/csrf")`` — so it needs no storage, cannot be computed
without the cookie, and a page from another origin can neither read the cookie nor the
token (docs/spec/control-api.md, "Console sessions").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from consortia.control.services.context import Actor, Caller
from consortia.control.store.enums import AuditResult, TenantStatus, UserRole, UserStatus
from consortia.control.store.models import ConsoleSession, Tenant, User
from consortia.types.errors import Unauthenticated

if TYPE_CHECKING:
    from consortia.control.services.control import Control

_TOKEN_BYTES = 32


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token bound to a session token."""
    return hmac.new(session_token.encode("utf-8"), b"consortia/csrf", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    session: ConsoleSession
    token: str
    """The cookie's value: shown to the browser once, never stored."""
    csrf_token: str
    caller: Caller


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    session: ConsoleSession
    caller: Caller


class SessionService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def login(self, tenant_name: str, username: str, password: str, *, request_id: str,
              source_ip: str | None, http_status: int | None = None) -> NewSession:
        """A new session, or ``Unauthenticated`` (401 ``bad_credentials``) for any failure."""
        with self._c.transaction() as db:
            row = db.execute(select(User, Tenant).join(Tenant, Tenant.id == User.tenant_id)
                             .where(Tenant.name == tenant_name, User.username == username)
                             ).first()
        user, tenant = (row[0], row[1]) if row is not None else (None, None)
        stored = user.password_hash if user is not None else None
        verified = self._c.passwords.verify(stored, password)  # costs the same if no user
        if (not verified or user is None or tenant is None
                or user.status is not UserStatus.ACTIVE
                or tenant.status is not TenantStatus.ACTIVE):
            if tenant is not None:  # a tenant's trail shows the failed logins it attracts
                self._record_failure(tenant, user, request_id, source_ip)
            raise Unauthenticated("wrong tenant, user name or password, or the user is "
                                  "disabled", code="bad_credentials")
        rehash = (self._c.passwords.hash(password)
                  if stored is not None and self._c.passwords.needs_rehash(stored) else None)
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        now = self._c.now()
        caller = Caller(tenant_id=tenant.id, tenant_name=tenant.name, user_id=user.id,
                        username=user.username, role=user.role)
        with self._c.transaction() as db:
            db.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            session = ConsoleSession(
                tenant_id=tenant.id, user_id=user.id, token_sha256=token_sha256(token),
                expires_at=now + timedelta(seconds=self._c.settings.session_ttl_seconds),
                source_ip=source_ip, created_at=now)
            db.add(session)
            db.flush()
            fresh = db.get(User, user.id)
            if fresh is not None:
                fresh.last_login_at = now
                if rehash is not None:
                    fresh.password_hash = rehash
            caller = replace(caller, session_id=session.id)
            actor = Actor.of(caller, request_id, source_ip, http_status)
            self._c.audit.record(db, actor, "session.create", session.id)
        return NewSession(session, token, csrf_token(token), caller)

    def _record_failure(self, tenant: Tenant, user: User | None, request_id: str,
                        source_ip: str | None) -> None:
        actor = Actor(tenant_id=tenant.id, user_id=None if user is None else user.id,
                      role=UserRole.VIEWER if user is None else user.role,
                      request_id=request_id, source_ip=source_ip)
        with self._c.transaction() as db:
            self._c.audit.record(db, actor, "session.create", None,
                                 result=AuditResult.FAILURE, error_code="bad_credentials",
                                 http_status=401)

    def resolve(self, token: str) -> ResolvedSession:
        """The live session a cookie names; 401 ``invalid_session`` otherwise."""
        now = self._c.now()
        with self._c.transaction() as db:
            row = db.execute(
                select(ConsoleSession, User, Tenant)
                .join(User, (User.id == ConsoleSession.user_id)
                      & (User.tenant_id == ConsoleSession.tenant_id))
                .join(Tenant, Tenant.id == ConsoleSession.tenant_id)
                .where(ConsoleSession.token_sha256 == token_sha256(token))).first()
        if row is None:
            raise Unauthenticated("the session is unknown or ended; log in again")
        session, user, tenant = row
        if session.expires_at < now:
            raise Unauthenticated("the session expired; log in again")
        if user.status is not UserStatus.ACTIVE or tenant.status is not TenantStatus.ACTIVE:
            raise Unauthenticated("the session's user is disabled")
        return ResolvedSession(session, Caller(
            tenant_id=tenant.id, tenant_name=tenant.name, user_id=user.id,
            username=user.username, role=user.role, session_id=session.id))

    def logout(self, actor: Actor, session_id: str) -> None:
        with self._c.transaction() as db:
            db.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id,
                                                    ConsoleSession.tenant_id == actor.tenant_id))
            self._c.audit.record(db, actor, "session.delete", session_id)

