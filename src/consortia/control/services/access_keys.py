"""Access keys: create (the secret is returned, never stored plain), list, read, disable,
enable, delete (ADR 0007).

Who may do what (docs/spec/control-api.md, "Roles"):

- every user sees their own keys; admins and owners see every key of the tenant;
- operators and stronger manage (create, disable, enable, delete) their own keys; admins
  and owners manage any user's keys, except that only an owner manages an owner's keys;
- a key a caller may not see — another tenant's, or another user's for a non-admin — is
  "not found".

A create retried with the same ``client_token`` by the same user with the same
parameters returns the same key and, while that key has never signed a request, the same
secret (the first response may have been lost on the way); once the key has been used,
the retry's ``secret`` is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.auth.keys import generate_access_key
from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    at_least,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
)
from consortia.control.services.users import get_user
from consortia.control.store.enums import AccessKeyStatus, UserRole
from consortia.control.store.models import AccessKey, User
from consortia.types.errors import Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control

MAX_KEYS_PER_USER = 10
TOUCH_INTERVAL = timedelta(seconds=60)
"""``last_used_at`` is written at most this often per key (it costs a write per request)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: AccessKey
    secret: str | None
    """The plain secret; None only for a retry whose key has been used since."""


class AccessKeyService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, *, user_id: str | None = None,
             status: AccessKeyStatus | None = None, limit: int,
             page_token: str | None) -> Page[AccessKey]:
        stmt = select(AccessKey).where(AccessKey.tenant_id == actor.tenant_id)
        if not at_least(actor.role, UserRole.ADMIN):
            if user_id is not None and user_id != actor.user_id:
                return Page([], None)  # other users' keys are invisible, not forbidden
            user_id = actor.user_id
        if user_id is not None:
            stmt = stmt.where(AccessKey.user_id == user_id)
        if status is not None:
            stmt = stmt.where(AccessKey.status == status)
        with self._c.transaction() as db:
            return paginate(db, stmt, AccessKey, limit=limit, page_token=page_token)

    def get(self, actor: Actor, key_id: str) -> AccessKey:
        with self._c.transaction() as db:
            return self._visible(db, actor, key_id)

    # --- changing --------------------------------------------------------------------------

    def create(self, actor: Actor, *, user_id: str | None = None, description: str = "",
               client_token: str | None = None) -> Created[IssuedKey]:
        actor.require(UserRole.OPERATOR, "creating access keys")
        owner_id = actor.user_id if user_id is None else user_id
        if owner_id != actor.user_id:
            actor.require(UserRole.ADMIN, "creating access keys for other users")
        if owner_id is None:
            raise Forbidden("platform actors create keys through create_tenant")
        fp = fingerprint(self._c.fingerprint_key, "access_key.create", actor,
                         {"user_id": owner_id, "description": description})
        creds = generate_access_key()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, AccessKey, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            owner = get_user(db, actor.tenant_id, owner_id)
            self._guard_owner_keys(actor, owner)
            count = db.scalar(select(func.count()).select_from(AccessKey).where(
                AccessKey.tenant_id == actor.tenant_id, AccessKey.user_id == owner.id)) or 0
            if count >= MAX_KEYS_PER_USER:
                raise Conflict(f"user {owner.id} already has {count} access keys, the most a "
                               "user may have; delete one first", code="key_limit")
            key = AccessKey(id=creds.access_key_id, tenant_id=actor.tenant_id,
                            user_id=owner.id, description=description,
                            sealed_secret=self._c.box.seal(creds.access_key_id, creds.secret),
                            client_token=client_token,
                            request_sha256=fp if client_token is not None else None)
            try:
                with db.begin_nested():
                    db.add(key)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, AccessKey, actor.tenant_id, client_token))
                if existing is None:
                    raise
                return self._replay(db, actor, existing, fp, client_token or "")
            self._c.audit.record(db, actor, "access_key.create", key.id)
            return Created(IssuedKey(key, creds.secret))

    def set_status(self, actor: Actor, key_id: str, status: AccessKeyStatus) -> AccessKey:
        verb = "enable" if status is AccessKeyStatus.ACTIVE else "disable"
        with self._c.transaction() as db:
            key = self._managed(db, actor, key_id)
            key.status = status
            self._c.audit.record(db, actor, f"access_key.{verb}", key.id)
            db.flush()
            return key

    def delete(self, actor: Actor, key_id: str) -> None:
        with self._c.transaction() as db:
            key = self._managed(db, actor, key_id)
            db.delete(key)
            self._c.audit.record(db, actor, "access_key.delete", key.id)

    def touch(self, key_id: str, at: datetime) -> None:
        """Note that ``key_id`` signed a request at ``at`` (at most once a minute)."""
        with self._c.transaction() as db:
            db.execute(update(AccessKey).where(
                AccessKey.id == key_id,
                (AccessKey.last_used_at.is_(None)) | (AccessKey.last_used_at < at - TOUCH_INTERVAL),
            ).values(last_used_at=at, updated_at=AccessKey.updated_at)
            .execution_options(synchronize_session=False))

    # --- rules -----------------------------------------------------------------------------

    def _visible(self, db: Session, actor: Actor, key_id: str) -> AccessKey:
        key = db.scalar(select(AccessKey).where(AccessKey.id == key_id,
                                                AccessKey.tenant_id == actor.tenant_id))
        if key is None or (key.user_id != actor.user_id
                           and not at_least(actor.role, UserRole.ADMIN)):
            raise NotFound(f"no access key {key_id}")
        return key

    def _managed(self, db: Session, actor: Actor, key_id: str) -> AccessKey:
        actor.require(UserRole.OPERATOR, "managing access keys")
        key = self._visible(db, actor, key_id)
        if key.user_id != actor.user_id:
            owner = get_user(db, actor.tenant_id, key.user_id)
            self._guard_owner_keys(actor, owner)
        return key

    @staticmethod
    def _guard_owner_keys(actor: Actor, owner: User) -> None:
        if owner.id != actor.user_id:
            actor.require(UserRole.ADMIN, "managing other users' access keys")
            if owner.role is UserRole.OWNER and actor.role is not UserRole.OWNER:
                raise Forbidden("only an owner manages an owner's access keys")

    def _replay(self, db: Session, actor: Actor, key: AccessKey, fp: str,
                client_token: str) -> Created[IssuedKey]:
        check_replay(key.request_sha256, fp, client_token)
        secret = (self._c.box.open(key.id, key.sealed_secret)
                  if key.last_used_at is None else None)
        self._c.audit.record(db, actor, "access_key.create", key.id)
        return Created(IssuedKey(key, secret), replayed=True)

