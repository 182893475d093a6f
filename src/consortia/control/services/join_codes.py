"""Join codes: how a tenant that cannot see a network finds its way to apply to it (ADR 0018).

Rules (docs/spec/control-api.md, "Join codes and applications"):

- an admin of a member's tenant creates a code for an AVAILABLE network, in the name of
  one of its AVAILABLE members: ``<code id>.<secret>``, the secret 256 random bits; only an
  HMAC-SHA256 of the secret is stored (keyed from the master key), so the code is shown
  once, in the create answer (a replayed create answers without it);
- a code expires (``expires_in_hours``, at most ``MAX_HOURS``), may take at most
  ``max_uses`` applications, and can be revoked by its tenant; it is listed without its
  secret;
- redeeming a code that does not exist, was revoked, expired, is used up or whose secret
  does not match answers one and the same 404 ``join_code_not_found``: no answer tells a
  guesser more than another;
- codes are seen and revoked by their own tenant only (404 to anyone else).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
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
from consortia.control.services.scope import own_member, visible_network
from consortia.control.store.base import new_id
from consortia.control.store.enums import JoinCodeStatus, ResourceStatus, UserRole
from consortia.control.store.models import JoinCode
from consortia.types.errors import Conflict, InvalidRequest, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control

DEFAULT_HOURS = 7 * 24
MAX_HOURS = 30 * 24
"""The longest a code stays valid: a leaked code is a standing door, so it must close."""
MAX_USES = 1000
_SECRET_BYTES = 32
_CODE_RE = re.compile(r"(jc-[0-9a-z]{16})\.([A-Za-z0-9_-]{43})\Z")


def code_key(master_key: bytes) -> bytes:
    """The HMAC key join-code secrets are hashed with (derived, never the master key)."""
    return hmac.new(master_key, b"consortia/join-code", hashlib.sha256).digest()


def _digest(key: bytes, code_id: str, secret: str) -> str:
    return hmac.new(key, f"{code_id}.{secret}".encode(), hashlib.sha256).hexdigest()


def usable(code: JoinCode, now: datetime) -> bool:
    """Whether ``code`` takes one more application now."""
    return (code.status is JoinCodeStatus.ACTIVE and code.expires_at > now
            and (code.max_uses is None or code.uses < code.max_uses))


def redeem(db: Session, key: bytes, code: str, now: datetime) -> JoinCode:
    """The usable code ``code`` names, its use counted; 404 ``join_code_not_found``
    whatever the reason it is not one (unknown, revoked, expired, used up, wrong secret)."""
    refused = NotFound("no such join code, or it is revoked, expired or used up",
                       code="join_code_not_found")
    match = _CODE_RE.match(code.strip())
    if match is None:
        raise refused
    code_id, secret = match.groups()
    row = db.scalar(select(JoinCode).where(JoinCode.id == code_id).with_for_update())
    expected = row.secret_hmac if row is not None else "0" * 64
    ok = hmac.compare_digest(expected, _digest(key, code_id, secret))
    if row is None or not ok or not usable(row, now):
        raise refused
    row.uses += 1
    return row


class JoinCodeService:
    def __init__(self, control: Control) -> None:
        self._c = control
        self._key = code_key(control.settings.master_key)

    def create(self, actor: Actor, network_id: str, *, member_id: str, description: str = "",
               expires_in_hours: int = DEFAULT_HOURS, max_uses: int | None = None,
               client_token: str | None = None) -> Created[tuple[JoinCode, str | None]]:
        """A new code and its text (shown this once; None when a create is replayed)."""
        actor.require(UserRole.ADMIN, "creating join codes")
        if not 1 <= expires_in_hours <= MAX_HOURS:
            raise InvalidRequest(f"expires_in_hours must be between 1 and {MAX_HOURS}",
                                 code="invalid_expiry")
        if max_uses is not None and not 1 <= max_uses <= MAX_USES:
            raise InvalidRequest(f"max_uses must be between 1 and {MAX_USES}",
                                 code="invalid_max_uses")
        fp = fingerprint(self._c.fingerprint_key, "join_code.create", actor, {
            "network_id": network_id, "member_id": member_id, "description": description,
            "expires_in_hours": expires_in_hours, "max_uses": max_uses})
        now = self._c.now()
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, JoinCode, actor.tenant_id, client_token)
                if existing is not None:
                    check_replay(existing.request_sha256, fp, client_token)
                    self._c.audit.record(db, actor, "join_code.create", existing.id)
                    return Created((existing, None), replayed=True)
            network = visible_network(db, actor.tenant_id, network_id)
            member = own_member(db, actor.tenant_id, network_id, member_id)
            if network.status is not ResourceStatus.AVAILABLE:
                raise Conflict(f"network {network.id} is {network.status.value}: join codes "
                               "are made for AVAILABLE networks", code="network_not_available")
            if member.status is not ResourceStatus.AVAILABLE:
                raise Conflict(f"member {member.id} is {member.status.value}",
                               code="member_not_available")
            code_id = new_id("jc")
            secret = secrets.token_urlsafe(_SECRET_BYTES)
            row = JoinCode(id=code_id, network_id=network_id, tenant_id=actor.tenant_id,
                           member_id=member_id, description=description,
                           secret_hmac=_digest(self._key, code_id, secret),
                           status=JoinCodeStatus.ACTIVE,
                           expires_at=now + timedelta(hours=expires_in_hours),
                           max_uses=max_uses, uses=0, client_token=client_token,
                           request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(row)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, JoinCode, actor.tenant_id, client_token))
                if existing is None:
                    raise
                check_replay(existing.request_sha256, fp, client_token or "")
                return Created((existing, None), replayed=True)
            self._c.audit.record(db, actor, "join_code.create", row.id)
        return Created((row, f"{code_id}.{secret}"))

    def list(self, actor: Actor, network_id: str, *, limit: int,
             page_token: str | None) -> Page[JoinCode]:
        """The network's codes made by the caller's tenant, oldest first (no secrets)."""
        actor.require(UserRole.ADMIN, "reading join codes")
        with self._c.transaction() as db:
            visible_network(db, actor.tenant_id, network_id)
            stmt = select(JoinCode).where(JoinCode.network_id == network_id,
                                          JoinCode.tenant_id == actor.tenant_id)
            return paginate(db, stmt, JoinCode, limit=limit, page_token=page_token)

    def revoke(self, actor: Actor, network_id: str, code_id: str) -> JoinCode:
        """Revoke a code: no application is taken with it from now on (idempotent)."""
        actor.require(UserRole.ADMIN, "revoking join codes")
        with self._c.transaction() as db:
            row = db.scalar(select(JoinCode).where(JoinCode.id == code_id,
                                                   JoinCode.network_id == network_id,
                                                   JoinCode.tenant_id == actor.tenant_id))
            if row is None:
                raise NotFound(f"no join code {code_id} of yours in network {network_id}")
            if row.status is JoinCodeStatus.ACTIVE:
                row.status = JoinCodeStatus.REVOKED
                row.revoked_at = self._c.now()
            self._c.audit.record(db, actor, "join_code.revoke", row.id)
            return row

    @property
    def key(self) -> bytes:
        return self._key
