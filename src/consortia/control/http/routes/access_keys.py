"""Access keys: a user manages their own, admins and owners any of the tenant's."""

from __future__ import annotations

from fastapi import Depends, Query, Response

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, control, principal, require
from consortia.control.http.errors import CONFLICT_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    AccessKeyId,
    Limit,
    PageToken,
    key_out,
    router,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control
from consortia.control.store.enums import AccessKeyStatus, UserRole

api = router("access keys")
operator = require(UserRole.OPERATOR)


@api.post("/access-keys", response_model=schemas.AccessKeyCreated, status_code=201,
          summary="Create an access key (the secret is shown once)",
          operation_id="create_access_key",
          responses=CONFLICT_RESPONSE, openapi_extra=audited("access_key.create"))
def create_access_key(body: schemas.AccessKeyCreate, p: Principal = Depends(operator),
                      ctl: Control = Depends(control)) -> schemas.AccessKeyCreated:
    """A new key for the caller, or (admins, owners) for another user of the tenant. The
    response carries the secret; the server keeps it only sealed under its master key."""
    created = ctl.access_keys.create(p.actor, user_id=body.user_id,
                                     description=body.description,
                                     client_token=body.client_token)
    issued = created.item
    return schemas.AccessKeyCreated(**key_out(issued.key, secret=issued.secret))


@api.get("/access-keys", response_model=schemas.AccessKeyList, summary="List access keys",
         operation_id="list_access_keys")
def list_access_keys(p: Principal = Depends(principal), ctl: Control = Depends(control),
                     user_id: str | None = Query(None, max_length=64),
                     status: AccessKeyStatus | None = Query(None),
                     limit: Limit = DEFAULT_LIMIT,
                     page_token: PageToken = None) -> schemas.AccessKeyList:
    """The caller's keys; admins and owners see every key of the tenant (filter by
    user_id). Never shows secrets."""
    page = ctl.access_keys.list(p.actor, user_id=user_id, status=status, limit=limit,
                                page_token=page_token)
    return schemas.AccessKeyList(items=[schemas.AccessKey(**key_out(k)) for k in page.items],
                                 next_page_token=page.next_page_token)


@api.get("/access-keys/{access_key_id}", response_model=schemas.AccessKey,
         summary="Get an access key", operation_id="get_access_key")
def get_access_key(access_key_id: AccessKeyId, p: Principal = Depends(principal),
                   ctl: Control = Depends(control)) -> schemas.AccessKey:
    return schemas.AccessKey(**key_out(ctl.access_keys.get(p.actor, access_key_id)))


@api.post("/access-keys/{access_key_id}/disable", response_model=schemas.AccessKey,
          summary="Disable an access key", operation_id="disable_access_key",
          openapi_extra=audited("access_key.disable"))
def disable_access_key(access_key_id: AccessKeyId, p: Principal = Depends(operator),
                       ctl: Control = Depends(control)) -> schemas.AccessKey:
    """Its requests are refused with 401 disabled_access_key until it is enabled again."""
    key = ctl.access_keys.set_status(p.actor, access_key_id, AccessKeyStatus.DISABLED)
    return schemas.AccessKey(**key_out(key))


@api.post("/access-keys/{access_key_id}/enable", response_model=schemas.AccessKey,
          summary="Enable an access key", operation_id="enable_access_key",
          openapi_extra=audited("access_key.enable"))
def enable_access_key(access_key_id: AccessKeyId, p: Principal = Depends(operator),
                      ctl: Control = Depends(control)) -> schemas.AccessKey:
    key = ctl.access_keys.set_status(p.actor, access_key_id, AccessKeyStatus.ACTIVE)
    return schemas.AccessKey(**key_out(key))


@api.delete("/access-keys/{access_key_id}", status_code=204, response_class=Response,
            summary="Delete an access key", operation_id="delete_access_key",
            openapi_extra=audited("access_key.delete"))
def delete_access_key(access_key_id: AccessKeyId, p: Principal = Depends(operator),
                      ctl: Control = Depends(control)) -> Response:
    ctl.access_keys.delete(p.actor, access_key_id)
    return Response(status_code=204)
