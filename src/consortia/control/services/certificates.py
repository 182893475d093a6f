"""Certificates of a member's CA: issued from CSRs, listed, revoked, their CRL on chain.

Rules (docs/spec/control-api.md, "Member CAs"; ADR 0013):

- a certificate is issued from a CSR whose key the requester made (``identity.csr``): the
  CA takes the CSR's key and common name and writes the rest — the identity type as the
  role (OU), the member's organization (O), the attributes in Fabric's attribute extension;
  its row records serial (lower-case hex), subject, validity, the identity it was issued
  to and the certificate it re-enrolled;
- certificates are listed and read by every user of the member's tenant; a certificate's
  status is REVOKED once revoked, EXPIRED past its ``not_after`` (the settings' clock),
  else ACTIVE — ``expiring_within_days`` lists the ACTIVE ones ending within that many days;
- **revoking** (admins and owners) marks the certificate REVOKED with an RFC 5280 reason
  and regenerates the member's CRL (every revoked certificate of its CA, the number one
  higher, kept on the member) in the same transaction, audited; then the CRL is
  **published** to the chain as a ``CrlUpdate`` configuration transaction signed by an
  admin of the member's organization (``chains.admin_identity``) through an AVAILABLE
  validator. Once it commits, the nodes refuse every transaction the revoked certificate
  signs. When the chain cannot take it now the call answers 503 ``chain_unavailable``: the
  revocation stays recorded and the next revocation call — a retry of the same one
  included — publishes the newest CRL. A CRL the chain refuses as stale means a newer one
  is in force already (only this control plane publishes the member's CRLs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from consortia.control.services.chains import admin_identity, open_member_ca, validators_of
from consortia.control.services.context import Actor, Page, paginate
from consortia.control.services.scope import own_member
from consortia.control.store.base import new_id
from consortia.control.store.enums import (
    CaIdentityStatus,
    CertificateStatus,
    IdentityType,
    NodeStatus,
    ResourceStatus,
    RevocationReason,
    UserRole,
)
from consortia.control.store.models import CaIdentity, Certificate, Member, Network
from consortia.crypto import CryptoError
from consortia.identity.ca import CertificateAuthority
from consortia.identity.csr import ParsedCsr
from consortia.sdk.tx import sign
from consortia.types.config import Role
from consortia.types.errors import Conflict, ConsortiaError, NotFound, Unavailable
from consortia.types.tx import CrlUpdate

if TYPE_CHECKING:
    from consortia.control.services.control import Control

_CHAIN_ERRORS = (CryptoError, OSError, ValueError, KeyError, httpx.HTTPError)
"""What talking to a node can raise besides the node's own refusals (``ConsortiaError``)."""
MAX_EXPIRING_DAYS = 3650
ISSUABLE = (ResourceStatus.CREATING, ResourceStatus.AVAILABLE)
"""Member statuses in which its CA issues certificates."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """What a revocation call did: the certificates it revoked (or found revoked), the
    member's CRL number, and whether that CRL is in force on the chain."""

    certificates: Sequence[Certificate]
    crl_number: int
    crl_published: bool


@dataclass(frozen=True, slots=True)
class CrlInfo:
    member_id: str
    crl_number: int
    crl_published_number: int
    crl_pem: str | None


def effective_status(row: Certificate, now: datetime) -> CertificateStatus:
    """REVOKED, EXPIRED (past ``not_after`` at ``now``) or ACTIVE."""
    if row.status is CertificateStatus.REVOKED:
        return CertificateStatus.REVOKED
    return CertificateStatus.EXPIRED if row.not_after <= now else CertificateStatus.ACTIVE


def identity_attributes(identity: CaIdentity) -> dict[str, str]:
    """The attributes a certificate of ``identity`` carries: its own, and Fabric CA's
    ``hf.EnrollmentID`` and ``hf.Type``."""
    attrs: dict[str, str] = json.loads(identity.attributes or "{}")
    return {**attrs, "hf.EnrollmentID": identity.enrollment_id,
            "hf.Type": identity.identity_type.value}


def require_issuing(member: Member) -> None:
    if member.status not in ISSUABLE:
        raise Conflict(f"member {member.id} is {member.status.value}: its CA issues no "
                       "certificates", code="member_not_available")


def issue_certificate(db: Session, member: Member, ca: CertificateAuthority, csr: ParsedCsr,
                      identity_type: IdentityType, attributes: Mapping[str, str], *,
                      identity_id: str | None = None, previous_id: str | None = None,
                      client_token: str | None = None, request_sha256: str | None = None
                      ) -> Certificate:
    """Sign ``csr``'s key for its common name with ``identity_type``'s role, and add the
    certificate's row (owned by the member's tenant) to ``db``."""
    cert = ca.issue(csr.common_name, Role(identity_type.value), csr.public_key,
                    attributes=attributes)
    row = Certificate(
        id=new_id("crt"), member_id=member.id, network_id=member.network_id,
        tenant_id=member.tenant_id, ca_identity_id=identity_id,
        serial_number=format(cert.serial_number, "x"),
        subject=cert.subject.rfc4514_string()[:512], identity_type=identity_type,
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        status=CertificateStatus.ACTIVE, previous_certificate_id=previous_id,
        client_token=client_token, request_sha256=request_sha256)
    db.add(row)
    db.flush()
    return row


