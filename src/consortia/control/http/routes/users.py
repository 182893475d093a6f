"""Users of the caller's tenant (owners and admins)."""

from __future__ import annotations

from fastapi import Depends, Query, Response

from consortia.control.http import schemas
from consortia.control.http.deps import Principal, control, require
from consortia.control.http.errors import CONFLICT_RESPONSE
from consortia.control.http.routes.common import (
    DEFAULT_LIMIT,
    Limit,
    PageToken,
    UserId,
    router,
    user_out,
)
from consortia.control.http.routing import audited
from consortia.control.services import Control, UserChanges
from consortia.control.store.enums import UserRole, UserStatus

api = router("users")
admin = require(UserRole.ADMIN)


@api.get("/users", response_model=schemas.UserList, summary="List users",
         operation_id="list_users")
def list_users(p: Principal = Depends(admin), ctl: Control = Depends(control),
               role: UserRole | None = Query(None), status: UserStatus | None = Query(None),
               limit: Limit = DEFAULT_LIMIT, page_token: PageToken = None) -> schemas.UserList:
    """The tenant's users, oldest first."""
    page = ctl.users.list(p.actor, role=role, status=status, limit=limit,
                          page_token=page_token)
    return schemas.UserList(items=[user_out(u) for u in page.items],
                            next_page_token=page.next_page_token)


@api.post("/users", response_model=schemas.User, status_code=201, summary="Create a user",
          operation_id="create_user",
          responses=CONFLICT_RESPONSE, openapi_extra=audited("user.create"))
def create_user(body: schemas.UserCreate, p: Principal = Depends(admin),
                ctl: Control = Depends(control)) -> schemas.User:
    """A new user of the tenant. Only an owner may create an owner. With a password the
    user can log in to the console; without one, they use access keys only."""
    created = ctl.users.create(p.actor, username=body.username, role=body.role,
                               email=body.email, password=body.password,
                               client_token=body.client_token)
    return user_out(created.item)


@api.get("/users/{user_id}", response_model=schemas.User, summary="Get a user",
         operation_id="get_user")
def get_user(user_id: UserId, p: Principal = Depends(admin),
             ctl: Control = Depends(control)) -> schemas.User:
    return user_out(ctl.users.get(p.actor, user_id))


@api.patch("/users/{user_id}", response_model=schemas.User,
           summary="Change a user's role, status, email or password",
           operation_id="update_user",
          responses=CONFLICT_RESPONSE, openapi_extra=audited("user.update"))
def update_user(user_id: UserId, body: schemas.UserUpdate, p: Principal = Depends(admin),
                ctl: Control = Depends(control)) -> schemas.User:
    """Disabling a user or setting their password ends their console sessions; the
    tenant's last active owner cannot be demoted or disabled (409 last_owner)."""
    user = ctl.users.update(p.actor, user_id, UserChanges(
        role=body.role, status=body.status, email=body.email, password=body.password))
    return user_out(user)


@api.delete("/users/{user_id}", status_code=204, response_class=Response,
            summary="Delete a user", operation_id="delete_user", responses=CONFLICT_RESPONSE,
            openapi_extra=audited("user.delete"))
def delete_user(user_id: UserId, p: Principal = Depends(admin),
                ctl: Control = Depends(control)) -> Response:
    """Deletes the user with their access keys and console sessions."""
    ctl.users.delete(p.actor, user_id)
    return Response(status_code=204)
