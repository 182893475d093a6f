"""Identities of a member's CA: register, enroll with the secret, re-enroll (Fabric CA's
flow).

Rules (docs/spec/control-api.md, "Member CAs"; ADR 0013):

- **register** (admins and owners of the member's tenant): an enrollment id (the
  certificates' CN), an identity type (the certificates' role), attributes (written into
  each certificate) and how many enrollments its secret allows (0: no limit). The answer
  holds a random enrollment secret, shown this once: the database keeps its Argon2id hash;
  a retry with the same ``client_token`` answers the identity without it;
- **enroll** (any user of the member's tenant, with the secret): the holder's CSR — its key
  made by the holder, never by the server — is checked (``identity.csr``), the secret
  verified against the hash (an unknown enrollment id costs the same verification, so
  answers do not tell which ids exist), the CSR's CN must be the enrollment id, the
  identity not revoked and its enrollments not used up; the certificate is issued and the
  identity ENROLLED. Every refusal changes nothing;
- **re-enroll** (admins and owners: it issues without the secret): a new certificate for
  the identity of an existing one, from a new CSR with the same CN, linked to the previous
  one, which stays valid until it expires or is revoked (reason ``superseded``); it does not
  count as an enrollment.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortia.control.services.certificates import (
    identity_attributes,
    issue_certificate,
    own_certificate,
    require_issuing,
)
from consortia.control.services.chains import open_member_ca
from consortia.control.services.context import (
    Actor,
    Created,
    Page,
    by_client_token,
    check_replay,
    fingerprint,
    paginate,
)
from consortia.control.services.scope import own_member
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    CaIdentityStatus,
    CertificateStatus,
    IdentityType,
    UserRole,
)
from consortia.control.store.models import CaIdentity, Certificate
from consortia.identity.ca import certificate_attributes
from consortia.identity.csr import parse_csr
from consortia.types.errors import Conflict, InvalidRequest, NotFound, Unauthorized

if TYPE_CHECKING:
    from consortia.control.services.control import Control

SECRET_BYTES = 24
"""Random bytes of an enrollment secret (32 URL-safe characters)."""
MAX_ATTRIBUTES = 32
RESERVED_PREFIX = "hf."
"""Attribute names the CA writes itself (``hf.EnrollmentID``, ``hf.Type``)."""


@dataclass(frozen=True, slots=True)
class Registered:
    identity: CaIdentity
    enrollment_secret: str | None
    """Shown once: None when a retry answers."""


def check_attributes(attributes: Mapping[str, str]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidRequest(f"an identity has at most {MAX_ATTRIBUTES} attributes",
                             code="invalid_attributes")
    reserved = sorted(k for k in attributes if k.startswith(RESERVED_PREFIX))
    if reserved:
        raise InvalidRequest(f"attribute names starting with {RESERVED_PREFIX!r} are the "
                             f"CA's own: {', '.join(reserved)}", code="invalid_attributes")


class CaIdentityService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, member_id: str, *,
             status: CaIdentityStatus | None = None, limit: int,
             page_token: str | None) -> Page[CaIdentity]:
        with self._c.transaction() as db:
            own_member(db, actor.tenant_id, network_id, member_id)
            stmt = select(CaIdentity).where(CaIdentity.member_id == member_id,
                                            CaIdentity.tenant_id == actor.tenant_id)
            if status is not None:
                stmt = stmt.where(CaIdentity.status == status)
            return paginate(db, stmt, CaIdentity, limit=limit, page_token=page_token)

    def get(self, actor: Actor, network_id: str, member_id: str,
            identity_id: str) -> CaIdentity:
        with self._c.transaction() as db:
            return _own_identity(db, actor.tenant_id, network_id, member_id, identity_id)

    # --- register --------------------------------------------------------------------------

    def register(self, actor: Actor, network_id: str, member_id: str, *, enrollment_id: str,
                 identity_type: IdentityType, attributes: Mapping[str, str] | None = None,
                 max_enrollments: int = 1, client_token: str | None = None
                 ) -> Created[Registered]:
        actor.require(UserRole.ADMIN, "registering identities")
        attrs = dict(attributes or {})
        check_attributes(attrs)
        fp = fingerprint(self._c.fingerprint_key, "ca_identity.create", actor, {
            "network_id": network_id, "member_id": member_id, "enrollment_id": enrollment_id,
            "identity_type": identity_type.value, "attributes": attrs,
            "max_enrollments": max_enrollments})
        secret = secrets.token_urlsafe(SECRET_BYTES)
        secret_hash = self._c.passwords.hash(secret)  # outside the transaction: ~25 ms
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, CaIdentity, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token)
            member = own_member(db, actor.tenant_id, network_id, member_id)
            require_issuing(member)
            row = CaIdentity(id=new_id("cid"), member_id=member.id,
                             network_id=member.network_id, tenant_id=actor.tenant_id,
                             enrollment_id=enrollment_id, identity_type=identity_type,
                             attributes=json.dumps(attrs, sort_keys=True),
                             secret_hash=secret_hash, max_enrollments=max_enrollments,
                             enrollment_count=0, status=CaIdentityStatus.REGISTERED,
                             client_token=client_token,
                             request_sha256=fp if client_token else None)
            try:
                with db.begin_nested():
                    db.add(row)
            except IntegrityError:
                existing = (None if client_token is None
                            else by_client_token(db, CaIdentity, actor.tenant_id, client_token))
                if existing is not None:
                    return self._replay(db, actor, existing, fp, client_token or "")
                raise Conflict(f"member {member_id} has an identity {enrollment_id!r} "
                               "already", code="identity_exists") from None
            self._c.audit.record(db, actor, "ca_identity.create", row.id)
            return Created(Registered(row, secret))

    def _replay(self, db: Session, actor: Actor, row: CaIdentity, fp: str,
                client_token: str) -> Created[Registered]:
        check_replay(row.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, "ca_identity.create", row.id)
        return Created(Registered(row, None), replayed=True)

    # --- enroll ----------------------------------------------------------------------------

    def enroll(self, actor: Actor, network_id: str, member_id: str, *, enrollment_id: str,
               enrollment_secret: str, csr_pem: str, client_token: str | None = None
               ) -> Created[Certificate]:
        """A certificate for the identity from the holder's CSR (see the module docstring)."""
        fp = fingerprint(self._c.fingerprint_key, "certificate.enroll", actor, {
            "network_id": network_id, "member_id": member_id, "enrollment_id": enrollment_id,
            "secret_sha256": hashlib.sha256(enrollment_secret.encode()).hexdigest(),
            "csr_sha256": hashlib.sha256(csr_pem.encode()).hexdigest()})
        csr = parse_csr(csr_pem)
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Certificate, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay_cert(db, actor, existing, fp, client_token,
                                             "certificate.enroll")
            member = own_member(db, actor.tenant_id, network_id, member_id)
            identity = db.scalar(select(CaIdentity).where(
                CaIdentity.member_id == member.id, CaIdentity.enrollment_id == enrollment_id,
                CaIdentity.tenant_id == actor.tenant_id))
            stored = identity.secret_hash if identity is not None else None
            if not self._c.passwords.verify(stored, enrollment_secret) or identity is None:
                raise Unauthorized("the enrollment id and secret do not match a registered "
                                   "identity", code="invalid_enrollment_secret")
            if identity.status is CaIdentityStatus.REVOKED:
                raise Conflict(f"identity {identity.id} is revoked", code="identity_revoked")
            if 0 < identity.max_enrollments <= identity.enrollment_count:
                raise Conflict(f"identity {identity.id} has used its "
                               f"{identity.max_enrollments} enrollment(s)",
                               code="enrollments_exhausted")
            if csr.common_name != identity.enrollment_id:
                raise InvalidRequest(f"the CSR's common name {csr.common_name!r} is not the "
                                     f"enrollment id {identity.enrollment_id!r}",
                                     code="csr_subject_mismatch")
            require_issuing(member)
            ca = open_member_ca(self._c.box, member)
            row = issue_certificate(db, member, ca, csr, identity.identity_type,
                                    identity_attributes(identity), identity_id=identity.id,
                                    client_token=client_token,
                                    request_sha256=fp if client_token else None)
            identity.enrollment_count += 1
            identity.status = CaIdentityStatus.ENROLLED
            self._c.audit.record(db, actor, "certificate.enroll", row.id)
            return Created(row)

    def reenroll(self, actor: Actor, network_id: str, member_id: str, certificate_id: str, *,
                 csr_pem: str, client_token: str | None = None) -> Created[Certificate]:
        actor.require(UserRole.ADMIN, "re-enrolling certificates")
        fp = fingerprint(self._c.fingerprint_key, "certificate.reenroll", actor, {
            "network_id": network_id, "member_id": member_id,
            "certificate_id": certificate_id,
            "csr_sha256": hashlib.sha256(csr_pem.encode()).hexdigest()})
        csr = parse_csr(csr_pem)
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, Certificate, actor.tenant_id, client_token)
                if existing is not None:
                    return self._replay_cert(db, actor, existing, fp, client_token,
                                             "certificate.reenroll")
            old = own_certificate(db, actor.tenant_id, network_id, member_id, certificate_id)
            member = own_member(db, actor.tenant_id, network_id, member_id)
            if old.status is CertificateStatus.REVOKED:
                raise Conflict(f"certificate {old.id} is revoked", code="certificate_revoked")
            old_cert = x509.load_pem_x509_certificate(old.certificate_pem.encode("ascii"))
            identity = None if old.ca_identity_id is None else db.get(CaIdentity,
                                                                     old.ca_identity_id)
            if identity is not None and identity.status is CaIdentityStatus.REVOKED:
                raise Conflict(f"identity {identity.id} is revoked", code="identity_revoked")
            name = (identity.enrollment_id if identity is not None
                    else str(old_cert.subject.get_attributes_for_oid(
                        x509.oid.NameOID.COMMON_NAME)[0].value))
            if csr.common_name != name:
                raise InvalidRequest(f"the CSR's common name {csr.common_name!r} is not the "
                                     f"certificate's {name!r}", code="csr_subject_mismatch")
            require_issuing(member)
            attrs = (identity_attributes(identity) if identity is not None
                     else certificate_attributes(old_cert))
            ca = open_member_ca(self._c.box, member)
            row = issue_certificate(db, member, ca, csr, old.identity_type, attrs,
                                    identity_id=old.ca_identity_id, previous_id=old.id,
                                    client_token=client_token,
                                    request_sha256=fp if client_token else None)
            self._c.audit.record(db, actor, "certificate.reenroll", row.id)
            return Created(row)

    def _replay_cert(self, db: Session, actor: Actor, row: Certificate, fp: str,
                     client_token: str, action: str) -> Created[Certificate]:
        check_replay(row.request_sha256, fp, client_token)
        self._c.audit.record(db, actor, action, row.id)
        return Created(row, replayed=True)


def _own_identity(db: Session, tenant_id: str, network_id: str, member_id: str,
                  identity_id: str) -> CaIdentity:
    own_member(db, tenant_id, network_id, member_id)
    row = db.scalar(select(CaIdentity).where(CaIdentity.id == identity_id,
                                             CaIdentity.member_id == member_id,
                                             CaIdentity.tenant_id == tenant_id))
    if row is None:
        raise NotFound(f"no identity {identity_id} of member {member_id}")
    return row