def own_certificate(db: Session, tenant_id: str, network_id: str, member_id: str,
                    certificate_id: str) -> Certificate:
    own_member(db, tenant_id, network_id, member_id)
    row = db.scalar(select(Certificate).where(Certificate.id == certificate_id,
                                              Certificate.member_id == member_id,
                                              Certificate.tenant_id == tenant_id))
    if row is None:
        raise NotFound(f"no certificate {certificate_id} of member {member_id}")
    return row


class CertificateService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, member_id: str, *,
             status: CertificateStatus | None = None,
             identity_type: IdentityType | None = None,
             expiring_within_days: int | None = None, limit: int,
             page_token: str | None) -> Page[Certificate]:
        """The member's certificates, oldest first; ``expiring_within_days``: the ACTIVE
        ones whose validity ends within that many days."""
        now = self._c.now()
        with self._c.transaction() as db:
            own_member(db, actor.tenant_id, network_id, member_id)
            stmt = select(Certificate).where(Certificate.member_id == member_id,
                                             Certificate.tenant_id == actor.tenant_id)
            active = Certificate.status == CertificateStatus.ACTIVE
            if status is CertificateStatus.REVOKED:
                stmt = stmt.where(Certificate.status == CertificateStatus.REVOKED)
            elif status is CertificateStatus.EXPIRED:
                stmt = stmt.where(active, Certificate.not_after <= now)
            elif status is CertificateStatus.ACTIVE:
                stmt = stmt.where(active, Certificate.not_after > now)
            if expiring_within_days is not None:
                stmt = stmt.where(active, Certificate.not_after > now,
                                  Certificate.not_after <= now + timedelta(
                                      days=expiring_within_days))
            if identity_type is not None:
                stmt = stmt.where(Certificate.identity_type == identity_type)
            return paginate(db, stmt, Certificate, limit=limit, page_token=page_token)

    def get(self, actor: Actor, network_id: str, member_id: str,
            certificate_id: str) -> Certificate:
        with self._c.transaction() as db:
            return own_certificate(db, actor.tenant_id, network_id, member_id, certificate_id)

    def crl(self, actor: Actor, network_id: str, member_id: str) -> CrlInfo:
        """The member's newest CRL and which number is in force on the chain."""
        with self._c.transaction() as db:
            member = own_member(db, actor.tenant_id, network_id, member_id)
            pem = None
            if member.crl_der is not None:
                crl = x509.load_der_x509_crl(member.crl_der)
                pem = crl.public_bytes(serialization.Encoding.PEM).decode("ascii")
            return CrlInfo(member.id, member.crl_number, member.crl_published_number, pem)

    # --- revoking --------------------------------------------------------------------------

    def revoke(self, actor: Actor, network_id: str, member_id: str, certificate_id: str,
               reason: RevocationReason) -> Revocation:
        """Revoke one certificate and publish the member's CRL (see the module docstring);
        a certificate revoked already is refused (409 ``already_revoked``) unless its CRL
        still waits to be published: then this publishes it."""
        actor.require(UserRole.ADMIN, "revoking certificates")
        with self._c.transaction() as db:
            row = own_certificate(db, actor.tenant_id, network_id, member_id, certificate_id)
            member = own_member(db, actor.tenant_id, network_id, member_id)
            if row.status is CertificateStatus.REVOKED:
                if member.crl_number <= member.crl_published_number:
                    raise Conflict(f"certificate {row.id} is revoked already",
                                   code="already_revoked")
            else:
                self._mark(row, reason)
                self.regenerate_crl(db, member)
            self._c.audit.record(db, actor, "certificate.revoke", row.id)
            ids = [row.id]
        return self._published(actor, network_id, member_id, ids)

    def revoke_identity(self, actor: Actor, network_id: str, member_id: str,
                        identity_id: str, reason: RevocationReason) -> Revocation:
        """Revoke every certificate of a registered identity; the identity is REVOKED and
        enrolls no more. Retried, it publishes a CRL still waiting."""
        actor.require(UserRole.ADMIN, "revoking identities")
        with self._c.transaction() as db:
            member = own_member(db, actor.tenant_id, network_id, member_id)
            identity = db.scalar(select(CaIdentity).where(
                CaIdentity.id == identity_id, CaIdentity.member_id == member_id,
                CaIdentity.tenant_id == actor.tenant_id))
            if identity is None:
                raise NotFound(f"no identity {identity_id} of member {member_id}")
            rows = list(db.scalars(select(Certificate).where(
                Certificate.ca_identity_id == identity.id,
                Certificate.member_id == member_id).order_by(Certificate.created_at)))
            fresh = [r for r in rows if r.status is not CertificateStatus.REVOKED]
            pending = member.crl_number > member.crl_published_number
            if identity.status is CaIdentityStatus.REVOKED and not fresh and not pending:
                raise Conflict(f"identity {identity.id} is revoked already",
                               code="already_revoked")
            identity.status = CaIdentityStatus.REVOKED
            for row in fresh:
                self._mark(row, reason)
            if fresh:
                self.regenerate_crl(db, member)
            self._c.audit.record(db, actor, "ca_identity.revoke", identity.id)
            ids = [r.id for r in rows]
        return self._published(actor, network_id, member_id, ids)

    def regenerate_crl(self, db: Session, member: Member) -> None:
        """A new CRL of the member's CA listing every certificate revoked in ``db``, with
        the next number, kept on the member."""
        ca = open_member_ca(self._c.box, member)
        for row in db.scalars(select(Certificate).where(
                Certificate.member_id == member.id,
                Certificate.status == CertificateStatus.REVOKED)):
            reason = x509.ReasonFlags(row.revocation_reason or "unspecified")
            ca.revoke(int(row.serial_number, 16), at=row.revoked_at, reason=reason)
        member.crl_der = ca.crl()
        member.crl_number = ca.crl_number

    def _mark(self, row: Certificate, reason: RevocationReason) -> None:
        row.status = CertificateStatus.REVOKED
        row.revoked_at = self._c.now()
        row.revocation_reason = reason.value

    def _published(self, actor: Actor, network_id: str, member_id: str,
                   ids: Sequence[str]) -> Revocation:
        published = self.publish(member_id)
        with self._c.transaction() as db:
            member = own_member(db, actor.tenant_id, network_id, member_id)
            rows = list(db.scalars(select(Certificate).where(Certificate.id.in_(ids))
                                   .order_by(Certificate.created_at, Certificate.id)))
            return Revocation(rows, member.crl_number, published)

    # --- publishing ------------------------------------------------------------------------

    def publish(self, member_id: str) -> bool:
        """Put the member's newest CRL in force on its chain, if it is not yet; whether it
        is in force now. False when the network has no chain any more (deleted) or none
        yet; 503 ``chain_unavailable`` when no validator can take it now, 409
        ``crl_update_refused`` when the chain refuses it."""
        with self._c.transaction() as db:
            member = db.get(Member, member_id)
            assert member is not None
            if member.crl_number <= member.crl_published_number:
                return True
            network = db.get(Network, member.network_id)
            assert network is not None
            if network.genesis_hash is None or network.status in (ResourceStatus.DELETING,
                                                                  ResourceStatus.DELETED):
                return False
            target = next((v.api_endpoint for v in validators_of(db, network.id)
                           if v.status is NodeStatus.AVAILABLE and v.api_endpoint), None)
            number, crl_der = member.crl_number, member.crl_der
            chain_id, org_id = network.chain_id, member.org_id
            ca = open_member_ca(self._c.box, member)
        if target is None or crl_der is None:
            raise Unavailable("no validator of the network is AVAILABLE to take the CRL; "
                              "the revocation is recorded: retry it to publish the CRL",
                              code="chain_unavailable")
        tx = sign(admin_identity(ca), chain_id, CrlUpdate(org_id, crl_der))
        try:
            receipt = self._c.runtime.gateway.commit(
                target, tx, timeout=self._c.settings.chain_timeout_seconds)
        except ConsortiaError as exc:
            receipt = {"status": "invalid", "error": exc.code, "message": exc.message,
                       "http_status": exc.status}
        except _CHAIN_ERRORS as exc:
            raise Unavailable(f"could not publish the CRL ({exc.__class__.__name__}: {exc}); "
                              "the revocation is recorded: retry it to publish the CRL",
                              code="chain_unavailable") from None
        return self._settle(member_id, number, tx.id_hex, receipt)

    def _settle(self, member_id: str, number: int, tx_id: str,
                receipt: Mapping[str, Any]) -> bool:
        status, error = receipt.get("status"), receipt.get("error")
        if status == "committed" or error == "stale_crl":  # stale: a newer one is in force
            with self._c.transaction() as db:
                member = db.get(Member, member_id)
                assert member is not None
                member.crl_published_number = max(member.crl_published_number, number)
            return True
        what = f"the CRL update (transaction {tx_id}) did not commit: {status}" + (
            f" ({error})" if error else "")
        http_status = receipt.get("http_status")
        if status == "pending" or (isinstance(http_status, int)
                                   and (http_status >= 500 or http_status == 429)):
            raise Unavailable(f"{what}; the revocation is recorded: retry it to publish the "
                              "CRL", code="chain_unavailable")
        raise Conflict(what, code="crl_update_refused")
