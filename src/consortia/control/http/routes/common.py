"""What the routers share: their router factory, path and paging parameters, converters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from consortia.control.http import schemas
from consortia.control.http.errors import ERROR_RESPONSES
from consortia.control.http.routing import ControlRoute
from consortia.control.services.context import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from consortia.control.store import models


def router(tag: str) -> APIRouter:
    return APIRouter(prefix="/v1", tags=[tag], route_class=ControlRoute,
                     responses=ERROR_RESPONSES)


UserId = Annotated[str, Path(min_length=1, max_length=64, description="A user id (usr-…).")]
AccessKeyId = Annotated[str, Path(min_length=1, max_length=64,
                                  description="An access key id (CK…).")]
NetworkId = Annotated[str, Path(min_length=1, max_length=64,
                                description="A network id (net-…).")]
MemberId = Annotated[str, Path(min_length=1, max_length=64, description="A member id (mem-…).")]
NodeId = Annotated[str, Path(min_length=1, max_length=64, description="A node id (nd-…).")]
ConfirmName = Annotated[str | None, Query(
    max_length=64, description="The resource's name, typed back: a delete without it, or "
                               "with another name, is refused (422 confirmation_mismatch).")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")]
PageToken = Annotated[str | None, Query(
    max_length=256, description="next_page_token of the previous page.")]
DEFAULT_LIMIT = DEFAULT_PAGE_SIZE


def user_out(row: models.User) -> schemas.User:
    return schemas.User(
        id=row.id, username=row.username, email=row.email, role=row.role, status=row.status,
        has_password=row.password_hash is not None, created_at=row.created_at,
        updated_at=row.updated_at, last_login_at=row.last_login_at)


def key_out(row: models.AccessKey, **extra: Any) -> dict[str, Any]:
    return {"access_key_id": row.id, "user_id": row.user_id, "description": row.description,
            "status": row.status, "created_at": row.created_at, "updated_at": row.updated_at,
            "last_used_at": row.last_used_at, **extra}


def network_out(row: models.Network) -> dict[str, Any]:
    return {"id": row.id, "tenant_id": row.tenant_id, "name": row.name,
            "description": row.description, "chain_id": row.chain_id, "profile": row.profile,
            "consensus": row.consensus, "usage_mode": row.usage_mode,
            "voting_policy": schemas.VotingPolicy.model_validate(row),
            "status": row.status, "status_reason": row.status_reason,
            "genesis_hash": row.genesis_hash, "evm_chain_id": row.evm_chain_id,
            "evm_gas_limit": row.evm_gas_limit, "created_at": row.created_at,
            "updated_at": row.updated_at}
