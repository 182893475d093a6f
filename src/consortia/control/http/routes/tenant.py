"""``GET /v1/tenant``: who the caller is; ``/v1/tenants``: the platform tenant's admins
create and list tenants."""

from __future__ import annotations

from fastapi import Depends

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    Limit,
    PageToken,
    router,
    user_out,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.store.enums import AccessKeyStatus, UserRole

api = router("tenant")
admin = require(UserRole.ADMIN)


@api.get("/tenant", response_model=schemas.Me, summary="The caller's tenant and user",
         operation_id="get_tenant")
def get_tenant(p: Principal = Depends(principal), ctl: Control = Depends(control)
               ) -> schemas.Me:
    """The tenant the credentials belong to, the calling user and how the call was
    authenticated. Every role may call it."""
    tenant = ctl.tenants.get(p.actor)
    user = ctl.users.get(p.actor, p.caller.user_id)
    return schemas.Me(tenant=schemas.Tenant.model_validate(tenant), user=user_out(user),
                      auth=p.auth, access_key_id=p.caller.access_key_id,
                      session_id=p.caller.session_id)


@api.post("/tenants", response_model=schemas.TenantCreated, status_code=201,
          summary="Create a tenant (platform operator)", operation_id="create_tenant",
          responses=CONFLICT_RESPONSE, openapi_extra=audited("tenant.create"))
def create_tenant(body: schemas.TenantCreate, p: Principal = Depends(admin),
                  ctl: Control = Depends(control)) -> schemas.TenantCreated:
    """A new tenant with its owner and the owner's first access key, whose secret this
    response shows once. Admins and owners of the platform operator's tenant only (403
    platform_only for any other tenant); a taken name is a 409."""
    made = ctl.tenants.create_by(p.actor, body.name, body.owner,
                                 display_name=body.display_name, owner_email=body.owner_email)
    key = made.credentials
    return schemas.TenantCreated(
        tenant=schemas.Tenant.model_validate(made.tenant), owner=user_out(made.owner),
        access_key=schemas.AccessKeyCreated(
            access_key_id=key.access_key_id, user_id=made.owner.id,
            description="created with the tenant", status=AccessKeyStatus.ACTIVE,
            created_at=made.tenant.created_at, updated_at=made.tenant.created_at,
            last_used_at=None, secret=key.secret))


@api.get("/tenants", response_model=schemas.TenantList, summary="List tenants (platform "
         "operator)", operation_id="list_tenants")
def list_tenants(p: Principal = Depends(principal), ctl: Control = Depends(control),
                 limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None
                 ) -> schemas.TenantList:
    """Every tenant, oldest first: their ids are what invitations name. Platform tenant's
    admins and owners only."""
    page = ctl.tenants.list(p.actor, limit=limit, page_token=page_token)
    return schemas.TenantList(items=[schemas.Tenant.model_validate(t) for t in page.items],
                              next_page_token=page.next_page_token)
