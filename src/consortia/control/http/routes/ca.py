"""A member's CA: identities, enrollment, certificates, revocation, CSR requests
(``/v1/networks/{network_id}/members/{member_id}/…``)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, app_state, control, principal, require, source_ip
from consortia.control.http.errors import CONFLICT_RESPONSE, UNAVAILABLE_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    Limit,
    MemberId,
    NetworkId,
    PageToken,
    router,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.services.certificates import Revocation, effective_status
from consortia.control.services.csrs import CsrView
from consortia.control.store import models
from consortia.control.store.enums import (
    CaIdentityStatus,
    CertificateStatus,
    CsrStatus,
    IdentityType,
    UserRole,
)
from consortia.types.errors import RateLimited

identities = router("ca identities")
certificates = router("certificates")
csrs = router("csr requests")
admin = require(UserRole.ADMIN)
operator = require(UserRole.OPERATOR)
CHANGES = {**CONFLICT_RESPONSE, **UNAVAILABLE_RESPONSE}
MEMBER = "/networks/{network_id}/members/{member_id}"

IdentityId = Annotated[str, Path(min_length=1, max_length=64,
                                 description="An identity id (cid-…).")]
CertificateId = Annotated[str, Path(min_length=1, max_length=64,
                                    description="A certificate id (crt-…).")]
CsrId = Annotated[str, Path(min_length=1, max_length=64,
                            description="A CSR request id (csr-…).")]


def identity_out(row: models.CaIdentity) -> schemas.CaIdentity:
    return schemas.CaIdentity(
        id=row.id, network_id=row.network_id, member_id=row.member_id,
        enrollment_id=row.enrollment_id, identity_type=row.identity_type,
        attributes=json.loads(row.attributes or "{}"), max_enrollments=row.max_enrollments,
        enrollment_count=row.enrollment_count, status=row.status, created_at=row.created_at,
        updated_at=row.updated_at)


def certificate_out(ctl: Control, row: models.Certificate) -> schemas.Certificate:
    out = schemas.Certificate.model_validate(row)
    return out.model_copy(update={"status": effective_status(row, ctl.now())})


def revocation_out(ctl: Control, r: Revocation) -> schemas.Revocation:
    return schemas.Revocation(certificates=[certificate_out(ctl, c) for c in r.certificates],
                              crl_number=r.crl_number, crl_published=r.crl_published)


def csr_out(view: CsrView) -> schemas.CsrRequest:
    r = view.request
    return schemas.CsrRequest(
        id=r.id, member_id=r.member_id, tenant_id=r.tenant_id, subject=r.subject,
        identity_type=r.identity_type, status=r.status, reason=r.reason,
        decided_at=r.decided_at, decided_by=r.decided_by, certificate_id=r.certificate_id,
        certificate_pem=view.certificate_pem, created_at=r.created_at)


# --- identities ----------------------------------------------------------------------------


@identities.post(f"{MEMBER}/identities", response_model=schemas.CaIdentityCreated,
                 status_code=201, summary="Register an identity (its secret is shown once)",
                 operation_id="register_identity", responses=CONFLICT_RESPONSE,
                 openapi_extra=audited("ca_identity.create"))
def register_identity(network_id: NetworkId, member_id: MemberId,
                      body: schemas.CaIdentityCreate, p: Principal = Depends(admin),
                      ctl: Control = Depends(control)) -> schemas.CaIdentityCreated:
    """An identity of the member's CA; its holder enrolls with the enrollment secret
    returned here once (POST …/enroll)."""
    made = ctl.ca_identities.register(
        p.actor, network_id, member_id, enrollment_id=body.enrollment_id,
        identity_type=body.identity_type, attributes=body.attributes,
        max_enrollments=body.max_enrollments, client_token=body.client_token).item
    return schemas.CaIdentityCreated(**identity_out(made.identity).model_dump(),
                                     enrollment_secret=made.enrollment_secret)


@identities.get(f"{MEMBER}/identities", response_model=schemas.CaIdentityList,
                summary="List the identities of a member's CA", operation_id="list_identities")
def list_identities(network_id: NetworkId, member_id: MemberId,
                    p: Principal = Depends(principal), ctl: Control = Depends(control),
                    status: CaIdentityStatus | None = Query(None),
                    limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
                    ) -> schemas.CaIdentityList:
    page = ctl.ca_identities.list(p.actor, network_id, member_id, status=status,
                                  limit=limit, page_token=page_token)
    return schemas.CaIdentityList(items=[identity_out(i) for i in page.items],
                                  next_page_token=page.next_page_token)


@identities.get(f"{MEMBER}/identities/{{identity_id}}", response_model=schemas.CaIdentity,
                summary="Get an identity", operation_id="get_identity")
def get_identity(network_id: NetworkId, member_id: MemberId, identity_id: IdentityId,
                 p: Principal = Depends(principal), ctl: Control = Depends(control)
                 ) -> schemas.CaIdentity:
    return identity_out(ctl.ca_identities.get(p.actor, network_id, member_id, identity_id))


@identities.post(f"{MEMBER}/identities/{{identity_id}}/revoke",
                 response_model=schemas.Revocation,
                 summary="Revoke every certificate of an identity (CRL published on chain)",
                 operation_id="revoke_identity", responses=CHANGES,
                 openapi_extra=audited("ca_identity.revoke"))
def revoke_identity(network_id: NetworkId, member_id: MemberId, identity_id: IdentityId,
                    body: schemas.RevokeRequest, p: Principal = Depends(admin),
                    ctl: Control = Depends(control)) -> schemas.Revocation:
    """The identity is REVOKED (it enrolls no more) with all its certificates; the member's
    CRL is regenerated and committed on the chain. 503 chain_unavailable: the revocation is
    recorded, the CRL not yet in force — retry the call to publish it."""
    return revocation_out(ctl, ctl.certificates.revoke_identity(
        p.actor, network_id, member_id, identity_id, body.reason))


# --- enrollment and certificates -----------------------------------------------------------


@certificates.post(f"{MEMBER}/enroll", response_model=schemas.Certificate, status_code=201,
                   summary="Enroll: a certificate for a registered identity from its CSR",
                   operation_id="enroll", responses=CONFLICT_RESPONSE,
                   openapi_extra=audited("certificate.enroll"))
async def enroll(network_id: NetworkId, member_id: MemberId, body: schemas.EnrollRequest,
                 request: Request, p: Principal = Depends(principal),
                 ctl: Control = Depends(control)) -> schemas.Certificate:
    """Any user of the member's tenant, with the enrollment secret. The key stays with the
    holder: send a CSR made with it, its CN the enrollment id. Attempts are rate limited
    like logins (per source address and per identity); a wrong secret or unknown id answers
    403 invalid_enrollment_secret."""
    limiter = app_state(request).login_limiter
    for bucket in (f"enroll:{source_ip(request)}",
                   f"enroll:{member_id}:{body.enrollment_id}"):
        wait = limiter.take(bucket)
        if wait is not None:
            raise RateLimited(f"too many enrollment attempts; retry after {wait} s",
                              retry_after=wait)
    created = await run_in_threadpool(
        lambda: ctl.ca_identities.enroll(
            p.actor, network_id, member_id, enrollment_id=body.enrollment_id,
            enrollment_secret=body.enrollment_secret, csr_pem=body.csr_pem,
            client_token=body.client_token))
    return certificate_out(ctl, created.item)


@certificates.get(f"{MEMBER}/certificates", response_model=schemas.CertificateList,
                  summary="List the certificates of a member's CA (expiring soon, status)",
                  operation_id="list_certificates")
def list_certificates(
        network_id: NetworkId, member_id: MemberId, p: Principal = Depends(principal),
        ctl: Control = Depends(control), status: CertificateStatus | None = Query(None),
        identity_type: IdentityType | None = Query(None),
        expiring_within_days: int | None = Query(
            None, ge=0, le=3650, description="Only ACTIVE certificates whose validity ends "
                                             "within that many days."),
        limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None) -> schemas.CertificateList:
    page = ctl.certificates.list(p.actor, network_id, member_id, status=status,
                                 identity_type=identity_type,
                                 expiring_within_days=expiring_within_days, limit=limit,
                                 page_token=page_token)
    return schemas.CertificateList(items=[certificate_out(ctl, c) for c in page.items],
                                   next_page_token=page.next_page_token)


@certificates.get(f"{MEMBER}/certificates/{{certificate_id}}",
                  response_model=schemas.Certificate, summary="Get a certificate",
                  operation_id="get_certificate")
def get_certificate(network_id: NetworkId, member_id: MemberId, certificate_id: CertificateId,
                    p: Principal = Depends(principal), ctl: Control = Depends(control)
                    ) -> schemas.Certificate:
    return certificate_out(ctl, ctl.certificates.get(p.actor, network_id, member_id,
                                                     certificate_id))


@certificates.post(f"{MEMBER}/certificates/{{certificate_id}}/reenroll",
                   response_model=schemas.Certificate, status_code=201,
                   summary="Re-enroll: a new certificate for the same identity",
                   operation_id="reenroll_certificate", responses=CONFLICT_RESPONSE,
                   openapi_extra=audited("certificate.reenroll"))
def reenroll_certificate(network_id: NetworkId, member_id: MemberId,
                         certificate_id: CertificateId, body: schemas.ReenrollRequest,
                         p: Principal = Depends(admin), ctl: Control = Depends(control)
                         ) -> schemas.Certificate:
    """From a new CSR with the same CN; linked to the previous certificate, which stays
    valid until revoked (reason superseded) or expired. Admins only: no secret is asked."""
    created = ctl.ca_identities.reenroll(p.actor, network_id, member_id, certificate_id,
                                         csr_pem=body.csr_pem, client_token=body.client_token)
    return certificate_out(ctl, created.item)


@certificates.post(f"{MEMBER}/certificates/{{certificate_id}}/revoke",
                   response_model=schemas.Revocation,
                   summary="Revoke a certificate (CRL published on chain)",
                   operation_id="revoke_certificate", responses=CHANGES,
                   openapi_extra=audited("certificate.revoke"))
def revoke_certificate(network_id: NetworkId, member_id: MemberId,
                       certificate_id: CertificateId, body: schemas.RevokeRequest,
                       p: Principal = Depends(admin), ctl: Control = Depends(control)
                       ) -> schemas.Revocation:
    """With an RFC 5280 reason. Once the CRL update commits, the chain's nodes refuse the
    certificate's transactions. 503 chain_unavailable: the revocation is recorded, the CRL
    not yet in force — retry the call to publish it."""
    return revocation_out(ctl, ctl.certificates.revoke(p.actor, network_id, member_id,
                                                       certificate_id, body.reason))


@certificates.get(f"{MEMBER}/crl", response_model=schemas.Crl,
                  summary="The member CA's newest CRL", operation_id="get_crl")
def get_crl(network_id: NetworkId, member_id: MemberId, p: Principal = Depends(principal),
            ctl: Control = Depends(control)) -> schemas.Crl:
    info = ctl.certificates.crl(p.actor, network_id, member_id)
    return schemas.Crl(member_id=info.member_id, crl_number=info.crl_number,
                       crl_published_number=info.crl_published_number, crl_pem=info.crl_pem)


# --- CSR requests --------------------------------------------------------------------------


@csrs.post(f"{MEMBER}/csrs", response_model=schemas.CsrRequest, status_code=201,
           summary="Ask a member's CA for a certificate (any tenant of the network)",
           operation_id="create_csr_request", responses=CONFLICT_RESPONSE,
           openapi_extra=audited("csr_request.create"))
def create_csr_request(network_id: NetworkId, member_id: MemberId,
                       body: schemas.CsrRequestCreate, p: Principal = Depends(operator),
                       ctl: Control = Depends(control)) -> schemas.CsrRequest:
    """PENDING until an admin of the member approves (the certificate is issued) or rejects
    it."""
    return csr_out(ctl.csrs.submit(p.actor, network_id, member_id, csr_pem=body.csr_pem,
                                   identity_type=body.identity_type,
                                   client_token=body.client_token).item)


@csrs.get(f"{MEMBER}/csrs", response_model=schemas.CsrRequestList,
          summary="List CSR requests (all, for the member; its own, for another tenant)",
          operation_id="list_csr_requests")
def list_csr_requests(network_id: NetworkId, member_id: MemberId,
                      p: Principal = Depends(principal), ctl: Control = Depends(control),
                      status: CsrStatus | None = Query(None), limit: Limit = DEFAULT_LIMIT,
                      page_token: PageToken = None) -> schemas.CsrRequestList:
    page = ctl.csrs.list(p.actor, network_id, member_id, status=status, limit=limit,
                         page_token=page_token)
    return schemas.CsrRequestList(items=[csr_out(v) for v in page.items],
                                  next_page_token=page.next_page_token)


@csrs.get(f"{MEMBER}/csrs/{{csr_id}}", response_model=schemas.CsrRequest,
          summary="Get a CSR request (with its certificate once approved)",
          operation_id="get_csr_request")
def get_csr_request(network_id: NetworkId, member_id: MemberId, csr_id: CsrId,
                    p: Principal = Depends(principal), ctl: Control = Depends(control)
                    ) -> schemas.CsrRequest:
    return csr_out(ctl.csrs.get(p.actor, network_id, member_id, csr_id))


@csrs.post(f"{MEMBER}/csrs/{{csr_id}}/approve", response_model=schemas.CsrRequest,
           summary="Approve a CSR request: the certificate is issued",
           operation_id="approve_csr_request", responses=CONFLICT_RESPONSE,
           openapi_extra=audited("csr_request.approve"))
def approve_csr_request(network_id: NetworkId, member_id: MemberId, csr_id: CsrId,
                        p: Principal = Depends(admin), ctl: Control = Depends(control)
                        ) -> schemas.CsrRequest:
    return csr_out(ctl.csrs.approve(p.actor, network_id, member_id, csr_id))


@csrs.post(f"{MEMBER}/csrs/{{csr_id}}/reject", response_model=schemas.CsrRequest,
           summary="Reject a CSR request, with the reason",
           operation_id="reject_csr_request", responses=CONFLICT_RESPONSE,
           openapi_extra=audited("csr_request.reject"))
def reject_csr_request(network_id: NetworkId, member_id: MemberId, csr_id: CsrId,
                       body: schemas.CsrReject, p: Principal = Depends(admin),
                       ctl: Control = Depends(control)) -> schemas.CsrRequest:
    return csr_out(ctl.csrs.reject(p.actor, network_id, member_id, csr_id, body.reason))
