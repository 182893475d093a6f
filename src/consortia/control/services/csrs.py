"""CSR requests: a tenant asks a member's CA for a certificate; the member's admins decide
(Ant Blockchain's certificate approval, e.g. for an organization that joins).

Rules (docs/spec/control-api.md, "Member CAs"; ADR 0013):

- **submit** (operators and stronger of any tenant that sees the member's network — its
  own, or another member's): a CSR (checked as at enrollment, ``identity.csr``) and the
  identity type asked for; the request is PENDING;
- the member's tenant lists and reads every request made to its CA; another tenant sees
  only the requests it made; everyone else gets 404;
- **approve** (admins and owners of the member's tenant): the certificate is issued for the
  CSR's key and CN with the type asked for (the role), and the request is APPROVED with it
  — the requester reads the certificate in the request; **reject** records the reason. A
  decided request is not decided again (409 ``csr_not_pending``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortia.control.services.certificates import issue_certificate, require_issuing
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
from consortia.control.services.scope import own_member, visible_member
from consortia.control.store.base import new_id
from consortia.control.store.enums import CsrStatus, IdentityType, UserRole
from consortia.control.store.models import Certificate, CsrRequest, Member
from consortia.identity.csr import parse_csr
from consortia.types.errors import Conflict, NotFound

if TYPE_CHECKING:
    from consortia.control.services.control import Control


@dataclass(frozen=True, slots=True)
class CsrView:
    """A request and, once approved, the certificate issued for it (PEM)."""

    request: CsrRequest
    certificate_pem: str | None


class CsrService:
    def __init__(self, control: Control) -> None:
        self._c = control

    # --- reading ---------------------------------------------------------------------------

    def list(self, actor: Actor, network_id: str, member_id: str, *,
             status: CsrStatus | None = None, limit: int,
             page_token: str | None) -> Page[CsrView]:
        """Requests to the member's CA, oldest first: all of them for the member's tenant,
        the caller's own for another tenant."""
        with self._c.transaction() as db:
            member = visible_member(db, actor.tenant_id, network_id, member_id)
            stmt = select(CsrRequest).where(CsrRequest.member_id == member.id)
            if member.tenant_id != actor.tenant_id:
                stmt = stmt.where(CsrRequest.tenant_id == actor.tenant_id)
            if status is not None:
                stmt = stmt.where(CsrRequest.status == status)
            page = paginate(db, stmt, CsrRequest, limit=limit, page_token=page_token)
            return Page([_view(db, r) for r in page.items], page.next_page_token)

    def get(self, actor: Actor, network_id: str, member_id: str, csr_id: str) -> CsrView:
        with self._c.transaction() as db:
            member = visible_member(db, actor.tenant_id, network_id, member_id)
            return _view(db, _visible_csr(db, actor, member, csr_id))

    # --- changing --------------------------------------------------------------------------

    def submit(self, actor: Actor, network_id: str, member_id: str, *, csr_pem: str,
               identity_type: IdentityType = IdentityType.CLIENT,
               client_token: str | None = None) -> Created[CsrView]:
        actor.require(UserRole.OPERATOR, "submitting CSRs")
        fp = fingerprint(self._c.fingerprint_key, "csr_request.create", actor, {
            "network_id": network_id, "member_id": member_id,
            "identity_type": identity_type.value,
            "csr_sha256": hashlib.sha256(csr_pem.encode()).hexdigest()})
        csr = parse_csr(csr_pem)
        with self._c.transaction() as db:
            if client_token is not None:
                existing = by_client_token(db, CsrRequest, actor.tenant_id, client_token)
                if existing is not None:
                    check_replay(existing.request_sha256, fp, client_token)
                    self._c.audit.record(db, actor, "csr_request.create", existing.id)
                    return Created(_view(db, existing), replayed=True)
            member = visible_member(db, actor.tenant_id, network_id, member_id)
            require_issuing(member)
            row = CsrRequest(id=new_id("csr"), member_id=member.id, tenant_id=actor.tenant_id,
                             csr_pem=csr_pem, subject=csr.subject[:512],
                             identity_type=identity_type, status=CsrStatus.PENDING,
                             client_token=client_token,
                             request_sha256=fp if client_token else None)
            db.add(row)
            db.flush()
            self._c.audit.record(db, actor, "csr_request.create", row.id)
            return Created(CsrView(row, None))

    def approve(self, actor: Actor, network_id: str, member_id: str,
                csr_id: str) -> CsrView:
        actor.require(UserRole.ADMIN, "approving CSRs")
        with self._c.transaction() as db:
            member, row = self._pending(db, actor, network_id, member_id, csr_id)
            require_issuing(member)
            csr = parse_csr(row.csr_pem)
            ca = open_member_ca(self._c.box, member)
            attrs = {"hf.EnrollmentID": csr.common_name, "hf.Type": row.identity_type.value}
            cert = issue_certificate(db, member, ca, csr, row.identity_type, attrs)
            row.status = CsrStatus.APPROVED
            row.certificate_id = cert.id
            row.decided_at = self._c.now()
            row.decided_by = actor.user_id
            self._c.audit.record(db, actor, "csr_request.approve", row.id)
            return CsrView(row, cert.certificate_pem)

    def reject(self, actor: Actor, network_id: str, member_id: str, csr_id: str,
               reason: str) -> CsrView:
        actor.require(UserRole.ADMIN, "rejecting CSRs")
        with self._c.transaction() as db:
            _, row = self._pending(db, actor, network_id, member_id, csr_id)
            row.status = CsrStatus.REJECTED
            row.reason = reason
            row.decided_at = self._c.now()
            row.decided_by = actor.user_id
            self._c.audit.record(db, actor, "csr_request.reject", row.id)
            return CsrView(row, None)

    def _pending(self, db: Session, actor: Actor, network_id: str, member_id: str,
                 csr_id: str) -> tuple[Member, CsrRequest]:
        member = own_member(db, actor.tenant_id, network_id, member_id)
        row = _visible_csr(db, actor, member, csr_id)
        if row.status is not CsrStatus.PENDING:
            raise Conflict(f"CSR request {row.id} is {row.status.value} already",
                           code="csr_not_pending")
        return member, row


def _visible_csr(db: Session, actor: Actor, member: Member, csr_id: str) -> CsrRequest:
    stmt = select(CsrRequest).where(CsrRequest.id == csr_id,
                                    CsrRequest.member_id == member.id)
    if member.tenant_id != actor.tenant_id:  # another tenant: only what it asked for
        stmt = stmt.where(CsrRequest.tenant_id == actor.tenant_id)
    row = db.scalar(stmt)
    if row is None:
        raise NotFound(f"no CSR request {csr_id} to member {member.id}")
    return row


def _view(db: Session, row: CsrRequest) -> CsrView:
    pem = None
    if row.certificate_id is not None:
        cert = db.get(Certificate, row.certificate_id)
        pem = None if cert is None else cert.certificate_pem
    return CsrView(row, pem)
