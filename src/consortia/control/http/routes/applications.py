"""Join codes and join applications: how a tenant that cannot see a network applies to it
(ADR 0018)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from consortia.control.http import schemas_applications as apps
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    Limit,
    NetworkId,
    PageToken,
    router,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.services.join_codes import usable
from consortia.control.store import models
from consortia.control.store.enums import ApplicationStatus, UserRole

join_codes = router("join codes")
applications = router("join applications")
admin = require(UserRole.ADMIN)
JoinCodeId = Annotated[str, Path(min_length=1, max_length=64,
                                 description="A join code id (jc-…).")]
ApplicationId = Annotated[str, Path(min_length=1, max_length=64,
                                    description="A join application id (app-…).")]


def code_out(row: models.JoinCode, ctl: Control) -> apps.JoinCode:
    return apps.JoinCode(
        id=row.id, network_id=row.network_id, tenant_id=row.tenant_id,
        member_id=row.member_id, description=row.description, status=row.status,
        usable=usable(row, ctl.now()), expires_at=row.expires_at, max_uses=row.max_uses,
        uses=row.uses, revoked_at=row.revoked_at, created_at=row.created_at)


def application_out(row: models.JoinApplication,
                    network: models.Network) -> apps.JoinApplication:
    return apps.JoinApplication(
        id=row.id, network=apps.AppliedNetwork(id=network.id, name=network.name,
                                               profile=network.profile,
                                               consensus=network.consensus),
        tenant_id=row.tenant_id, member_name=row.member_name, message=row.message,
        status=row.status, expires_at=row.expires_at, proposal_id=row.proposal_id,
        invitation_id=row.invitation_id, member_id=row.member_id,
        decided_at=row.decided_at, created_at=row.created_at)


# --- join codes ----------------------------------------------------------------------------


@join_codes.post("/networks/{network_id}/join-codes", response_model=apps.JoinCodeCreated,
                 status_code=201, summary="Create a join code", operation_id="create_join_code",
                 responses=CONFLICT_RESPONSE, openapi_extra=audited("join_code.create"))
def create_join_code(network_id: NetworkId, body: apps.JoinCodeCreate,
                     p: Principal = Depends(admin), ctl: Control = Depends(control)
                     ) -> apps.JoinCodeCreated:
    """A code another tenant applies with (POST /v1/join-applications). Its text is in
    this answer only: the control plane keeps a hash of it."""
    made = ctl.join_codes.create(p.actor, network_id, member_id=body.member_id,
                                 description=body.description,
                                 expires_in_hours=body.expires_in_hours,
                                 max_uses=body.max_uses, client_token=body.client_token)
    row, text = made.item
    return apps.JoinCodeCreated(**code_out(row, ctl).model_dump(), join_code=text)


@join_codes.get("/networks/{network_id}/join-codes", response_model=apps.JoinCodeList,
                summary="List your join codes of a network", operation_id="list_join_codes")
def list_join_codes(network_id: NetworkId, p: Principal = Depends(admin),
                    ctl: Control = Depends(control), limit: Limit = DEFAULT_LIMIT,
                    page_token: PageToken = None) -> apps.JoinCodeList:
    page = ctl.join_codes.list(p.actor, network_id, limit=limit, page_token=page_token)
    return apps.JoinCodeList(items=[code_out(r, ctl) for r in page.items],
                             next_page_token=page.next_page_token)


@join_codes.post("/networks/{network_id}/join-codes/{join_code_id}/revoke",
                 response_model=apps.JoinCode, summary="Revoke a join code",
                 operation_id="revoke_join_code", openapi_extra=audited("join_code.revoke"))
def revoke_join_code(network_id: NetworkId, join_code_id: JoinCodeId,
                     p: Principal = Depends(admin), ctl: Control = Depends(control)
                     ) -> apps.JoinCode:
    return code_out(ctl.join_codes.revoke(p.actor, network_id, join_code_id), ctl)


# --- the applicant -------------------------------------------------------------------------


@applications.post("/join-applications", response_model=apps.JoinApplication,
                   status_code=201, summary="Apply to join a network with a join code",
                   operation_id="create_join_application", responses=CONFLICT_RESPONSE,
                   openapi_extra=audited("join_application.create"))
def create_join_application(body: apps.JoinApplicationCreate, p: Principal = Depends(admin),
                            ctl: Control = Depends(control)) -> apps.JoinApplication:
    """PENDING until the network's admins reject it or the proposal their acceptance
    opens is decided. A code that is unknown, revoked, expired or used up: 404
    join_code_not_found."""
    made = ctl.applications.submit(p.actor, join_code=body.join_code,
                                   member_name=body.member_name, message=body.message,
                                   client_token=body.client_token)
    return application_out(*made.item)


@applications.get("/join-applications", response_model=apps.JoinApplicationList,
                  summary="List your tenant's join applications",
                  operation_id="list_join_applications")
def list_join_applications(p: Principal = Depends(principal), ctl: Control = Depends(control),
                           status: ApplicationStatus | None = Query(None),
                           limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
                           ) -> apps.JoinApplicationList:
    page = ctl.applications.list_own(p.actor, status=status, limit=limit,
                                     page_token=page_token)
    return apps.JoinApplicationList(items=[application_out(a, n) for a, n in page.items],
                                    next_page_token=page.next_page_token)


@applications.get("/join-applications/{application_id}", response_model=apps.JoinApplication,
                  summary="Get a join application", operation_id="get_join_application")
def get_join_application(application_id: ApplicationId, p: Principal = Depends(principal),
                         ctl: Control = Depends(control)) -> apps.JoinApplication:
    """To the applicant, and to admins of the tenants that see its network. Once
    APPROVED, create the member with its invitation_id (POST
    /v1/networks/{network_id}/members)."""
    return application_out(*ctl.applications.get(p.actor, application_id))


@applications.post("/join-applications/{application_id}/withdraw",
                   response_model=apps.JoinApplication, summary="Withdraw a join application",
                   operation_id="withdraw_join_application", responses=CONFLICT_RESPONSE,
                   openapi_extra=audited("join_application.withdraw"))
def withdraw_join_application(application_id: ApplicationId, p: Principal = Depends(admin),
                              ctl: Control = Depends(control)) -> apps.JoinApplication:
    return application_out(*ctl.applications.withdraw(p.actor, application_id))


# --- the network's admins ------------------------------------------------------------------


@applications.get("/networks/{network_id}/join-applications",
                  response_model=apps.JoinApplicationList,
                  summary="List the join applications to a network",
                  operation_id="list_network_join_applications")
def list_network_join_applications(
        network_id: NetworkId, p: Principal = Depends(admin), ctl: Control = Depends(control),
        status: ApplicationStatus | None = Query(None), limit: Limit = DEFAULT_LIMIT,
        page_token: PageToken = None) -> apps.JoinApplicationList:
    page = ctl.applications.list_for_network(p.actor, network_id, status=status, limit=limit,
                                             page_token=page_token)
    return apps.JoinApplicationList(items=[application_out(a, n) for a, n in page.items],
                                    next_page_token=page.next_page_token)


@applications.post("/networks/{network_id}/join-applications/{application_id}/accept",
                   response_model=apps.JoinApplication,
                   summary="Accept a join application: open the proposal that decides it",
                   operation_id="accept_join_application", responses=CONFLICT_RESPONSE,
                   openapi_extra=audited("join_application.accept"))
def accept_join_application(network_id: NetworkId, application_id: ApplicationId,
                            body: apps.JoinApplicationAccept, p: Principal = Depends(admin),
                            ctl: Control = Depends(control)) -> apps.JoinApplication:
    """Opens an INVITE_TENANT proposal for the applicant in the name of member_id; the
    members vote on it as on any proposal, and its outcome decides the application."""
    return application_out(*ctl.applications.accept(
        p.actor, network_id, application_id, member_id=body.member_id,
        description=body.description))


@applications.post("/networks/{network_id}/join-applications/{application_id}/reject",
                   response_model=apps.JoinApplication, summary="Reject a join application",
                   operation_id="reject_join_application", responses=CONFLICT_RESPONSE,
                   openapi_extra=audited("join_application.reject"))
def reject_join_application(network_id: NetworkId, application_id: ApplicationId,
                            p: Principal = Depends(admin), ctl: Control = Depends(control)
                            ) -> apps.JoinApplication:
    return application_out(*ctl.applications.reject(p.actor, network_id, application_id))
