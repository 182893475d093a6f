"""``GET /v1/tenant``: who the caller is."""

from __future__ import annotations

from fastapi import Depends

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, control, principal
from consortia.control.http.routes.common import router, user_out
from consortia.control.services import Control

api = router("tenant")


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
