"""Authentication of API callers: signed requests (access keys) and console sessions.

``signed(parsed, now)`` finishes the verification that ``control.auth.parse_request``
began (docs/spec/api-signing.md): it looks the access key up with its user and tenant,
opens its sealed secret, checks the signature, the key's state, the body hash, and claims
the nonce in the shared SQL nonce store, then notes the key's use. A key is usable only
while it, its user and its tenant are all active: otherwise the answer is
``disabled_access_key`` (after the signature verified, as the spec orders).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from consortia.control.auth import KeyRecord, ParsedRequest, authenticate
from consortia.control.services.context import Caller
from consortia.control.store.enums import AccessKeyStatus, TenantStatus, UserStatus
from consortia.control.store.models import AccessKey, Tenant, User
from consortia.crypto.suite import CryptoError
from consortia.types.errors import ConsortiaError

if TYPE_CHECKING:
    from consortia.control.services.control import Control


class SealedSecretError(ConsortiaError):
    """A stored secret does not open under the configured master keys (500)."""

    code = "sealed_secret_unreadable"


class AuthService:
    def __init__(self, control: Control) -> None:
        self._c = control

    def signed(self, parsed: ParsedRequest, now: float) -> Caller:
        """The caller of a parsed signed request, or ``SignatureError`` (401)."""
        with self._c.transaction() as db:
            row = db.execute(
                select(AccessKey, User, Tenant)
                .join(User, (User.id == AccessKey.user_id)
                      & (User.tenant_id == AccessKey.tenant_id))
                .join(Tenant, Tenant.id == AccessKey.tenant_id)
                .where(AccessKey.id == parsed.access_key_id)).first()
        record = None
        if row is not None:
            key, user, tenant = row
            try:
                secret = self._c.box.open(key.id, key.sealed_secret)
            except CryptoError:
                raise SealedSecretError(
                    f"the secret of access key {key.id} does not open under the configured "
                    "master keys (wrong or rotated-away master key?)") from None
            enabled = (key.status is AccessKeyStatus.ACTIVE
                       and user.status is UserStatus.ACTIVE
                       and tenant.status is TenantStatus.ACTIVE)
            record = KeyRecord(secret, enabled)
        authenticate(parsed, record, self._c.nonces, now=now)
        assert row is not None  # authenticate refuses a missing key
        key, user, tenant = row
        self._c.access_keys.touch(key.id, self._c.now())
        return Caller(tenant_id=tenant.id, tenant_name=tenant.name, user_id=user.id,
                      username=user.username, role=user.role, access_key_id=key.id)
