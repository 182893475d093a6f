"""Users of a tenant: list, create, read, change role/status/email/password, delete.

Rules (docs/spec/control-api.md, "Roles"):

- owners and admins manage users; only an owner may create an owner, change anyone's role
  to or from owner, or change or delete an owner;
- a tenant always keeps one active owner: demoting, disabling or deleting the last one is
  a 409 ``last_owner``;
- disabling a user or changing their password ends their console sessions; deleting a
  user deletes their access keys and sessions with them;
- a user id of another tenant is "not found", never "forbidden".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
)
from consortia.control.store.enums import UserRole, UserStatus
from consortia.control.store.models import ConsoleSession, User
from consortia.types.errors import Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control


@dataclass(frozen=True, slots=True)
class UserChanges:
    """A partial update; None leaves a field as it is."""

    role: UserRole | None = None
    status: UserStatus | None = None
    email: str | None = None
    password: str | None = None


def get_user(db: Session, tenant_id: str, user_id: str) -> User:
    """The tenant's user ``user_id``; ``NotFound`` for any other id, whoever owns it."""
    user = db.scalar(select(User).where(User.id == user_id, User.tenant_id == tenant_id))
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _active_owners(db: Session, tenant_id: str) -> int:
    return db.scalar(select(func.count()).select_from(User).where(
        User.tenant_id == tenant_id, User.role == UserRole.OWNER,
        User.status == UserStatus.ACTIVE)) or 0


def _guard_owner(actor: Actor, *roles: UserRole | None) -> None:
    if UserRole.OWNER in roles and actor.role is not UserRole.OWNER:
        raise Forbidden("only an owner may create, change or delete an owner, or grant the "
                        "owner role")


class UserService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def list(self, actor: Actor, *, role: UserRole | None = None,
             status: UserStatus | None = None, limit: int,
             page_token: str | None) -> Page[User]:
        actor.require(UserRole.ADMIN, "listing users")
        stmt = select(User).where(User.tenant_id == actor.tenant_id)
        if role is not None:
            stmt = stmt.where(User.role == role)
        if status is not None:
            stmt = stmt.where(User.status == status)
        with self._c.transaction() as db:
            return paginate(db, stmt, User, limit=limit, page_token=page_token)

    def get(self, actor: Actor, user_id: str) -> User:
        if user_id != actor.user_id:
            actor.require(UserRole.ADMIN, "reading other users")
        with self._c.transaction() as db:
            return get_user(db, actor.tenant_id, user_id)

    def create(self, actor: Actor, *, username: str, role: UserRole, email: str | None = None,
               password: str | None = None, client_token: str | None = None) -> Created[User]:
        actor.require(UserRole.ADMIN, "creating users")
        _guard_owner(actor, role)
        fp = fingerprint(self._c.fingerprint_key, "user.create", actor, {
            "username": username, "role": role.value, "email": email, "password": password})
        password_hash = None if password is None else self._c.passwords.hash(password)
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, User, actor.tenant_id, client_token)
                if existing is not None:
                    check_replay(existing.request_sha256, fp, client_token)
                    self._c.audit.record(db, actor, "user.create", existing.id)
                    return Created(existing, replayed=True)
            user = User(tenant_id=actor.tenant_id, username=username, role=role, email=email,
                        password_hash=password_hash, client_token=client_token,
                        request_sha256=fp if client_token is not None else None,
                        password_changed_at=self._c.now() if password_hash else None)
            try:
                with db.begin_nested():
                    db.add(user)
            except IntegrityError:
                if client_token is not None:  # a concurrent retry won the race
                    existing = by_client_token(db, User, actor.tenant_id, client_token)
                    if existing is not None:
                        check_replay(existing.request_sha256, fp, client_token)
                        self._c.audit.record(db, actor, "user.create", existing.id)
                        return Created(existing, replayed=True)
                raise Conflict(f"the tenant already has a user named {username!r}") from None
            self._c.audit.record(db, actor, "user.create", user.id)
            return Created(user)

    def update(self, actor: Actor, user_id: str, changes: UserChanges) -> User:
        actor.require(UserRole.ADMIN, "changing users")
        password_hash = (None if changes.password is None
                         else self._c.passwords.hash(changes.password))
        with self._c.transaction() as db:
            user = get_user(db, actor.tenant_id, user_id)
            _guard_owner(actor, user.role, changes.role)
            loses_owner = user.role is UserRole.OWNER and user.status is UserStatus.ACTIVE and (
                (changes.role is not None and changes.role is not UserRole.OWNER)
                or changes.status is UserStatus.DISABLED)
            if loses_owner and _active_owners(db, actor.tenant_id) <= 1:
                raise Conflict("the tenant must keep an active owner; make another user "
                               "owner first", code="last_owner")
            end_sessions = False
            if changes.role is not None:
                user.role = changes.role
            if changes.status is not None:
                end_sessions |= changes.status is UserStatus.DISABLED
                user.status = changes.status
            if changes.email is not None:
                user.email = changes.email
            if password_hash is not None:
                user.password_hash = password_hash
                user.password_changed_at = self._c.now()
                end_sessions = True
            if end_sessions:
                db.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
            self._c.audit.record(db, actor, "user.update", user.id)
            db.flush()
            return user

    def delete(self, actor: Actor, user_id: str) -> None:
        actor.require(UserRole.ADMIN, "deleting users")
        with self._c.transaction() as db:
            user = get_user(db, actor.tenant_id, user_id)
            _guard_owner(actor, user.role)
            if (user.role is UserRole.OWNER and user.status is UserStatus.ACTIVE
                    and _active_owners(db, actor.tenant_id) <= 1):
                raise Conflict("the tenant must keep an active owner; make another user "
                               "owner first", code="last_owner")
            db.delete(user)
            self._c.audit.record(db, actor, "user.delete", user.id)

