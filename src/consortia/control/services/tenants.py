"""Tenants: the platform creates them (each with an owner and a first access key); a
tenant's users read their own.

Creating a tenant is a platform action: ``init_platform`` makes the first one, the
**platform tenant** (``is_platform``), whose owners and admins create the others
(``POST /v1/tenants``, ``create_by``) and list them. It is recorded in the platform's
trail (``tenant_id`` NULL), or in the platform tenant's when one of its users asked for
it, and the owner and key it creates in the new tenant's trail, with no acting user.
Any other tenant calling those endpoints gets 403 ``platform_only``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from consortia.control.auth.keys import generate_access_key
from consortia.control.services.context import Actor, Page, paginate
from consortia.control.store.enums import UserRole
from consortia.control.store.models import AccessKey, Tenant, User
from consortia.sdk.signing import Credentials
from consortia.types.errors import Conflict, Forbidden, InvalidRequest, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control

TENANT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\Z")
"""A slug: lower-case letters, digits and inner hyphens, at most 64 characters."""
USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")


@dataclass(frozen=True, slots=True)
class NewTenant:
    tenant: Tenant
    owner: User
    credentials: Credentials
    """The owner's first access key; its secret is shown here once."""


class TenantService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def get(self, actor: Actor) -> Tenant:
        with self._c.transaction() as db:
            tenant = db.get(Tenant, actor.tenant_id)
        if tenant is None:
            raise NotFound(f"no tenant {actor.tenant_id}")
        return tenant

    def list(self, actor: Actor, *, limit: int, page_token: str | None) -> Page[Tenant]:
        """Every tenant, oldest first (the platform tenant's admins and owners only)."""
        self._require_platform(actor)
        with self._c.transaction() as db:
            return paginate(db, select(Tenant), Tenant, limit=limit, page_token=page_token)

    def create_by(self, actor: Actor, name: str, owner_username: str, *,
                  display_name: str = "", owner_email: str | None = None) -> NewTenant:
        """``create`` called through the API by an admin or owner of the platform tenant."""
        self._require_platform(actor)
        return self.create(name, owner_username, display_name=display_name,
                           owner_email=owner_email, request_id=actor.request_id, by=actor)

    def _require_platform(self, actor: Actor) -> None:
        actor.require(UserRole.ADMIN, "managing tenants")
        with self._c.transaction() as db:
            tenant = db.get(Tenant, actor.tenant_id)
            if tenant is None or not tenant.is_platform:
                raise Forbidden("only the platform operator's tenant manages tenants",
                                code="platform_only")

    def create(self, name: str, owner_username: str, *, display_name: str = "",
               owner_password: str | None = None, owner_email: str | None = None,
               request_id: str | None = None, platform: bool = False,
               by: Actor | None = None) -> NewTenant:
        """A new tenant with an owner and the owner's first access key (platform action);
        ``platform``: it is the platform operator's tenant (``init_platform``); ``by``:
        the platform tenant's user who asked for it, recorded in the platform's trail."""
        if not TENANT_NAME_RE.match(name):
            raise InvalidRequest(f"tenant name {name!r}: use 1-64 lower-case letters, digits "
                                 "and inner hyphens")
        if not USERNAME_RE.match(owner_username):
            raise InvalidRequest(f"user name {owner_username!r}: use 1-64 letters, digits, "
                                 "'.', '_', '@', '-', starting with a letter or digit")
        password_hash = (None if owner_password is None
                         else self._c.passwords.hash(owner_password))
        creds = generate_access_key()
        rid = request_id or f"platform-{secrets.token_hex(8)}"
        try:
            with self._c.transaction() as db:
                tenant = Tenant(name=name, display_name=display_name or name,
                                is_platform=platform)
                db.add(tenant)
                db.flush()
                owner = User(tenant_id=tenant.id, username=owner_username,
                             role=UserRole.OWNER, email=owner_email,
                             password_hash=password_hash,
                             password_changed_at=self._c.now() if password_hash else None)
                db.add(owner)
                db.flush()
                key = AccessKey(id=creds.access_key_id, tenant_id=tenant.id, user_id=owner.id,
                                description="created with the tenant",
                                sealed_secret=self._c.box.seal(creds.access_key_id,
                                                               creds.secret))
                db.add(key)
                made_by = Actor(tenant_id=tenant.id, user_id=None, role=UserRole.OWNER,
                                request_id=rid)
                if by is None:
                    self._c.audit.record(db, made_by, "tenant.create", tenant.id,
                                         platform=True)
                else:  # in the trail of the platform tenant, whose user asked for it
                    self._c.audit.record(db, by, "tenant.create", tenant.id)
                self._c.audit.record(db, made_by, "user.create", owner.id)
                self._c.audit.record(db, made_by, "access_key.create", key.id)
        except IntegrityError:
            raise Conflict(f"a tenant named {name!r} exists already") from None
        return NewTenant(tenant, owner, creds)

    def any_exist(self) -> bool:
        with self._c.transaction() as db:
            return db.scalar(select(Tenant.id).limit(1)) is not None
